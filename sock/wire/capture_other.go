//go:build !linux

package wire

import (
	"context"

	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// Open needs Linux: captures are AF_PACKET sockets.
func Open(ctx context.Context, t *sock.Table, opts Options) (*Capture, error) {
	return nil, &sock.Error{Op: "capture", Code: "ENOSYS", Msg: "packet capture needs Linux (AF_PACKET)", Errno: unix.ENOSYS}
}

func (k *kernelStats) read(*sock.Socket) (uint64, uint64) { return 0, 0 }
