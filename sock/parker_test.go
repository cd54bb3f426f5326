//go:build linux

package sock_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sockplay/sock"
)

// testParker counts what a socket call tells it. As a CancelWatcher it
// stands for the Lua host: it wakes the watched wait when its context ends.
type testParker struct {
	parks, unparks atomic.Int32
	onPark         func() // run by Park, if set

	mu      sync.Mutex
	watched sock.Wakeable
	watches int
}

func (p *testParker) Park() {
	p.parks.Add(1)
	if p.onPark != nil {
		p.onPark()
	}
}
func (p *testParker) Unpark() { p.unparks.Add(1) }

type watchingParker struct{ testParker }

func (p *watchingParker) WatchCancel(w sock.Wakeable) {
	p.mu.Lock()
	p.watched = w
	p.watches++
	p.mu.Unlock()
}

func (p *watchingParker) UnwatchCancel(w sock.Wakeable) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok := p.watched == w
	p.watched = nil
	return ok
}

func (p *watchingParker) cancelled() {
	p.mu.Lock()
	w := p.watched
	p.watched = nil
	p.mu.Unlock()
	if w != nil {
		w.Wake()
	}
}

// A call that completes at once never parks; one that waits parks once
// and unparks once, whatever wakes it.
func TestParkerToldOnlyWhenWaiting(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	p := &testParker{}
	ctx := sock.WithParker(e.ctx, p)

	c.Write(e.ctx, []byte("ready"))
	poll(t, "5 bytes queued", func() bool { return snapEntry(t, e.tbl, s.FD).Socket.RecvQ == 5 })
	if text, err := s.ReadString(ctx, 64); text != "ready" || err != nil {
		t.Fatalf("ReadString = %q, %v", text, err)
	}
	if n, err := s.Write(ctx, []byte("room")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if p.parks.Load() != 0 || p.unparks.Load() != 0 {
		t.Fatalf("calls that completed at once parked %d, unparked %d times", p.parks.Load(), p.unparks.Load())
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.ReadString(ctx, 64)
		done <- err
	}()
	waitBlocked(t, "sock.(*Socket).ReadString(", testFunc(t))
	c.Write(e.ctx, []byte("late"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.parks.Load() != 1 || p.unparks.Load() != 1 {
		t.Fatalf("a call that waited parked %d, unparked %d times; want 1, 1", p.parks.Load(), p.unparks.Load())
	}
}

// With a CancelWatcher the wait is woken by the watcher, not by an
// AfterFunc of its own: cancels landing before, during and after the wait
// begins all end it with ECANCELED, and none leaves a deadline behind that
// would fail the next read.
func TestCancelWatcherWakesWait(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	for i := range 200 {
		p := &watchingParker{}
		ctx, cancel := context.WithCancel(e.ctx)
		stop := context.AfterFunc(ctx, p.cancelled)
		pctx := sock.WithParker(ctx, p)
		done := make(chan error, 1)
		if i%4 == 0 {
			cancel() // before the call
		}
		go func() {
			_, err := s.ReadString(pctx, 64)
			done <- err
		}()
		if i%4 == 1 {
			waitBlocked(t, "sock.(*Socket).ReadString(", testFunc(t))
		}
		cancel()
		select {
		case err := <-done:
			wantErr(t, err, "read", "ECANCELED")
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the cancelled read was never woken", i)
		}
		stop()
		p.mu.Lock()
		if p.watched != nil {
			t.Fatalf("round %d: the wait is still watched after it ended", i)
		}
		p.mu.Unlock()
		if i%4 == 1 && (p.watches != 1 || p.parks.Load() != 1 || p.unparks.Load() != 1) {
			t.Fatalf("round %d: %d watches, %d parks, %d unparks; want 1 each", i, p.watches, p.parks.Load(), p.unparks.Load())
		}

		c.Write(e.ctx, []byte("x"))
		if text, err := s.ReadString(e.ctx, 64); text != "x" || err != nil {
			t.Fatalf("round %d: read after the cancel = %q, %v", i, text, err)
		}
	}
}

// A cancel that lands after the wait has decided to park but before the
// watcher is told (here: while it parks) finds nothing to wake; the wait
// must see it for itself instead of sleeping for ever.
func TestCancelWatcherCancelWhileParking(t *testing.T) {
	e := newEnv(t)
	_, s := e.pair(sock.TCP)
	p := &watchingParker{}
	ctx, cancel := context.WithCancel(e.ctx)
	p.onPark = func() {
		cancel()
		p.cancelled() // as the AfterFunc does, with no wait watched yet
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.ReadString(sock.WithParker(ctx, p), 64)
		done <- err
	}()
	select {
	case err := <-done:
		wantErr(t, err, "read", "ECANCELED")
	case <-time.After(5 * time.Second):
		t.Fatal("a read cancelled while it parked was never woken")
	}
}
