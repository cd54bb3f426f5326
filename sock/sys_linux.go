//go:build linux

package sock

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// truncFlag asks recvmsg(2) for a datagram's full length even when it does
// not fit, so truncation can be reported with both sizes.
const truncFlag = unix.MSG_TRUNC

// The system calls on the hot paths are made here directly rather than
// through x/sys/unix: its Accept4, Recvmsg, Getsockname and Getpeername
// turn the kernel's address into a unix.Sockaddr, which allocates, and
// for every IPv4 or IPv6 address first ask the kernel for the socket's
// protocol (getsockopt SO_PROTOCOL, to tell L2TP apart): one system call
// more on every datagram received and every connection accepted. Here
// the kernel's address goes straight into a netip.AddrPort.

// Like read and write (see sysRW), accept4, recvmsg and sendto on these
// non-blocking sockets are raw system calls.

// sockaddr is a socket address in the kernel's own layout, built on the
// stack for each call that passes one.
type sockaddr struct {
	raw unix.RawSockaddrAny
	len uint32
}

// makeSockaddr lays out ap for a socket of kind k (see familyAddr).
func makeSockaddr(k Kind, ap netip.AddrPort) (sockaddr, error) {
	var sa sockaddr
	a, err := familyAddr(k, ap)
	if err != nil {
		return sa, err
	}
	port := ap.Port()
	if k.IPv6() {
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.raw))
		p.Family = unix.AF_INET6
		putPort(&p.Port, port)
		p.Addr = a.As16()
		if z := a.Zone(); z != "" {
			if id, err := zoneID(z); err == nil {
				p.Scope_id = id
			}
		}
		sa.len = unix.SizeofSockaddrInet6
		return sa, nil
	}
	p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
	p.Family = unix.AF_INET
	putPort(&p.Port, port)
	p.Addr = a.As4()
	sa.len = unix.SizeofSockaddrInet4
	return sa, nil
}

// addrPort reads an address the kernel filled in; the zero AddrPort when
// it is not IPv4 or IPv6 (an unconnected peer, a short length).
func (sa *sockaddr) addrPort() netip.AddrPort {
	switch sa.raw.Addr.Family {
	case unix.AF_INET:
		if sa.len < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}
		}
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), getPort(&p.Port))
	case unix.AF_INET6:
		if sa.len < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}
		}
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.raw))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), getPort(&p.Port))
	}
	return netip.AddrPort{}
}

// A port in a socket address is in network byte order whatever the CPU's.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

func sysSocket(family, sotype int) (int, error) {
	return unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}

// sysAccept is accept4(2), non-blocking and close-on-exec, with the peer.
func sysAccept(fd int) (int, netip.AddrPort, unix.Errno) {
	var sa sockaddr
	sa.len = unix.SizeofSockaddrAny
	nfd, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), uintptr(unsafe.Pointer(&sa.len)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, netip.AddrPort{}, errno
	}
	return int(nfd), sa.addrPort(), 0
}

// sysRecvmsg is recvmsg(2) of one datagram into p: the bytes stored, the
// datagram's size (with MSG_TRUNC in flags, its full size), the message
// flags and the sender.
func sysRecvmsg(fd int, p []byte, flags int) (n, rflags int, from netip.AddrPort, errno unix.Errno) {
	var sa sockaddr
	var iov unix.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
	}
	msg := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&sa.raw)), Namelen: unix.SizeofSockaddrAny, Iov: &iov, Iovlen: 1}
	r, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if errno != 0 {
		return 0, 0, netip.AddrPort{}, errno
	}
	sa.len = msg.Namelen
	return int(r), int(msg.Flags), sa.addrPort(), 0
}

// sysSend sends p as one datagram to to, or on the connected socket when
// to is nil.
func sysSend(fd int, p []byte, to *sockaddr) unix.Errno {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	var name unsafe.Pointer
	var namelen uint32
	if to != nil {
		name, namelen = unsafe.Pointer(&to.raw), to.len
	}
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(ptr), uintptr(len(p)), 0, uintptr(name), uintptr(namelen))
	return errno
}

// sysConnect is connect(2).
func sysConnect(fd int, to *sockaddr) unix.Errno {
	_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&to.raw)), uintptr(to.len))
	return errno
}

// sysSockname is getsockname(2), or getpeername(2) when peer is set.
func sysSockname(fd int, peer bool) (netip.AddrPort, unix.Errno) {
	trap := uintptr(unix.SYS_GETSOCKNAME)
	if peer {
		trap = unix.SYS_GETPEERNAME
	}
	var sa sockaddr
	sa.len = unix.SizeofSockaddrAny
	_, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), uintptr(unsafe.Pointer(&sa.len)))
	if errno != 0 {
		return netip.AddrPort{}, errno
	}
	return sa.addrPort(), 0
}

// DefaultBacklog is the accept-queue length a listen without one asks for:
// the kernel's limit, net.core.somaxconn, as Go's net.Listen uses. The
// kernel caps any larger backlog at it anyway.
var DefaultBacklog = sync.OnceValue(func() int {
	if b, err := os.ReadFile("/proc/sys/net/core/somaxconn"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			return n
		}
	}
	return 4096 // the default since Linux 5.4
})
