//go:build linux

package sock_test

// Waking blocked operations: a cancelled context (ECANCELED), a socket
// timeout (ETIMEDOUT), a Close from another goroutine (EBADF); and the
// socket still working afterwards.

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockplay/sock"
)

type acceptResult struct {
	s   *sock.Socket
	err error
}

// goAccept runs Accept on another goroutine and waits until it is parked
// in the poller.
func goAccept(t *testing.T, e *env, l *sock.Socket, ctx context.Context) <-chan acceptResult {
	t.Helper()
	ch := make(chan acceptResult, 1)
	go func() {
		s, _, err := l.Accept(ctx)
		if s != nil {
			e.own(s)
		}
		ch <- acceptResult{s, err}
	}()
	waitBlocked(t, "sock.(*Socket).Accept(", "sock_test.goAccept.")
	return ch
}

type readResult struct {
	data []byte
	err  error
}

func goRead(t *testing.T, s *sock.Socket, ctx context.Context) <-chan readResult {
	t.Helper()
	ch := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := s.Read(ctx, buf)
		ch <- readResult{buf[:n], err}
	}()
	waitBlocked(t, "sock.(*Socket).Read(", "sock_test.goRead.")
	return ch
}

// checkStillWorks proves no deadline stuck to the socket: a read that has
// to wait, then gets data, succeeds.
func checkStillWorks(t *testing.T, e *env, c, s *sock.Socket) {
	t.Helper()
	ch := goRead(t, s, e.ctx)
	if _, err := c.Write(e.ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil || string(r.data) != "after" {
		t.Fatalf("the read after = %q, %v; want \"after\"", r.data, r.err)
	}
}

func TestAcceptCancel(t *testing.T) {
	e := newEnv(t)
	l, laddr := e.listener(sock.TCP, 4)
	ctx, cancel := context.WithCancel(e.ctx)
	ch := goAccept(t, e, l, ctx)
	cancel()
	r := <-ch
	se := wantErr(t, r.err, "accept", "ECANCELED")
	if r.s != nil || se.Msg != "interrupted" || !errors.Is(r.err, sock.ErrCanceled) || !errors.Is(r.err, unix.ECANCELED) {
		t.Errorf("Accept = %v, %q", r.s, r.err)
	}

	// The cancel left no deadline behind: an Accept that has to wait works.
	ch = goAccept(t, e, l, e.ctx)
	c := e.dial(sock.TCP, laddr)
	r = <-ch
	if r.err != nil {
		t.Fatalf("the Accept after a cancel: %v", r.err)
	}
	cl, _ := c.LocalAddr()
	if p, _ := r.s.PeerAddr(); p != cl {
		t.Errorf("accepted %v, want %v", p, cl)
	}

	// A context cancelled before the call: nothing to accept, ECANCELED at
	// once.
	_, _, err := l.Accept(ctx)
	wantErr(t, err, "accept", "ECANCELED")
	// But a connection that is already there is accepted even so: the
	// first try costs no waiting.
	e.dial(sock.TCP, laddr)
	poll(t, "the connection in the accept queue", func() bool {
		return snapEntry(t, e.tbl, l.FD).Socket.RecvQ == 1
	})
	s, _, err := l.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept with a ready connection and a cancelled context: %v", err)
	}
	e.own(s)
}

func TestAcceptTimeout(t *testing.T) {
	e := newEnv(t)
	l, laddr := e.listener(sock.TCP, 4)
	const d = 100 * time.Millisecond
	l.SetTimeout(d)
	if l.Timeout() != d {
		t.Fatalf("Timeout() = %v", l.Timeout())
	}
	start := time.Now()
	s, _, err := l.Accept(e.ctx)
	elapsed := time.Since(start)
	se := wantErr(t, err, "accept", "ETIMEDOUT")
	if s != nil || se.Msg != "timed out" || !errors.Is(err, unix.ETIMEDOUT) || !errors.Is(err, sock.ErrTimeout) {
		t.Errorf("Accept = %v, %q", s, err)
	}
	if elapsed < d {
		t.Errorf("timed out after %v, before the %v timeout", elapsed, d)
	}

	l.SetTimeout(ioTimeout)
	ch := goAccept(t, e, l, e.ctx)
	e.dial(sock.TCP, laddr)
	if r := <-ch; r.err != nil {
		t.Fatalf("the Accept after a timeout: %v", r.err)
	}
	l.SetTimeout(-time.Second)
	if l.Timeout() != 0 {
		t.Errorf("a negative timeout gives %v, want 0 (none)", l.Timeout())
	}
}

func TestReadCancel(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	ctx, cancel := context.WithCancel(e.ctx)
	ch := goRead(t, s, ctx)
	cancel()
	r := <-ch
	wantErr(t, r.err, "read", "ECANCELED")
	if len(r.data) != 0 {
		t.Errorf("a cancelled read returned %q", r.data)
	}
	checkStillWorks(t, e, c, s)
	// A context cancelled before the call, with no data: ECANCELED.
	_, err := s.Read(ctx, make([]byte, 8))
	wantErr(t, err, "read", "ECANCELED")
	checkStillWorks(t, e, c, s)
}

func TestReadTimeout(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	const d = 100 * time.Millisecond
	s.SetTimeout(d)
	start := time.Now()
	n, err := s.Read(e.ctx, make([]byte, 8))
	elapsed := time.Since(start)
	wantErr(t, err, "read", "ETIMEDOUT")
	if n != 0 || elapsed < d {
		t.Errorf("Read = %d after %v (timeout %v)", n, elapsed, d)
	}
	s.SetTimeout(ioTimeout)
	checkStillWorks(t, e, c, s)

	// A timeout on a datagram socket ends a recvfrom the same way.
	u, _ := e.bound(sock.UDP)
	u.SetTimeout(d)
	_, _, _, err = u.RecvFrom(e.ctx, make([]byte, 8))
	wantErr(t, err, "recvfrom", "ETIMEDOUT")
}

// Cancels racing the operation in every way must never leave a deadline
// behind; prepareRead refuses at once when one has passed.
func TestReadCancelRace(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	buf := make([]byte, 8)
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithCancel(e.ctx)
		go cancel()
		_, err := s.Read(ctx, buf)
		wantErr(t, err, "read", "ECANCELED")
		if _, err := c.Write(e.ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		n, err := s.Read(e.ctx, buf)
		if n != 1 || err != nil || buf[0] != byte(i) {
			t.Fatalf("round %d: the read after a cancel = %d %v, %v", i, n, buf[:n], err)
		}
	}
}

func TestCloseWakesRead(t *testing.T) {
	e := newEnv(t)
	_, s := e.pair(sock.TCP)
	ch := goRead(t, s, e.ctx)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r := <-ch
	se := wantErr(t, r.err, "read", "EBADF")
	if se.Msg != "bad file descriptor (closed while read waited)" || !errors.Is(r.err, unix.EBADF) {
		t.Errorf("Read = %q", r.err)
	}
}

func TestCloseWakesAccept(t *testing.T) {
	e := newEnv(t)
	l, _ := e.listener(sock.TCP, 4)
	ch := goAccept(t, e, l, e.ctx)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r := <-ch
	se := wantErr(t, r.err, "accept", "EBADF")
	if r.s != nil || se.Msg != "bad file descriptor (closed while accept waited)" {
		t.Errorf("Accept = %v, %q", r.s, r.err)
	}
}

type writeResult struct {
	n   int
	err error
}

// fillAndBlock starts a write far larger than the socket buffers to a peer
// that does not read, and returns once it waits for space.
func fillAndBlock(t *testing.T, c *sock.Socket, ctx context.Context, size int) <-chan writeResult {
	t.Helper()
	ch := make(chan writeResult, 1)
	go func() {
		n, err := c.Write(ctx, make([]byte, size))
		ch <- writeResult{n, err}
	}()
	waitBlocked(t, "sock.(*Socket).Write(", "sock_test.fillAndBlock.")
	return ch
}

// A write that waits for buffer space is cancelled; it reports how many
// bytes went out, and exactly that many arrive.
func TestWriteCancel(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	const size = 32 << 20
	ctx, cancel := context.WithCancel(e.ctx)
	ch := fillAndBlock(t, c, ctx, size)
	cancel()
	r := <-ch
	wantErr(t, r.err, "write", "ECANCELED")
	if r.n <= 0 || r.n >= size {
		t.Fatalf("cancelled Write = %d bytes, want 0 < n < %d", r.n, size)
	}
	if _, out, _, _ := c.Counters(); out != uint64(r.n) {
		t.Errorf("bytes out %d, Write said %d", out, r.n)
	}
	if err := c.Shutdown("w"); err != nil {
		t.Fatal(err)
	}
	total := 0
	buf := make([]byte, 256<<10)
	for {
		n, err := s.Read(e.ctx, buf)
		total += n
		if err != nil {
			wantErr(t, err, "read", "EOF")
			break
		}
	}
	if total != r.n {
		t.Errorf("the peer received %d bytes, Write said %d went out", total, r.n)
	}
}

func TestWriteTimeoutAndClose(t *testing.T) {
	e := newEnv(t)
	c, _ := e.pair(sock.TCP)
	c.SetTimeout(100 * time.Millisecond)
	n, err := c.Write(e.ctx, make([]byte, 32<<20))
	wantErr(t, err, "write", "ETIMEDOUT")
	if n <= 0 || n >= 32<<20 {
		t.Errorf("timed-out Write = %d bytes", n)
	}

	// Close wakes a write that waits for space.
	c.SetTimeout(ioTimeout)
	ch := fillAndBlock(t, c, e.ctx, 32<<20)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	se := wantErr(t, r.err, "write", "EBADF")
	if se.Msg != "bad file descriptor (closed while write waited)" {
		t.Errorf("Write = %d, %q", r.n, r.err)
	}
}

// Connect is a non-blocking connect(2) and a wait: against a listener whose
// accept queue is full the SYN is dropped, so the wait can be cancelled or
// time out, and a later Connect finishes the job.
func TestConnectCancel(t *testing.T) {
	e := newEnv(t)
	// Backlog 1 queues two connections; the third SYN is dropped.
	l, laddr := e.listener(sock.TCP, 1)
	e.dial(sock.TCP, laddr)
	e.dial(sock.TCP, laddr)
	poll(t, "a full accept queue", func() bool {
		return snapEntry(t, e.tbl, l.FD).Socket.RecvQ == 2
	})

	cancelled, cancel := context.WithCancel(e.ctx)
	cancel()
	c := e.open(sock.TCP)
	err := c.Connect(cancelled, laddr)
	wantErr(t, err, "connect", "ECANCELED")
	if got := snapEntry(t, e.tbl, c.FD).Socket.State; got != "SYN_SENT" {
		t.Errorf("after a cancelled connect the socket is %s, want SYN_SENT", got)
	}

	// Cancelled while it waits.
	c2 := e.open(sock.TCP)
	ctx, cancel2 := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- c2.Connect(ctx, laddr) }()
	waitBlocked(t, "sock.(*Socket).Connect(", testFunc(t))
	cancel2()
	wantErr(t, <-done, "connect", "ECANCELED")

	// Timed out.
	c3 := e.open(sock.TCP)
	c3.SetTimeout(100 * time.Millisecond)
	wantErr(t, c3.Connect(e.ctx, laddr), "connect", "ETIMEDOUT")

	// Empty the queue: the cancelled socket's SYN is retransmitted (after
	// one second, then three, then seven) and a second Connect waits for
	// the handshake to finish. c2 and c3 go first: their SYNs, sent again
	// too, would take the two places in the queue.
	c2.Close()
	c3.Close()
	e.accept(l)
	e.accept(l)
	c.SetTimeout(15 * time.Second)
	if err := c.Connect(e.ctx, laddr); err != nil {
		t.Fatalf("Connect again after a cancel: %v", err)
	}
	if p, _ := c.PeerAddr(); p != laddr {
		t.Errorf("PeerAddr = %v, want %v", p, laddr)
	}
	wantErr(t, c.Connect(e.ctx, laddr), "connect", "EISCONN")
}
