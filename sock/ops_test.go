//go:build linux

package sock_test

// Each operation's success and its failures, on real loopback sockets.

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sockplay/sock"
)

func TestOpenEachKind(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		kind   sock.Kind
		name   string
		stream bool
		local  string // getsockname of a fresh socket
	}{
		{sock.TCP, "tcp", true, "0.0.0.0:0"},
		{sock.UDP, "udp", false, "0.0.0.0:0"},
		{sock.TCP6, "tcp6", true, "[::]:0"},
		{sock.UDP6, "udp6", false, "[::]:0"},
	} {
		if tc.kind.IPv6() {
			needIPv6(t)
		}
		s := e.open(tc.kind)
		if s.Kind != tc.kind || s.Kind.String() != tc.name || s.Kind.Stream() != tc.stream {
			t.Errorf("%s: Kind = %v (stream %v)", tc.name, s.Kind, s.Kind.Stream())
		}
		if s.FD < 3 {
			t.Errorf("%s: FD = %d, want a new descriptor >= 3", tc.name, s.FD)
		}
		if got, err := e.tbl.Get(s.FD); err != nil || got != s {
			t.Errorf("%s: Get(%d) = %p, %v; want %p", tc.name, s.FD, got, err, s)
		}
		if a, err := s.LocalAddr(); err != nil || a.String() != tc.local {
			t.Errorf("%s: LocalAddr = %v, %v; want %s", tc.name, a, err, tc.local)
		}
		typ, err := unix.GetsockoptInt(s.FD, unix.SOL_SOCKET, unix.SO_TYPE)
		wantType := unix.SOCK_DGRAM
		if tc.stream {
			wantType = unix.SOCK_STREAM
		}
		if err != nil || typ != wantType {
			t.Errorf("%s: SO_TYPE of fd %d = %d, %v; want %d", tc.name, s.FD, typ, err, wantType)
		}
		dom, err := unix.GetsockoptInt(s.FD, unix.SOL_SOCKET, unix.SO_DOMAIN)
		wantDom := unix.AF_INET
		if tc.kind.IPv6() {
			wantDom = unix.AF_INET6
		}
		if err != nil || dom != wantDom {
			t.Errorf("%s: SO_DOMAIN of fd %d = %d, %v; want %d", tc.name, s.FD, dom, err, wantDom)
		}
	}
}

func TestOpenInvalidKind(t *testing.T) {
	e := newEnv(t)
	for _, k := range []sock.Kind{0, 5, 200} {
		s, err := e.tbl.Open(e.ctx, k)
		if s != nil {
			t.Fatalf("Open(%d) returned a socket", k)
		}
		se := wantErr(t, err, "socket", "EINVAL")
		if want := "unknown socket kind " + strconv.Itoa(int(k)); se.Msg != want {
			t.Errorf("Open(%d): Msg = %q, want %q", k, se.Msg, want)
		}
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("errors.Is(%v, EINVAL) = false", err)
		}
	}
	if n := e.tbl.Len(); n != 0 {
		t.Errorf("table holds %d sockets after failed opens", n)
	}
}

func TestBind(t *testing.T) {
	e := newEnv(t)
	a, addr := e.bound(sock.TCP)
	if addr.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("bound to %v, want 127.0.0.1", addr)
	}

	t.Run("EADDRINUSE", func(t *testing.T) {
		b := e.open(sock.TCP)
		err := b.Bind(addr)
		wantErr(t, err, "bind", "EADDRINUSE")
		if err.Error() != "bind: address already in use" || !errors.Is(err, unix.EADDRINUSE) {
			t.Errorf("err = %q (errors.Is EADDRINUSE %v)", err, errors.Is(err, unix.EADDRINUSE))
		}
		if got, _ := b.LocalAddr(); got.Port() != 0 {
			t.Errorf("failed bind left the socket at %v", got)
		}
	})
	t.Run("reuseaddr lets two unlistened sockets share", func(t *testing.T) {
		c := e.open(sock.TCP)
		d := e.open(sock.TCP)
		for _, s := range []*sock.Socket{c, d} {
			if err := s.SetOption("reuseaddr", 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Bind(any4); err != nil {
			t.Fatal(err)
		}
		ca, _ := c.LocalAddr()
		if err := d.Bind(ca); err != nil {
			t.Fatalf("second bind with reuseaddr on both: %v", err)
		}
	})
	t.Run("EADDRNOTAVAIL", func(t *testing.T) {
		s := e.open(sock.TCP)
		err := s.Bind(netip.MustParseAddrPort("192.0.2.1:0"))
		wantErr(t, err, "bind", "EADDRNOTAVAIL")
		if err.Error() != "bind: cannot assign requested address" {
			t.Errorf("err = %q", err)
		}
	})
	t.Run("EAFNOSUPPORT", func(t *testing.T) {
		s := e.open(sock.TCP)
		err := s.Bind(any6)
		se := wantErr(t, err, "bind", "EAFNOSUPPORT")
		if se.Msg != "::1 is an IPv6 address; use a tcp6 or udp6 socket" {
			t.Errorf("Msg = %q", se.Msg)
		}
		if !errors.Is(err, unix.EAFNOSUPPORT) {
			t.Errorf("errors.Is(%v, EAFNOSUPPORT) = false", err)
		}
	})
	t.Run("EINVAL bound twice", func(t *testing.T) {
		wantErr(t, a.Bind(any4), "bind", "EINVAL")
	})
	t.Run("IPv4 on tcp6 is v4-mapped", func(t *testing.T) {
		needIPv6(t)
		s := e.open(sock.TCP6)
		if err := s.Bind(any4); err != nil {
			t.Fatal(err)
		}
		got, err := s.LocalAddr()
		if err != nil || got.Addr() != netip.MustParseAddr("127.0.0.1") || got.Port() == 0 {
			t.Errorf("LocalAddr = %v, %v; want 127.0.0.1:port (unmapped)", got, err)
		}
	})
}

func TestListen(t *testing.T) {
	e := newEnv(t)
	s, _ := e.bound(sock.TCP)
	err := s.Listen(-1)
	se := wantErr(t, err, "listen", "EINVAL")
	if se.Msg != "backlog -1 is negative" || !errors.Is(se, unix.EINVAL) {
		t.Errorf("Listen(-1) = %q", se)
	}
	if s.Listening() {
		t.Error("Listening() after a failed Listen")
	}
	if err := s.Listen(16); err != nil {
		t.Fatalf("Listen(16): %v", err)
	}
	if !s.Listening() {
		t.Error("Listening() = false after Listen")
	}
	acc, err := unix.GetsockoptInt(s.FD, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil || acc != 1 {
		t.Errorf("SO_ACCEPTCONN = %d, %v", acc, err)
	}

	u, _ := e.bound(sock.UDP)
	// EOPNOTSUPP and ENOTSUP are one number on Linux; x/sys names it ENOTSUP.
	err = u.Listen(1)
	wantErr(t, err, "listen", "ENOTSUP")
	if !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("errors.Is(%v, EOPNOTSUPP) = false", err)
	}
}

func TestAccept(t *testing.T) {
	e := newEnv(t)
	l, laddr := e.listener(sock.TCP, 4)
	l.Owner = "server-task"
	c := e.dial(sock.TCP, laddr)
	caddr, _ := c.LocalAddr()

	s, peer, err := l.Accept(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.own(s)
	if peer != caddr {
		t.Errorf("Accept peer = %v, want the client's %v", peer, caddr)
	}
	if s.FD == l.FD || s.FD == c.FD || s.Kind != sock.TCP {
		t.Errorf("accepted fd %d kind %v (listener %d, client %d)", s.FD, s.Kind, l.FD, c.FD)
	}
	if got, err := e.tbl.Get(s.FD); err != nil || got != s {
		t.Errorf("the accepted socket is not in the table: %v", err)
	}
	if s.Owner != "server-task" {
		t.Errorf("accepted socket's owner %q, want the listener's", s.Owner)
	}
	if a, _ := s.LocalAddr(); a != laddr {
		t.Errorf("accepted LocalAddr = %v, want %v", a, laddr)
	}
	if p, _ := s.PeerAddr(); p != caddr {
		t.Errorf("accepted PeerAddr = %v, want %v", p, caddr)
	}
	if p, _ := c.PeerAddr(); p != laddr {
		t.Errorf("client PeerAddr = %v, want %v", p, laddr)
	}

	// The owner of ctx wins over the listener's.
	e.dial(sock.TCP, laddr)
	s2, _, err := l.Accept(sock.WithOwner(e.ctx, "worker"))
	if err != nil {
		t.Fatal(err)
	}
	e.own(s2)
	if s2.Owner != "worker" {
		t.Errorf("owner = %q, want worker", s2.Owner)
	}

	// Accept on a socket that does not listen.
	u := e.open(sock.TCP)
	if _, _, err := u.Accept(e.ctx); err == nil {
		t.Fatal("Accept on an unlistened socket succeeded")
	} else {
		wantErr(t, err, "accept", "EINVAL")
	}
}

func TestConnect(t *testing.T) {
	e := newEnv(t)
	// A port bound but not listening refuses connections and stays ours.
	_, closed := e.bound(sock.TCP)

	t.Run("ECONNREFUSED", func(t *testing.T) {
		c := e.open(sock.TCP)
		err := c.Connect(e.ctx, closed)
		wantErr(t, err, "connect", "ECONNREFUSED")
		if err.Error() != "connect: connection refused" || !errors.Is(err, unix.ECONNREFUSED) {
			t.Errorf("err = %q", err)
		}
	})
	t.Run("EISCONN", func(t *testing.T) {
		_, laddr := e.listener(sock.TCP, 4)
		c := e.dial(sock.TCP, laddr)
		wantErr(t, c.Connect(e.ctx, laddr), "connect", "EISCONN")
		// Nor does a connected socket move to another address.
		_, other := e.listener(sock.TCP, 4)
		wantErr(t, c.Connect(e.ctx, other), "connect", "EISCONN")
		if p, _ := c.PeerAddr(); p != laddr {
			t.Errorf("PeerAddr = %v, want %v", p, laddr)
		}
	})
	t.Run("EAFNOSUPPORT", func(t *testing.T) {
		c := e.open(sock.TCP)
		wantErr(t, c.Connect(e.ctx, netip.MustParseAddrPort("[::1]:1")), "connect", "EAFNOSUPPORT")
	})
	t.Run("tcp6", func(t *testing.T) {
		needIPv6(t)
		_, laddr := e.listener(sock.TCP6, 4)
		c := e.dial(sock.TCP6, laddr)
		if p, _ := c.PeerAddr(); p != laddr {
			t.Errorf("PeerAddr = %v, want %v", p, laddr)
		}
	})
}

// Read is read(2): it returns what has arrived, at most len(p), and waits
// only while nothing has.
func TestReadSemantics(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)

	if n, err := c.Write(e.ctx, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	buf := make([]byte, 64)
	n, err := s.Read(e.ctx, buf)
	if n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read(64) = %d %q, %v; want 5 \"hello\"", n, buf[:n], err)
	}

	if _, err := c.Write(e.ctx, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 4)
	n, err = s.Read(e.ctx, small)
	if n != 4 || err != nil || string(small) != "0123" {
		t.Fatalf("Read(4) = %d %q, %v; want 4 \"0123\"", n, small[:n], err)
	}
	n, err = s.Read(e.ctx, buf)
	if n != 6 || err != nil || string(buf[:n]) != "456789" {
		t.Fatalf("Read(64) = %d %q, %v; want the 6 bytes left", n, buf[:n], err)
	}

	if n, err := s.Read(e.ctx, nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
	in, out, din, dout := s.Counters()
	if in != 15 || out != 0 || din != 0 || dout != 0 {
		t.Errorf("server counters = in %d out %d dgrams %d/%d; want 15 0 0 0", in, out, din, dout)
	}
	if _, out, _, _ := c.Counters(); out != 15 {
		t.Errorf("client bytes out = %d, want 15", out)
	}
}

// A write of several MiB goes out whole, in order, through many partial
// writes, while a reader drains it.
func TestWriteLarge(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	// A send buffer far smaller than the data makes partial writes certain.
	// (A tiny receive buffer would not: on loopback it stalls TCP.)
	if err := c.SetOption("sndbuf", 64<<10); err != nil {
		t.Fatal(err)
	}
	const size = 6 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}

	type result struct {
		got []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		got := make([]byte, 0, size)
		buf := make([]byte, 32<<10)
		for len(got) < size {
			n, err := s.Read(e.ctx, buf)
			if err != nil {
				done <- result{got, err}
				return
			}
			got = append(got, buf[:n]...)
		}
		done <- result{got, nil}
	}()

	n, err := c.Write(e.ctx, data)
	if n != size || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, size)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("reader stopped after %d bytes: %v", len(r.got), r.err)
	}
	if !bytes.Equal(r.got, data) {
		i := 0
		for i < len(r.got) && r.got[i] == data[i] {
			i++
		}
		t.Fatalf("received bytes differ from sent ones at offset %d", i)
	}
	if _, out, _, _ := c.Counters(); out != size {
		t.Errorf("bytes out = %d, want %d", out, size)
	}
	if in, _, _, _ := s.Counters(); in != size {
		t.Errorf("bytes in = %d, want %d", in, size)
	}
}

func TestUDP(t *testing.T) {
	e := newEnv(t)
	r, raddr := e.bound(sock.UDP)
	w, waddr := e.bound(sock.UDP)

	t.Run("zero-length datagram", func(t *testing.T) {
		if n, err := w.SendTo(e.ctx, nil, raddr); n != 0 || err != nil {
			t.Fatalf("SendTo(empty) = %d, %v", n, err)
		}
		buf := make([]byte, 16)
		n, from, size, err := r.RecvFrom(e.ctx, buf)
		if n != 0 || size != 0 || err != nil || from != waddr {
			t.Fatalf("RecvFrom = n %d from %v size %d err %v; want 0 %v 0 nil", n, from, size, err, waddr)
		}
	})
	t.Run("sender and payload", func(t *testing.T) {
		if n, err := w.SendTo(e.ctx, []byte("ping"), raddr); n != 4 || err != nil {
			t.Fatalf("SendTo = %d, %v", n, err)
		}
		buf := make([]byte, 16)
		n, from, size, err := r.RecvFrom(e.ctx, buf)
		if n != 4 || size != 4 || err != nil || from != waddr || string(buf[:n]) != "ping" {
			t.Fatalf("RecvFrom = %d %q from %v size %d, %v", n, buf[:n], from, size, err)
		}
	})
	t.Run("truncated RecvFrom reports the size", func(t *testing.T) {
		if _, err := w.SendTo(e.ctx, []byte("0123456789"), raddr); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		n, from, size, err := r.RecvFrom(e.ctx, buf)
		if n != 4 || size != 10 || err != nil || from != waddr || string(buf) != "0123" {
			t.Fatalf("RecvFrom = n %d size %d %q from %v, %v; want 4 10 \"0123\"", n, size, buf[:n], from, err)
		}
	})
	t.Run("truncated Read is EMSGSIZE", func(t *testing.T) {
		if _, err := w.SendTo(e.ctx, []byte("0123456789"), raddr); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		n, err := r.Read(e.ctx, buf)
		se := wantErr(t, err, "read", "EMSGSIZE")
		if n != 4 || string(buf) != "0123" || se.Msg != "datagram truncated: 10 bytes, buffer holds 4" || !errors.Is(err, unix.EMSGSIZE) {
			t.Fatalf("Read = %d %q, %q", n, buf, err)
		}
	})
	t.Run("EMSGSIZE for 70000 bytes", func(t *testing.T) {
		n, err := w.SendTo(e.ctx, make([]byte, 70000), raddr)
		wantErr(t, err, "sendto", "EMSGSIZE")
		if n != 0 {
			t.Errorf("n = %d, want 0", n)
		}
	})
	t.Run("write needs a destination", func(t *testing.T) {
		_, err := w.Write(e.ctx, []byte("x"))
		wantErr(t, err, "write", "EDESTADDRREQ")
	})
	t.Run("connected", func(t *testing.T) {
		c := e.open(sock.UDP)
		if err := c.Connect(e.ctx, raddr); err != nil {
			t.Fatal(err)
		}
		caddr, _ := c.LocalAddr()
		if p, err := c.PeerAddr(); p != raddr || err != nil {
			t.Fatalf("PeerAddr = %v, %v", p, err)
		}
		if n, err := c.Write(e.ctx, []byte("via write")); n != 9 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		buf := make([]byte, 64)
		n, from, _, err := r.RecvFrom(e.ctx, buf)
		if err != nil || from != caddr || string(buf[:n]) != "via write" {
			t.Fatalf("RecvFrom = %q from %v, %v", buf[:n], from, err)
		}
		if _, err := r.SendTo(e.ctx, []byte("back"), caddr); err != nil {
			t.Fatal(err)
		}
		n, err = c.Read(e.ctx, buf)
		if n != 4 || err != nil || string(buf[:n]) != "back" {
			t.Fatalf("Read = %q, %v", buf[:n], err)
		}
	})
	t.Run("counters", func(t *testing.T) {
		in, _, din, _ := r.Counters()
		// 0 + 4 + 4 (of 10) + 4 (of 10) + 9 bytes in 5 datagrams.
		if in != 21 || din != 5 {
			t.Errorf("receiver in = %d bytes, %d datagrams; want 21, 5", in, din)
		}
		_, out, _, dout := w.Counters()
		if out != 24 || dout != 4 {
			t.Errorf("sender out = %d bytes, %d datagrams; want 24, 4", out, dout)
		}
	})
}

func TestUDP6SenderAddress(t *testing.T) {
	needIPv6(t)
	e := newEnv(t)
	r, raddr := e.bound(sock.UDP6)
	w, waddr := e.bound(sock.UDP6)
	if _, err := w.SendTo(e.ctx, []byte("six"), raddr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, from, size, err := r.RecvFrom(e.ctx, buf)
	if n != 3 || size != 3 || err != nil || from != waddr || from.Addr() != netip.IPv6Loopback() {
		t.Fatalf("RecvFrom = %d %q from %v size %d, %v; want from %v", n, buf[:n], from, size, err, waddr)
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)

	se := wantErr(t, c.Shutdown("sideways"), "shutdown", "EINVAL")
	if se.Msg != `how must be "r", "w" or "rw", not "sideways"` {
		t.Errorf("Msg = %q", se.Msg)
	}

	if err := c.Shutdown("w"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, err := s.Read(e.ctx, buf)
	wantErr(t, err, "read", "EOF")
	if n != 0 || !errors.Is(err, sock.ErrEOF) {
		t.Errorf("Read after the peer's shutdown = %d, %v", n, err)
	}
	// The other direction still works.
	if _, err := s.Write(e.ctx, []byte("still")); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(e.ctx, buf); n != 5 || err != nil {
		t.Fatalf("Read the other way = %d, %v", n, err)
	}
	// Writing after shutting down writes is EPIPE (and no SIGPIPE kills us).
	_, err = c.Write(e.ctx, []byte("x"))
	wantErr(t, err, "write", "EPIPE")

	// Shutting down reads makes the next read end of stream at once,
	// though the peer has neither written nor closed.
	c2, s2 := e.pair(sock.TCP)
	if err := s2.Shutdown("r"); err != nil {
		t.Fatal(err)
	}
	_, err = s2.Read(e.ctx, buf)
	wantErr(t, err, "read", "EOF")
	if err := c2.Shutdown("rw"); err != nil {
		t.Fatal(err)
	}

	u := e.open(sock.TCP)
	wantErr(t, u.Shutdown("rw"), "shutdown", "ENOTCONN")
}

func TestClose(t *testing.T) {
	e := newEnv(t)
	s, _ := e.bound(sock.TCP)
	fd := s.FD
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !s.Closed() {
		t.Error("Closed() = false")
	}
	if _, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil {
		t.Errorf("fd %d is still open after Close", fd)
	}
	se := wantErr(t, s.Close(), "close", "EBADF")
	if !errors.Is(se, unix.EBADF) || !errors.Is(se, sock.ErrClosed) {
		t.Errorf("second Close = %v, not EBADF", se)
	}

	_, err := e.tbl.Get(fd)
	wantErr(t, err, "", "EBADF")
	ctx := e.ctx
	buf := make([]byte, 1)
	_, err = s.Read(ctx, buf)
	wantErr(t, err, "read", "EBADF")
	_, err = s.Write(ctx, buf)
	wantErr(t, err, "write", "EBADF")
	wantErr(t, s.Bind(any4), "bind", "EBADF")
	wantErr(t, s.Listen(1), "listen", "EBADF")
	wantErr(t, s.Connect(ctx, any4), "connect", "EBADF")
	wantErr(t, s.Shutdown("w"), "shutdown", "EBADF")
	wantErr(t, s.SetOption("nodelay", 1), "setsockopt", "EBADF")
	_, err = s.Option("nodelay")
	wantErr(t, err, "getsockopt", "EBADF")
	_, _, err = s.Accept(ctx)
	wantErr(t, err, "accept", "EBADF")
	_, err = s.LocalAddr()
	wantErr(t, err, "getsockname", "EBADF")
	_, err = s.PeerAddr()
	wantErr(t, err, "getpeername", "EBADF")

	u := e.open(sock.UDP)
	u.Close()
	wantErr(t, u.Impair(&sock.Impairment{Loss: 0.5}), "impair", "EBADF")
	_, _, _, err = u.RecvFrom(ctx, buf)
	wantErr(t, err, "recvfrom", "EBADF")
	_, err = u.SendTo(ctx, buf, any4)
	wantErr(t, err, "sendto", "EBADF")
}

func TestTableGetUnknown(t *testing.T) {
	e := newEnv(t)
	for _, fd := range []int{-1, 0, 1, 2, 99999} {
		s, err := e.tbl.Get(fd)
		if s != nil {
			t.Fatalf("Get(%d) returned a socket", fd)
		}
		se := wantErr(t, err, "", "EBADF")
		want := "bad file descriptor (fd " + strconv.Itoa(fd) + " is not an open socket)"
		if se.Msg != want || !errors.Is(err, unix.EBADF) {
			t.Errorf("Get(%d) = %q, want %q", fd, se.Msg, want)
		}
	}
}

func TestTableBookkeeping(t *testing.T) {
	e := newEnv(t)
	a, err := e.tbl.Open(sock.WithOwner(e.ctx, "alpha"), sock.TCP)
	if err != nil {
		t.Fatal(err)
	}
	e.own(a)
	b, err := e.tbl.Open(sock.WithOwner(e.ctx, "beta"), sock.UDP)
	if err != nil {
		t.Fatal(err)
	}
	e.own(b)
	c, err := e.tbl.Open(sock.WithOwner(e.ctx, "alpha"), sock.UDP)
	if err != nil {
		t.Fatal(err)
	}
	e.own(c)
	if a.Owner != "alpha" || b.Owner != "beta" {
		t.Fatalf("owners %q %q", a.Owner, b.Owner)
	}
	var fds []int
	for _, s := range e.tbl.Sockets() {
		fds = append(fds, s.FD)
	}
	want := []int{a.FD, b.FD, c.FD}
	if !reflect.DeepEqual(fds, want) || e.tbl.Len() != 3 {
		t.Fatalf("Sockets() fds = %v (Len %d), want %v", fds, e.tbl.Len(), want)
	}
	if n := e.tbl.CloseOwned("alpha"); n != 2 {
		t.Errorf("CloseOwned(alpha) = %d, want 2", n)
	}
	if !a.Closed() || !c.Closed() || b.Closed() || e.tbl.Len() != 1 {
		t.Errorf("after CloseOwned: a %v b %v c %v, Len %d", a.Closed(), b.Closed(), c.Closed(), e.tbl.Len())
	}
	e.tbl.CloseAll()
	if !b.Closed() || e.tbl.Len() != 0 {
		t.Errorf("after CloseAll: b closed %v, Len %d", b.Closed(), e.tbl.Len())
	}
}

func TestAddrs(t *testing.T) {
	e := newEnv(t)
	u := e.open(sock.TCP)
	_, err := u.PeerAddr()
	se := wantErr(t, err, "getpeername", "ENOTCONN")
	if se.Msg != "transport endpoint is not connected" {
		t.Errorf("Msg = %q", se.Msg)
	}
	d, _ := e.bound(sock.UDP)
	_, err = d.PeerAddr()
	wantErr(t, err, "getpeername", "ENOTCONN")

	c, s := e.pair(sock.TCP)
	cl, _ := c.LocalAddr()
	cp, _ := c.PeerAddr()
	sl, _ := s.LocalAddr()
	sp, _ := s.PeerAddr()
	if cl != sp || cp != sl || cl.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("client %v -> %v, server %v -> %v", cl, cp, sl, sp)
	}
}

func TestOptions(t *testing.T) {
	e := newEnv(t)
	want := []string{"broadcast", "keepalive", "linger", "nodelay", "original_dst", "rcvbuf", "reuseaddr", "reuseport", "sndbuf", "ttl"}
	if got := sock.OptionNames(); !reflect.DeepEqual(got, want) {
		t.Fatalf("OptionNames() = %v; this test covers %v", got, want)
	}
	for _, name := range want {
		if !strings.Contains(sock.OptionDoc(name), "SO_") && !strings.Contains(sock.OptionDoc(name), "TCP_") && !strings.Contains(sock.OptionDoc(name), "IP_") {
			t.Errorf("OptionDoc(%q) = %q", name, sock.OptionDoc(name))
		}
	}

	tcp := e.open(sock.TCP)
	udp := e.open(sock.UDP)
	roundTrip := func(s *sock.Socket, name string, set, wantGet int) {
		t.Helper()
		if err := s.SetOption(name, set); err != nil {
			t.Errorf("SetOption(%s, %d) on %s: %v", name, set, s.Kind, err)
			return
		}
		got, err := s.Option(name)
		if err != nil || got != wantGet {
			t.Errorf("Option(%s) on %s after setting %d = %d, %v; want %d", name, s.Kind, set, got, err, wantGet)
		}
	}
	for _, name := range []string{"reuseaddr", "reuseport", "keepalive", "nodelay"} {
		if v, err := tcp.Option(name); v != 0 || err != nil {
			t.Errorf("default %s = %d, %v; want 0", name, v, err)
		}
		roundTrip(tcp, name, 1, 1)
		roundTrip(tcp, name, 0, 0)
	}
	roundTrip(udp, "broadcast", 1, 1)
	roundTrip(udp, "broadcast", 0, 0)

	for _, name := range []string{"rcvbuf", "sndbuf"} {
		if err := tcp.SetOption(name, 65536); err != nil {
			t.Fatal(err)
		}
		got, err := tcp.Option(name)
		if err != nil || got < 65536 {
			t.Errorf("Option(%s) after setting 65536 = %d, %v; want >= 65536 (the kernel doubles it)", name, got, err)
		}
	}

	if v, err := tcp.Option("linger"); v != -1 || err != nil {
		t.Errorf("default linger = %d, %v; want -1 (off)", v, err)
	}
	roundTrip(tcp, "linger", 5, 5)
	roundTrip(tcp, "linger", -1, -1)
	roundTrip(tcp, "linger", 0, 0)

	roundTrip(tcp, "ttl", 7, 7)
	roundTrip(udp, "ttl", 9, 9)
	if v, _ := unix.GetsockoptInt(tcp.FD, unix.IPPROTO_IP, unix.IP_TTL); v != 7 {
		t.Errorf("IP_TTL read directly = %d, want 7", v)
	}

	// original_dst is an address, read with OriginalDst; a connection no
	// NAT redirected has none.
	if !sock.OptionIsAddr("original_dst") || sock.OptionIsAddr("ttl") {
		t.Error("OptionIsAddr: original_dst is the address option, ttl is not")
	}
	wantErr(t, tcp.SetOption("original_dst", 1), "setsockopt", "EINVAL")
	_, err := tcp.Option("original_dst")
	wantErr(t, err, "getsockopt", "EINVAL")
	c, _ := e.pair(sock.TCP)
	_, err = c.OriginalDst()
	wantErr(t, err, "getsockopt", "ENOENT")
	_, err = udp.OriginalDst()
	wantErr(t, err, "getsockopt", "EINVAL")

	se := wantErr(t, tcp.SetOption("frobnicate", 1), "setsockopt", "EINVAL")
	if se.Msg != `unknown option "frobnicate"` {
		t.Errorf("Msg = %q", se.Msg)
	}
	_, err = tcp.Option("frobnicate")
	wantErr(t, err, "getsockopt", "EINVAL")

	// A TCP option on a UDP socket is the kernel's refusal.
	wantErr(t, udp.SetOption("nodelay", 1), "setsockopt", "ENOPROTOOPT")
	// So is a hop limit out of range.
	if err := tcp.SetOption("ttl", 300); err == nil {
		t.Error("ttl 300 accepted")
	} else {
		wantErr(t, err, "setsockopt", "EINVAL")
	}
}

func TestOptionsIPv6TTL(t *testing.T) {
	needIPv6(t)
	e := newEnv(t)
	s := e.open(sock.TCP6)
	if err := s.SetOption("ttl", 7); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Option("ttl"); v != 7 || err != nil {
		t.Errorf("Option(ttl) = %d, %v", v, err)
	}
	if v, _ := unix.GetsockoptInt(s.FD, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS); v != 7 {
		t.Errorf("IPV6_UNICAST_HOPS read directly = %d, want 7", v)
	}
}

// A peer that closes with linger 0 sends a reset: the next read is
// ECONNRESET.
func TestResetRead(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	if err := s.SetOption("linger", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(e.ctx, make([]byte, 16))
	wantErr(t, err, "read", "ECONNRESET")
	if n != 0 || err.Error() != "read: connection reset by peer" {
		t.Errorf("Read = %d, %q", n, err)
	}
}

// Writing to a peer that reset the connection fails with ECONNRESET (the
// reset is reported once), and every write after that with EPIPE.
func TestResetWrite(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	if err := s.SetOption("linger", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Write(e.ctx, []byte("data"))
	if err == nil {
		// The reset had not arrived yet: the write went out. A read waits
		// for the reset and reports it.
		_, err = c.Read(e.ctx, make([]byte, 16))
		wantErr(t, err, "read", "ECONNRESET")
	} else {
		wantErr(t, err, "write", "ECONNRESET")
	}
	_, err = c.Write(e.ctx, []byte("again"))
	wantErr(t, err, "write", "EPIPE")
	if !errors.Is(err, unix.EPIPE) {
		t.Errorf("errors.Is(%v, EPIPE) = false", err)
	}
}

// After an orderly close the first write still goes out; the peer's kernel
// answers it with a reset, and the write after that is EPIPE.
func TestWriteAfterPeerClosed(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_, err := c.Read(e.ctx, buf)
	wantErr(t, err, "read", "EOF")
	if n, err := c.Write(e.ctx, []byte("data")); n != 4 || err != nil {
		t.Fatalf("first write after the peer's FIN = %d, %v; want 4, nil", n, err)
	}
	poll(t, "the peer's reset to end CLOSE_WAIT", func() bool {
		return snapEntry(t, e.tbl, c.FD).Socket.State != "CLOSE_WAIT"
	})
	_, err = c.Write(e.ctx, []byte("again"))
	wantErr(t, err, "write", "EPIPE")
}
