//go:build unix && !linux

package sock

import "golang.org/x/sys/unix"

const truncFlag = 0

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

func sysAccept(fd int) (int, unix.Sockaddr, error) {
	nfd, sa, err := unix.Accept(fd)
	if err != nil {
		return -1, nil, err
	}
	unix.CloseOnExec(nfd)
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return -1, nil, err
	}
	return nfd, sa, nil
}
