//go:build unix && !linux

package sock

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

const truncFlag = 0

// sockaddr wraps x/sys's address type: off Linux the hot paths keep the
// portable calls (see sys_linux.go for why Linux does not).
type sockaddr struct{ sa unix.Sockaddr }

func makeSockaddr(k Kind, ap netip.AddrPort) (sockaddr, error) {
	a, err := familyAddr(k, ap)
	if err != nil {
		return sockaddr{}, err
	}
	if k.IPv6() {
		sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
		if z := a.Zone(); z != "" {
			if id, err := zoneID(z); err == nil {
				sa.ZoneId = id
			}
		}
		return sockaddr{sa}, nil
	}
	return sockaddr{&unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}}, nil
}

func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(unix.Errno); ok {
		return e
	}
	return unix.EIO
}

// Without SOCK_NONBLOCK and accept4 the flags are set after the call. The
// window this leaves for a concurrent fork+exec is acceptable here.
func sysSocket(family, sotype int) (int, error) {
	fd, err := unix.Socket(family, sotype, 0)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func sysAccept(fd int) (int, netip.AddrPort, unix.Errno) {
	nfd, sa, err := unix.Accept(fd)
	if err != nil {
		return -1, netip.AddrPort{}, errnoOf(err)
	}
	unix.CloseOnExec(nfd)
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return -1, netip.AddrPort{}, errnoOf(err)
	}
	return nfd, fromSockaddr(sa), 0
}

func sysRecvmsg(fd int, p []byte, flags int) (n, rflags int, from netip.AddrPort, errno unix.Errno) {
	n, _, rflags, sa, err := unix.Recvmsg(fd, p, nil, flags)
	if err != nil {
		return 0, 0, netip.AddrPort{}, errnoOf(err)
	}
	return n, rflags, fromSockaddr(sa), 0
}

func sysSend(fd int, p []byte, to *sockaddr) unix.Errno {
	if to == nil {
		_, err := unix.Write(fd, p)
		return errnoOf(err)
	}
	return errnoOf(unix.Sendto(fd, p, 0, to.sa))
}

func sysConnect(fd int, to *sockaddr) unix.Errno { return errnoOf(unix.Connect(fd, to.sa)) }

func sysSockname(fd int, peer bool) (netip.AddrPort, unix.Errno) {
	get := unix.Getsockname
	if peer {
		get = unix.Getpeername
	}
	sa, err := get(fd)
	if err != nil {
		return netip.AddrPort{}, errnoOf(err)
	}
	return fromSockaddr(sa), 0
}

// DefaultBacklog is the accept-queue length a listen without one asks for:
// the system's limit.
var DefaultBacklog = func() int { return unix.SOMAXCONN }
