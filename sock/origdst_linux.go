//go:build linux

package sock

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h), and
// IP6T_SO_ORIGINAL_DST at the IPv6 level: the same number.
const soOriginalDst = 80

// OriginalDst is the address a connection was meant for before the
// kernel's NAT redirected it here (getsockopt SO_ORIGINAL_DST): what a
// transparent proxy connects on to. ENOENT when nothing redirected it.
func (s *Socket) OriginalDst() (netip.AddrPort, error) {
	if !s.Kind.Stream() {
		return netip.AddrPort{}, argError("getsockopt", "original_dst applies to TCP connections; fd %d is %s", s.FD, s.Kind)
	}
	var ap netip.AddrPort
	err := s.control("getsockopt", func(fd int) error {
		// An IPv4 connection on a tcp6 socket (a dual-stack listener's)
		// was tracked as IPv4: ask the IPv4 level first.
		var sa unix.RawSockaddrInet4
		size := uint32(unix.SizeofSockaddrInet4)
		if err := getsockopt(fd, unix.SOL_IP, soOriginalDst, unsafe.Pointer(&sa), &size); err == nil {
			ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
			return nil
		} else if !s.Kind.IPv6() {
			return err
		}
		var sa6 unix.RawSockaddrInet6
		size = uint32(unix.SizeofSockaddrInet6)
		if err := getsockopt(fd, unix.SOL_IPV6, soOriginalDst, unsafe.Pointer(&sa6), &size); err != nil {
			return err
		}
		ap = netip.AddrPortFrom(netip.AddrFrom16(sa6.Addr).Unmap(), ntohs(sa6.Port))
		return nil
	})
	if Code(err) == "ENOENT" {
		err = &Error{Op: "getsockopt", Code: "ENOENT", Msg: "no original destination: NAT did not redirect this connection", Errno: unix.ENOENT}
	}
	return ap, err
}

func getsockopt(fd, level, name int, val unsafe.Pointer, size *uint32) error {
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(val), uintptr(unsafe.Pointer(size)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// ntohs reads a port as sockaddr stores it, in network byte order.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
