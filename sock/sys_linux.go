//go:build linux

package sock

import "golang.org/x/sys/unix"

// truncFlag asks recvmsg(2) for a datagram's full length even when it does
// not fit, so truncation can be reported with both sizes.
const truncFlag = unix.MSG_TRUNC

func sysSocket(family, sotype int) (int, error) {
	return unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}

func sysAccept(fd int) (int, unix.Sockaddr, error) {
	return unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
}
