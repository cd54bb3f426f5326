//go:build linux

package sock_test

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"sockplay/sock"
)

func intBytes(v int32) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(v)) }

// Options by level and number: what is set is what the kernel holds, and
// what the kernel holds is what is read back.
func TestOptionBytes(t *testing.T) {
	e := newEnv(t)
	s := e.open(sock.TCP)
	if err := s.SetOptionBytes("tcp-nodelay", unix.IPPROTO_TCP, unix.TCP_NODELAY, intBytes(1)); err != nil {
		t.Fatal(err)
	}
	if v, err := unix.GetsockoptInt(s.FD, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v != 1 {
		t.Errorf("kernel TCP_NODELAY = %d, %v; want 1", v, err)
	}
	if err := unix.SetsockoptInt(s.FD, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 42); err != nil {
		t.Fatal(err)
	}
	b, err := s.OptionBytes(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 4)
	if err != nil || len(b) != 4 || binary.NativeEndian.Uint32(b) != 42 {
		t.Errorf("OptionBytes(TCP_KEEPIDLE) = %v, %v; want 42", b, err)
	}

	// A struct: linger on, 7 seconds.
	l := make([]byte, 8)
	binary.NativeEndian.PutUint32(l, 1)
	binary.NativeEndian.PutUint32(l[4:], 7)
	if err := s.SetOptionBytes("linger", unix.SOL_SOCKET, unix.SO_LINGER, l); err != nil {
		t.Fatal(err)
	}
	if lg, err := unix.GetsockoptLinger(s.FD, unix.SOL_SOCKET, unix.SO_LINGER); err != nil || lg.Onoff != 1 || lg.Linger != 7 {
		t.Errorf("kernel SO_LINGER = %+v, %v", lg, err)
	}
	if b, err := s.OptionBytes(unix.SOL_SOCKET, unix.SO_LINGER, 8); err != nil || len(b) != 8 || binary.NativeEndian.Uint32(b[4:]) != 7 {
		t.Errorf("OptionBytes(SO_LINGER) = %v, %v", b, err)
	}

	// The kernel's refusals come back as errors with their codes.
	err = s.SetOptionBytes("bogus", unix.SOL_SOCKET, 9999, intBytes(1))
	wantErr(t, err, "setsockopt", "ENOPROTOOPT")
	_, err = s.OptionBytes(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 4)
	wantErr(t, err, "getsockopt", "ENOTSUP")
	s.Close()
	_, err = s.OptionBytes(unix.SOL_SOCKET, unix.SO_ERROR, 4)
	wantErr(t, err, "getsockopt", "EBADF")
	err = s.SetOptionBytes("tcp-nodelay", unix.IPPROTO_TCP, unix.TCP_NODELAY, intBytes(1))
	wantErr(t, err, "setsockopt", "EBADF")
}
