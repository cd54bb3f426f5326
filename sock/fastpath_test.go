//go:build linux

package sock_test

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"sockplay/sock"
)

// The fast path: a call the kernel can complete at once (a datagram
// already queued, room in the send buffer, a connection in the accept
// queue) makes its system call and returns, without parking in the poller
// and without telling the Parker, so the Lua host keeps its interpreter
// lock. Counted, not timed: Socket.Waits and the Parker's counts.
func TestFastPathDatagramAndAccept(t *testing.T) {
	e := newEnv(t)
	p := &testParker{}
	ctx := sock.WithParker(e.ctx, p)
	r, raddr := e.bound(sock.UDP)
	w, waddr := e.bound(sock.UDP)

	for i := range 3 {
		if n, err := w.SendTo(ctx, []byte("dgram"), raddr); n != 5 || err != nil {
			t.Fatalf("SendTo %d = %d, %v", i, n, err)
		}
	}
	poll(t, "three datagrams queued", func() bool { return snapEntry(t, e.tbl, r.FD).Socket.RecvQ > 0 })
	for i := range 3 {
		text, from, size, err := r.RecvFromString(ctx, "recvfrom", 64)
		if text != "dgram" || from != waddr || size != 5 || err != nil {
			t.Fatalf("RecvFromString %d = %q from %v size %d, %v; want \"dgram\" from %v", i, text, from, size, err, waddr)
		}
	}
	l, laddr := e.listener(sock.TCP, 8)
	c := e.dial(sock.TCP, laddr)
	poll(t, "a connection in the accept queue", func() bool { return snapEntry(t, e.tbl, l.FD).Socket.RecvQ == 1 })
	a, peer, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.own(a)
	if local, _ := c.LocalAddr(); peer != local {
		t.Fatalf("Accept's peer %v, the client is %v", peer, local)
	}
	for _, s := range []*sock.Socket{r, w, l} {
		if n := s.Waits(); n != 0 {
			t.Errorf("fd %d (%s): %d waits for calls that could complete at once", s.FD, s.Kind, n)
		}
	}
	if p.parks.Load() != 0 {
		t.Fatalf("calls that completed at once parked %d times", p.parks.Load())
	}

	// With nothing queued the call waits, once, and says so.
	done := make(chan error, 1)
	go func() {
		_, _, _, err := r.RecvFromString(ctx, "recvfrom", 64)
		done <- err
	}()
	waitBlocked(t, "sock.(*Socket).RecvFromString(", testFunc(t))
	w.SendTo(e.ctx, []byte("late"), raddr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Waits() != 1 || p.parks.Load() != 1 || p.unparks.Load() != 1 {
		t.Fatalf("a recvfrom that waited: %d waits, %d parks, %d unparks; want 1 each", r.Waits(), p.parks.Load(), p.unparks.Load())
	}
	if info := r.Info(); info.Waits != 1 {
		t.Fatalf("Info().Waits = %d, want 1", info.Waits)
	}
}

// recvfrom names the sender without asking the kernel anything more than
// recvmsg(2): IPv4, IPv6, and an IPv4 sender seen by an IPv6 socket (the
// kernel gives it v4-mapped; the caller sees plain IPv4).
func TestRecvFromSenders(t *testing.T) {
	e := newEnv(t)
	needIPv6(t)
	r6, r6addr := e.bound(sock.UDP6)
	w6, w6addr := e.bound(sock.UDP6)
	if _, err := w6.SendTo(e.ctx, []byte("six"), r6addr); err != nil {
		t.Fatal(err)
	}
	if text, from, _, err := r6.RecvFromString(e.ctx, "recvfrom", 8); text != "six" || from != w6addr || err != nil {
		t.Fatalf("over IPv6: %q from %v, %v; want from %v", text, from, err, w6addr)
	}

	dual := e.open(sock.UDP6)
	if err := dual.Bind(netip.MustParseAddrPort("[::]:0")); err != nil {
		t.Fatal(err)
	}
	la, _ := dual.LocalAddr()
	w4, w4addr := e.bound(sock.UDP)
	if _, err := w4.SendTo(e.ctx, []byte("four"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), la.Port())); err != nil {
		t.Fatal(err)
	}
	if text, from, _, err := dual.RecvFromString(e.ctx, "recvfrom", 8); text != "four" || from != w4addr || err != nil {
		t.Fatalf("IPv4 to a dual-stack socket: %q from %v, %v; want from %v", text, from, err, w4addr)
	}
	// And back: sendto an IPv4 address from the IPv6 socket.
	if _, err := dual.SendTo(e.ctx, []byte("back"), w4addr); err != nil {
		t.Fatal(err)
	}
	if text, _, _, err := w4.RecvFromString(e.ctx, "recvfrom", 8); text != "back" || err != nil {
		t.Fatalf("reply over the dual-stack socket: %q, %v", text, err)
	}
}

// A send made directly (outside the poller) while another goroutine closes
// the socket never lands on a new socket that reuses the fd number: Close
// waits for a direct call in progress. The receiver must hear nothing from
// the sockets opened after each close.
func TestDirectCallAndCloseRace(t *testing.T) {
	e := newEnv(t)
	r, raddr := e.bound(sock.UDP)
	r.SetTimeout(0)
	// Widen the window between a direct call's check that the socket is
	// open and the call itself, where a close would strike.
	sock.SetDirectHook(func() { time.Sleep(20 * time.Microsecond) })
	defer sock.SetDirectHook(nil)
	strangers, senders := map[netip.AddrPort]bool{}, map[netip.AddrPort]bool{}
	for i := range 200 {
		s, saddr := e.bound(sock.UDP)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := s.SendTo(e.ctx, []byte("old"), raddr); err != nil {
					return // EBADF once closed
				}
			}
		}()
		for range i % 7 {
			runtime.Gosched()
		}
		s.Close()
		n := e.open(sock.UDP) // likely the same fd number
		if err := n.Bind(loopback(sock.UDP)); err != nil {
			t.Fatal(err)
		}
		// (The kernel may give n a port that a closed s had: that s's own
		// datagrams would pass for n's then, so that round proves
		// nothing.)
		senders[saddr] = true
		if a, _ := n.LocalAddr(); !senders[a] {
			strangers[a] = true
		}
		<-done
		// n stays open to the end, so no later socket can take its port
		// (and its datagrams pass for n's).
	}
	// Drain what arrived: every datagram must come from a closed socket.
	buf := make([]byte, 16)
	r.SetTimeout(50 * time.Millisecond)
	for {
		_, from, _, err := r.RecvFrom(e.ctx, buf)
		if err != nil {
			break
		}
		if strangers[from] {
			t.Fatalf("a datagram sent on a closed socket went out from %v, the socket that took its fd", from)
		}
	}
}
