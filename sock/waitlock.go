package sock

import (
	"context"
	"sync"
	"sync/atomic"
)

// waitLock admits one goroutine at a time to an fd's read (or write) side.
//
// Go's poller already serializes readers of one fd, but a goroutine queued
// behind another reader waits on an internal mutex that no deadline can
// wake: a second accept on a listener would ignore Ctrl-C and kill. This
// lock queues such callers where their context can reach them. The zero
// value is unlocked and allocates nothing until there is a queue; taking
// and releasing it uncontended is one atomic operation each.
type waitLock struct {
	state   atomic.Int32 // lockFree, lockHeld, or lockQueued: held with waiters
	mu      sync.Mutex   // guards waiters, and moves into or out of lockQueued
	waiters []chan struct{}
}

const (
	lockFree int32 = iota
	lockHeld
	lockQueued
)

func (l *waitLock) lock(ctx context.Context) error {
	if l.state.CompareAndSwap(lockFree, lockHeld) {
		return nil
	}
	l.mu.Lock()
	for {
		if l.state.CompareAndSwap(lockFree, lockHeld) {
			l.mu.Unlock()
			return nil
		}
		// Held: mark it queued, so its unlock takes the slow path.
		if l.state.CompareAndSwap(lockHeld, lockQueued) || l.state.Load() == lockQueued {
			break
		}
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
			if len(l.waiters) == 0 {
				l.state.Store(lockHeld)
			}
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
	if l.state.CompareAndSwap(lockHeld, lockFree) {
		return
	}
	l.mu.Lock()
	if len(l.waiters) > 0 {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		if len(l.waiters) == 0 {
			l.state.Store(lockHeld)
		}
		close(ch) // still held: ownership moves to that waiter
	} else {
		l.state.Store(lockFree)
	}
	l.mu.Unlock()
}

// tryLock takes the lock if it is free.
func (l *waitLock) tryLock() bool { return l.state.CompareAndSwap(lockFree, lockHeld) }

// Parker is told when an operation is about to wait in the poller and when
// the wait is over. The Lua host lets go of its interpreter lock in Park and
// takes it back in Unpark, so a call that completes at once (a write with
// room in the buffer, a read with data waiting) never gives the lock up.
// Both run on the goroutine making the call.
type Parker interface {
	Park()
	Unpark()
}

// Wakeable is a wait in the poller that another goroutine can end.
type Wakeable interface{ Wake() }

// CancelWatcher is a Parker that also ends the waits it parks when their
// context ends. Without one, every wait registers a context.AfterFunc and
// removes it after, which costs an allocation and two map updates in the
// context's parent; the Lua host instead watches each task's context once
// and wakes whichever wait the task is in.
type CancelWatcher interface {
	Parker
	// WatchCancel is told the wait to wake from now on. The caller checks
	// its context after this call, so a cancel that came just before is
	// not missed.
	WatchCancel(w Wakeable)
	// UnwatchCancel ends the watch. False means Wake was called or is
	// running: the wait must let it finish before it ends.
	UnwatchCancel(w Wakeable) bool
}

type parkerKey struct{}

// WithParker attaches p to ctx for the operations made under it.
func WithParker(ctx context.Context, p Parker) context.Context {
	return context.WithValue(ctx, parkerKey{}, p)
}

// A ParkerContext carries its Parker itself, instead of through
// WithParker's context value: the operations that wait look it up each
// time.
type ParkerContext interface {
	context.Context
	SockParker() Parker
}

func parkerOf(ctx context.Context) Parker {
	if ctx == nil {
		return nil
	}
	if c, ok := ctx.(ParkerContext); ok {
		return c.SockParker()
	}
	p, _ := ctx.Value(parkerKey{}).(Parker)
	return p
}
