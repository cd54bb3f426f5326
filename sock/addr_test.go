//go:build linux

package sock_test

// Parsing what users type: addresses, ports and socket kinds; and the error
// helpers every caller uses.

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sockplay/sock"
)

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct {
		host string
		port int
		want string // the AddrPort, or the error's text
		ok   bool
	}{
		{"127.0.0.1", 80, "127.0.0.1:80", true},
		{"127.0.0.1", 0, "127.0.0.1:0", true},
		{"127.0.0.1", 65535, "127.0.0.1:65535", true},
		{"", 8080, "0.0.0.0:8080", true},
		{"*", 1, "0.0.0.0:1", true},
		{"::1", 0, "[::1]:0", true},
		{"[::1]", 53, "[::1]:53", true},
		{"::", 9, "[::]:9", true},
		{"::ffff:127.0.0.1", 7, "[::ffff:127.0.0.1]:7", true},
		{"fe80::1%lo", 22, "[fe80::1%lo]:22", true},
		{"127.0.0.1", -1, "port -1 out of range 0-65535", false},
		{"127.0.0.1", 65536, "port 65536 out of range 0-65535", false},
		{"not-an-ip", 80, `address "not-an-ip" does not parse as IPv4 or IPv6`, false},
		{"localhost", 80, `address "localhost" does not parse as IPv4 or IPv6`, false},
		{"127.0.0.1:80", 80, `address "127.0.0.1:80" does not parse as IPv4 or IPv6`, false},
	} {
		got, err := sock.ParseAddr(tc.host, tc.port)
		switch {
		case tc.ok && (err != nil || got.String() != tc.want):
			t.Errorf("ParseAddr(%q, %d) = %v, %v; want %s", tc.host, tc.port, got, err, tc.want)
		case !tc.ok && (err == nil || err.Error() != tc.want):
			t.Errorf("ParseAddr(%q, %d) = %v, %v; want the error %q", tc.host, tc.port, got, err, tc.want)
		case !tc.ok && got.IsValid():
			t.Errorf("ParseAddr(%q, %d) returned %v with its error", tc.host, tc.port, got)
		}
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]sock.Kind{"tcp": sock.TCP, "UDP": sock.UDP, "Tcp6": sock.TCP6, "udp6": sock.UDP6} {
		if k, err := sock.ParseKind(in); k != want || err != nil {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", in, k, err, want)
		}
	}
	for _, in := range []string{"sctp", "", "tcp4", " tcp"} {
		k, err := sock.ParseKind(in)
		if err == nil || k != 0 {
			t.Errorf("ParseKind(%q) = %v, %v; want an error", in, k, err)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) || !strings.Contains(err.Error(), "tcp, udp, tcp6 or udp6") {
			t.Errorf("ParseKind(%q): %q does not name the kind and the choices", in, err)
		}
	}
}

func TestKindNames(t *testing.T) {
	for _, tc := range []struct {
		k            sock.Kind
		name, label  string
		stream, ipv6 bool
	}{
		{sock.TCP, "tcp", "TCP", true, false},
		{sock.UDP, "udp", "UDP", false, false},
		{sock.TCP6, "tcp6", "TCPv6", true, true},
		{sock.UDP6, "udp6", "UDPv6", false, true},
		{0, "kind(0)", "?", false, false},
		{9, "kind(9)", "?", false, false},
	} {
		if tc.k.String() != tc.name || tc.k.Label() != tc.label || tc.k.Stream() != tc.stream || tc.k.IPv6() != tc.ipv6 {
			t.Errorf("kind %d: %q %q stream %v ipv6 %v", uint8(tc.k), tc.k.String(), tc.k.Label(), tc.k.Stream(), tc.k.IPv6())
		}
	}
}

func TestErrorHelpers(t *testing.T) {
	if sock.Code(nil) != "" {
		t.Errorf("Code(nil) = %q", sock.Code(nil))
	}
	if got := sock.Code(unix.ECONNRESET); got != "ECONNRESET" {
		t.Errorf("Code(ECONNRESET) = %q", got)
	}
	if got := sock.Code(fmt.Errorf("wrapped: %w", unix.EPIPE)); got != "EPIPE" {
		t.Errorf("Code(wrapped EPIPE) = %q", got)
	}
	if got := sock.Code(errors.New("odd")); got != "EIO" {
		t.Errorf("Code(plain error) = %q, want EIO", got)
	}
	if got := sock.Message(errors.New("odd")); got != "odd" {
		t.Errorf("Message(plain error) = %q", got)
	}
	e := &sock.Error{Op: "read", Code: "EOF", Msg: "end of stream"}
	if e.Error() != "read: end of stream" || sock.Message(e) != "end of stream" {
		t.Errorf("Error() %q, Message %q", e.Error(), sock.Message(e))
	}
	if (&sock.Error{Code: "EBADF", Msg: "bad"}).Error() != "bad" {
		t.Error("an Error without Op should print its message alone")
	}
	if !errors.Is(e, sock.ErrEOF) || errors.Is(e, sock.ErrTimeout) {
		t.Error("errors.Is compares codes")
	}
	// EOF has no errno: it matches no errno, not even 0.
	if errors.Is(e, unix.Errno(0)) {
		t.Error("an Error without an errno matches Errno(0)")
	}
	wrapped := fmt.Errorf("task: %w", &sock.Error{Op: "connect", Code: "ECONNREFUSED", Msg: "connection refused", Errno: unix.ECONNREFUSED})
	if !errors.Is(wrapped, unix.ECONNREFUSED) || sock.Code(wrapped) != "ECONNREFUSED" || sock.Message(wrapped) != "connection refused" {
		t.Errorf("through %%w: Is %v, Code %q, Message %q", errors.Is(wrapped, unix.ECONNREFUSED), sock.Code(wrapped), sock.Message(wrapped))
	}
}
