package sock

import (
	"context"
	"sync"
)

// waitLock admits one goroutine at a time to an fd's read (or write) side.
//
// Go's poller already serializes readers of one fd, but a goroutine queued
// behind another reader waits on an internal mutex that no deadline can
// wake: a second accept on a listener would ignore Ctrl-C and kill. This
// lock queues such callers where their context can reach them. The zero
// value is unlocked and allocates nothing until there is a queue.
type waitLock struct {
	mu      sync.Mutex
	held    bool
	waiters []chan struct{} // FIFO; closing one hands the lock over
}

func (l *waitLock) lock(ctx context.Context) error {
	l.mu.Lock()
	if !l.held {
		l.held = true
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	select {
	case <-ch:
		return nil
	case <-done:
	}
	l.mu.Lock()
	for i, w := range l.waiters {
		if w == ch {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			l.mu.Unlock()
			return ErrCanceled
		}
	}
	l.mu.Unlock()
	// The lock was handed over as the context ended: pass it on.
	l.unlock()
	return ErrCanceled
}

func (l *waitLock) unlock() {
	l.mu.Lock()
	if len(l.waiters) > 0 {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		close(ch) // held stays true: ownership moves to that waiter
	} else {
		l.held = false
	}
	l.mu.Unlock()
}

// tryLock takes the lock if it is free.
func (l *waitLock) tryLock() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		return false
	}
	l.held = true
	return true
}

// Parker is told when an operation is about to wait in the poller and when
// the wait is over. The Lua host lets go of its interpreter lock in Park and
// takes it back in Unpark, so a call that completes at once (a write with
// room in the buffer, a read with data waiting) never gives the lock up.
// Both run on the goroutine making the call.
type Parker interface {
	Park()
	Unpark()
}

type parkerKey struct{}

// WithParker attaches p to ctx for the operations made under it.
func WithParker(ctx context.Context, p Parker) context.Context {
	return context.WithValue(ctx, parkerKey{}, p)
}

func parkerOf(ctx context.Context) Parker {
	if ctx == nil {
		return nil
	}
	p, _ := ctx.Value(parkerKey{}).(Parker)
	return p
}
