package sock

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Disconnect dissolves a datagram socket's association, connect(2) with
// an AF_UNSPEC address: it sends to any address and receives from all
// again.
func (s *Socket) Disconnect() error {
	start := s.table.traceStart()
	err := s.control("connect", func(fd int) error {
		var sa unix.RawSockaddrInet6 // room for any family's address
		sa.Family = unix.AF_UNSPEC
		_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet6)
		if errno != 0 {
			return errno
		}
		return nil
	})
	if !start.IsZero() {
		s.emit(start, Event{Call: "connect", Args: []string{"AF_UNSPEC"}}, 0, err)
	}
	return err
}
