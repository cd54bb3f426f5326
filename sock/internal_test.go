//go:build linux

package sock

// Unit tests of the unexported parsers and helpers: /proc/net lines, error
// wrapping, the table's memory of closed connections.

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseHexAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"00000000:0016", "0.0.0.0:22"},
		{"0101A8C0:FFFF", "192.168.1.1:65535"},
		{"00000000000000000000000001000000:0050", "[::1]:80"},
		{"00000000000000000000000000000000:0000", "[::]:0"},
		{"0000000000000000FFFF00000100007F:1F90", "127.0.0.1:8080"}, // v4-mapped, unmapped
		{"000080FE000000000000000001000000:0016", "[fe80::1]:22"},
		{"B80D0120000000000000000001000000:01BB", "[2001:db8::1]:443"},
	} {
		got, err := parseHexAddr(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("parseHexAddr(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for in, want := range map[string]string{
		"0100007F":                          `no port in "0100007F"`,
		"XYZ00000:0016":                     `bad address "XYZ00000:0016"`,
		"0100:0016":                         `bad address "0100:0016"`,
		"0100007F00:0016":                   `bad address "0100007F00:0016"`,
		"0000000000000000000000000100000:1": `bad address "0000000000000000000000000100000:1"`,
	} {
		if got, err := parseHexAddr(in); err == nil || err.Error() != want {
			t.Errorf("parseHexAddr(%q) = %v, %v; want the error %q", in, got, err, want)
		}
	}
	for _, in := range []string{"0100007F:XYZ", "0100007F:10000", "0100007F:"} {
		if got, err := parseHexAddr(in); err == nil {
			t.Errorf("parseHexAddr(%q) = %v, want an error for the port", in, got)
		}
	}
}

func TestParseProcNetLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want procSocket
	}{
		{ // /proc/net/tcp: a listener with three connections to accept
			"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000003 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0",
			procSocket{local: netip.MustParseAddrPort("127.0.0.1:8080"), peer: netip.MustParseAddrPort("0.0.0.0:0"), state: 10, txQueue: 0, rxQueue: 3, inode: 12345},
		},
		{ // an established connection with 33 bytes unread and 0x21 unacked
			"   3: 0100007F:1F90 0100007F:A2C4 01 00000021:00000021 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1",
			procSocket{local: netip.MustParseAddrPort("127.0.0.1:8080"), peer: netip.MustParseAddrPort("127.0.0.1:41668"), state: 1, txQueue: 33, rxQueue: 33, inode: 777},
		},
		{ // TIME_WAIT: no socket, inode 0, a shorter line
			"  12: 0100007F:A2C4 0100007F:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000",
			procSocket{local: netip.MustParseAddrPort("127.0.0.1:41668"), peer: netip.MustParseAddrPort("127.0.0.1:8080"), state: 6, inode: 0},
		},
		{ // /proc/net/tcp6: a listener on ::1
			"   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 54321 1 0000000000000000 100 0 0 10 0",
			procSocket{local: netip.MustParseAddrPort("[::1]:80"), peer: netip.MustParseAddrPort("[::]:0"), state: 10, inode: 54321},
		},
		{ // /proc/net/udp: a bound socket with a queued datagram
			" 1234: 0100007F:0035 00000000:0000 07 00000000:00000300 00:00000000 00000000   101        0 999 2 0000000000000000 0",
			procSocket{local: netip.MustParseAddrPort("127.0.0.1:53"), peer: netip.MustParseAddrPort("0.0.0.0:0"), state: 7, rxQueue: 0x300, inode: 999},
		},
	} {
		got, ok := parseProcNetLine(tc.line)
		if !ok || got != tc.want {
			t.Errorf("parseProcNetLine(%q) =\n%+v, %v\nwant %+v", tc.line, got, ok, tc.want)
		}
	}
	for _, bad := range []string{
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
		"",
		"   0: 0100007F:1F90 00000000:0000 0A",
		"   0: 0100007F:1F90 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000 0 0 1 1",
		"   0: 0100007F:1F90 nonsense 0A 00000000:00000000 00:00000000 00000000 0 0 1 1",
	} {
		if got, ok := parseProcNetLine(bad); ok {
			t.Errorf("parseProcNetLine(%q) = %+v, true; want false", bad, got)
		}
	}
}

// readProcNet finds a real listener by its inode with the state and
// addresses /proc/net/tcp gives it.
func TestReadProcNet(t *testing.T) {
	tbl := NewTable()
	ctx := context.Background()
	l, err := tbl.Open(ctx, TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(7); err != nil {
		t.Fatal(err)
	}
	addr, _ := l.LocalAddr()
	target, err := os.Readlink("/proc/self/fd/" + itoa(l.FD))
	if err != nil {
		t.Fatal(err)
	}
	ino := linkInode(target)
	ps, ok := readProcNet(nil, "tcp", "tcp6")[ino]
	if ino == 0 || !ok {
		t.Fatalf("inode %d (%s) not in /proc/net/tcp", ino, target)
	}
	if ps.local != addr || ps.state != 10 || tcpStates[ps.state] != "LISTEN" {
		t.Errorf("/proc/net/tcp entry %+v, want LISTEN on %v", ps, addr)
	}
}

func TestLinkInodeAndType(t *testing.T) {
	for target, want := range map[string]uint64{"socket:[123]": 123, "pipe:[9]": 9, "/dev/null": 0, "socket:[x]": 0, "anon_inode:[eventpoll]": 0} {
		if got := linkInode(target); got != want {
			t.Errorf("linkInode(%q) = %d, want %d", target, got, want)
		}
	}
	for target, want := range map[string]string{
		"socket:[1]": "socket", "pipe:[2]": "pipe", "anon_inode:[eventpoll]": "epoll", "anon_inode:[eventfd]": "eventfd",
		"anon_inode:[timerfd]": "timerfd", "anon_inode:[pidfd]": "pidfd", "anon_inode:inotify": "anon",
		"/dev/pts/3": "tty", "/dev/tty": "tty", "/dev/null": "null", "/etc/hosts": "file",
		"/dev/net/tun": "tun", "net:[4026532367]": "netns",
	} {
		if got := descriptorType(target); got != want {
			t.Errorf("descriptorType(%q) = %q, want %q", target, got, want)
		}
	}
}

func TestWrap(t *testing.T) {
	if wrap("read", nil) != nil {
		t.Error("wrap(nil) != nil")
	}
	err := wrap("connect", unix.EAGAIN)
	var se *Error
	if !errors.As(err, &se) || se.Code != "EADDRNOTAVAIL" || se.Op != "connect" || se.Msg != "no free local port" || se.Errno != unix.EADDRNOTAVAIL {
		t.Errorf("wrap(connect, EAGAIN) = %#v", err)
	}
	if err := wrap("read", unix.EAGAIN); Code(err) != "EAGAIN" || err.Error() != "read: resource temporarily unavailable" {
		t.Errorf("wrap(read, EAGAIN) = %v (%s)", err, Code(err))
	}
	if err := wrap("write", os.NewSyscallError("write", unix.EPIPE)); Code(err) != "EPIPE" || err.Error() != "write: broken pipe" {
		t.Errorf("wrap of a SyscallError = %v", err)
	}
	if err := wrap("bind", errors.New("bind: strange")); Code(err) != "EIO" || err.Error() != "bind: strange" {
		t.Errorf("wrap of a plain error = %q (%s)", err, Code(err))
	}
	// A sentinel without an op gets one, and the sentinel is not changed.
	if err := wrap("read", ErrEOF); err.Error() != "read: end of stream" || ErrEOF.Op != "" {
		t.Errorf("wrap(read, ErrEOF) = %q; ErrEOF.Op = %q", err, ErrEOF.Op)
	}
	own := &Error{Op: "accept", Code: "EBADF", Msg: "x"}
	if err := wrap("read", own); err != own {
		t.Errorf("an Error with an op is passed through, got %v", err)
	}
}

func TestItoa(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 10: "10", 65535: "65535", -1: "-1", -120: "-120"} {
		if got := itoa(n); got != want {
			t.Errorf("itoa(%d) = %q", n, got)
		}
	}
}

// The table remembers a closed TCP connection for as long as TIME_WAIT can
// last, and no longer.
func TestRecentClosed(t *testing.T) {
	tbl := NewTable()
	now := time.Unix(1000, 0)
	tbl.now = func() time.Time { return now }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(k Kind) *Socket {
		s, err := tbl.Open(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		s.SetTimeout(5 * time.Second)
		t.Cleanup(func() { s.Close() })
		return s
	}
	l := open(TCP)
	if err := l.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(2); err != nil {
		t.Fatal(err)
	}
	laddr, _ := l.LocalAddr()
	c := open(TCP)
	if err := c.Connect(ctx, laddr); err != nil {
		t.Fatal(err)
	}
	s, _, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	caddr, _ := c.LocalAddr()
	if _, err := c.Write(ctx, []byte("abc")); err != nil {
		t.Fatal(err)
	}

	l.Close() // a listener has no peer, but its address named it
	u := open(UDP)
	u.Close() // never bound: no address, nothing to remember
	c.Close()
	rc := tbl.recentClosed()
	if len(rc) != 2 || rc[0].local != laddr || rc[0].peer.IsValid() || rc[0].fd != l.FD {
		t.Fatalf("recentClosed = %+v, want the listener, then the client's connection", rc)
	}
	rc = rc[1:]
	if rc[0].local != caddr || rc[0].peer != laddr || rc[0].kind != TCP || !rc[0].closedAt.Equal(now) || rc[0].bytesOut != 3 || rc[0].fd != c.FD {
		t.Fatalf("recentClosed = %+v, want the client's connection", rc)
	}
	if ls := lingering(tbl.recentClosed(), now); len(ls) != 1 || ls[0].Socket.Local != caddr {
		t.Errorf("lingering = %+v, want the client's connection alone (in FIN_WAIT2)", ls)
	}
	if tbl.forget(c, caddr, laddr) {
		t.Error("forget of a closed socket reported true")
	}

	now = now.Add(recentFor - time.Second)
	if len(tbl.recentClosed()) != 2 {
		t.Error("forgotten before TIME_WAIT could end")
	}
	now = now.Add(2 * time.Second)
	if rc := tbl.recentClosed(); len(rc) != 0 {
		t.Errorf("still remembered after %v: %+v", recentFor+time.Second, rc)
	}
	s.Close()
	if rc := tbl.recentClosed(); len(rc) != 1 || rc[0].local != laddr {
		t.Errorf("recentClosed = %+v, want only the server's side", rc)
	}
}

// Under churn the remembered connections stay bounded and the newest win.
func TestRecentIsARing(t *testing.T) {
	tbl := NewTable()
	for i := 0; i < 3*maxRecent+7; i++ {
		tbl.mu.Lock()
		tbl.remember(closedConn{kind: TCP, local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(i+1)), closedAt: tbl.now()})
		tbl.mu.Unlock()
	}
	rc := tbl.recentClosed()
	if len(rc) != maxRecent {
		t.Fatalf("%d remembered, want %d", len(rc), maxRecent)
	}
	newest := uint16(3*maxRecent + 7)
	seen := false
	for _, c := range rc {
		if c.local.Port() == newest {
			seen = true
		}
		if c.local.Port() <= newest-maxRecent {
			t.Errorf("an old connection (port %d) survived", c.local.Port())
		}
	}
	if !seen {
		t.Error("the newest connection is missing")
	}
}
