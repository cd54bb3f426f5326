//go:build linux

package sock

import (
	"context"
	"errors"
	"net/netip"
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
	waitUntil(t, func() bool { return l.rdLock.isHeld() })

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { _, _, err := l.Accept(ctx); second <- err }()
	waitUntil(t, func() bool { return l.rdLock.queued() == 1 })
	cancel()
	select {
	case err := <-second:
		if !errors.Is(err, ErrCanceled) {
			t.Fatalf("queued accept: %v, want ECANCELED", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling a queued accept did not wake it")
	}
	if l.rdLock.queued() != 0 {
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

func (l *waitLock) isHeld() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

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
