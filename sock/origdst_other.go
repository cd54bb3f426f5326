//go:build unix && !linux

package sock

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// OriginalDst needs Linux's netfilter.
func (s *Socket) OriginalDst() (netip.AddrPort, error) {
	return netip.AddrPort{}, &Error{Op: "getsockopt", Code: "ENOPROTOOPT", Msg: "original_dst needs Linux", Errno: unix.ENOPROTOOPT}
}
