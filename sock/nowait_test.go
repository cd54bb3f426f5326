//go:build linux

package sock_test

import (
	"testing"
	"time"

	"sockplay/sock"
)

// With NoWait every operation tries once: one the kernel can serve
// succeeds, one that would wait fails with ETIMEDOUT at once, without
// telling the parker (nothing waited) and without arming a deadline that
// a later blocking call would trip on.
func TestNoWait(t *testing.T) {
	e := newEnv(t)
	p := &testParker{}
	ctx := sock.WithParker(e.ctx, p)
	c, s := e.pair(sock.TCP)
	s.SetTimeout(sock.NoWait)
	if s.Timeout() != sock.NoWait {
		t.Fatalf("Timeout() = %v, want NoWait", s.Timeout())
	}

	start := time.Now()
	_, err := s.ReadString(ctx, 64)
	wantErr(t, err, "read", "ETIMEDOUT")
	if _, err := c.Write(e.ctx, []byte("ready")); err != nil {
		t.Fatal(err)
	}
	// The bytes may take a moment to cross loopback: retry a bounded
	// number of times, as a caller polling a non-blocking socket would.
	var got string
	for i := 0; i < 1000 && got == ""; i++ {
		got, err = s.ReadString(ctx, 64)
		if err != nil && sock.Code(err) != "ETIMEDOUT" {
			t.Fatalf("read: %v", err)
		}
	}
	if got != "ready" {
		t.Fatalf("read = %q, want %q", got, "ready")
	}

	// A write that fills the send buffer returns what went out, then
	// ETIMEDOUT.
	big := make([]byte, 16<<20)
	n, err := s.Write(ctx, big)
	wantErr(t, err, "write", "ETIMEDOUT")
	if n <= 0 || n >= len(big) {
		t.Errorf("write sent %d of %d bytes, want a partial write", n, len(big))
	}

	l, _ := e.listener(sock.TCP, 1)
	l.SetTimeout(sock.NoWait)
	_, _, err = l.Accept(ctx)
	wantErr(t, err, "accept", "ETIMEDOUT")

	u, _ := e.bound(sock.UDP)
	u.SetTimeout(sock.NoWait)
	_, _, _, err = u.RecvFrom(ctx, make([]byte, 16))
	wantErr(t, err, "recvfrom", "ETIMEDOUT")

	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("NoWait calls took %v in all", d)
	}
	if n := p.parks.Load(); n != 0 {
		t.Errorf("parker told of %d waits, want none", n)
	}

	// Back to blocking: the read waits for what the peer sends.
	s.SetTimeout(5 * time.Second)
	go c.Write(e.ctx, []byte("x"))
	drained := 0
	for drained < n {
		m, err := c.Read(e.ctx, make([]byte, 1<<20))
		if err != nil {
			t.Fatalf("draining: %v", err)
		}
		drained += m
	}
	if got, err := s.ReadString(e.ctx, 1); err != nil || got != "x" {
		t.Errorf("blocking read after NoWait = %q, %v", got, err)
	}
}

// Other negative timeouts still mean no bound, as before.
func TestNegativeTimeoutIsNone(t *testing.T) {
	e := newEnv(t)
	s := e.open(sock.TCP)
	s.SetTimeout(-5 * time.Second)
	if s.Timeout() != 0 {
		t.Errorf("Timeout() = %v, want 0", s.Timeout())
	}
}

// Disconnect undoes a datagram socket's connect: the peer is gone, and
// datagrams from any sender arrive again. (A port the kernel picked goes
// with the association: the next send picks another.)
func TestDisconnect(t *testing.T) {
	e := newEnv(t)
	a, _ := e.bound(sock.UDP)
	_, bAddr := e.bound(sock.UDP)
	c, cAddr := e.bound(sock.UDP)
	if err := a.Connect(e.ctx, bAddr); err != nil {
		t.Fatal(err)
	}
	if p, err := a.PeerAddr(); err != nil || p != bAddr {
		t.Fatalf("PeerAddr after connect = %v, %v", p, err)
	}
	if err := a.Disconnect(); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	_, err := a.PeerAddr()
	wantErr(t, err, "getpeername", "ENOTCONN")
	if _, err := a.SendTo(e.ctx, []byte("to c"), cAddr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, from, _, err := c.RecvFrom(e.ctx, buf)
	if err != nil || string(buf[:n]) != "to c" {
		t.Fatalf("c got %q, %v", buf[:n], err)
	}
	if _, err := c.SendTo(e.ctx, []byte("from c"), from); err != nil {
		t.Fatal(err)
	}
	n, _, _, err = a.RecvFrom(e.ctx, buf)
	if err != nil || string(buf[:n]) != "from c" {
		t.Errorf("RecvFrom after Disconnect = %q, %v; want the datagram of a third socket", buf[:n], err)
	}
	a.Close()
	wantErr(t, a.Disconnect(), "connect", "EBADF")
}
