//go:build linux

package sock

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A second caller queued behind a blocked one on the same fd must still be
// reachable by its context: Ctrl-C on a second accept, kill of a second
// reader.
func TestCancelQueuedBehindAnotherWaiter(t *testing.T) {
	tab := NewTable()
	t.Cleanup(tab.CloseAll)
	l, err := tab.Open(context.Background(), TCP)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(8); err != nil {
		t.Fatal(err)
	}

	first := make(chan error, 1)
	go func() { _, _, err := l.Accept(context.Background()); first <- err }()
	waitUntil(t, func() bool { return l.rd.lock.isHeld() })

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { _, _, err := l.Accept(ctx); second <- err }()
	waitUntil(t, func() bool { return l.rd.lock.queued() == 1 })
	cancel()
	select {
	case err := <-second:
		if !errors.Is(err, ErrCanceled) {
			t.Fatalf("queued accept: %v, want ECANCELED", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling a queued accept did not wake it")
	}
	if l.rd.lock.queued() != 0 {
		t.Errorf("cancelled waiter still queued")
	}
	l.Close()
	select {
	case err := <-first:
		if Code(err) != "EBADF" {
			t.Errorf("first accept after close: %v, want EBADF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not wake the first accept")
	}
}

// The lock hands over in order and a cancel racing with a hand-over never
// loses the lock.
func TestWaitLockHandOverRace(t *testing.T) {
	var l waitLock
	for i := 0; i < 500; i++ {
		if err := l.lock(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() { got <- l.lock(ctx) }()
		waitUntil(t, func() bool { return l.queued() == 1 })
		go cancel()
		l.unlock()
		if err := <-got; err == nil {
			l.unlock()
		}
		if l.isHeld() || l.queued() != 0 {
			t.Fatalf("round %d: lock left held=%v queued=%d", i, l.isHeld(), l.queued())
		}
	}
}

func (l *waitLock) isHeld() bool { return l.state.Load() != lockFree }

func (l *waitLock) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiters)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Many goroutines taking the lock, some with contexts that end while they
// queue: never two holders at once, and the lock ends free and unqueued.
func TestWaitLockExclusion(t *testing.T) {
	var l waitLock
	var inside, taken, cancelled atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				ctx, cancel := context.WithCancel(context.Background())
				if (g+i)%3 == 0 {
					go cancel()
				}
				if err := l.lock(ctx); err != nil {
					cancelled.Add(1)
					cancel()
					continue
				}
				if inside.Add(1) != 1 {
					t.Error("two goroutines hold the lock")
				}
				taken.Add(1)
				if i%7 == 0 {
					runtime.Gosched()
				}
				inside.Add(-1)
				l.unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if l.isHeld() || l.queued() != 0 {
		t.Fatalf("lock left held=%v queued=%d", l.isHeld(), l.queued())
	}
	if taken.Load()+cancelled.Load() != 8*300 || taken.Load() == 0 {
		t.Fatalf("taken %d + cancelled %d != %d", taken.Load(), cancelled.Load(), 8*300)
	}
}
