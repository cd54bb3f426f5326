package lua

import (
	"sync"
	"sync/atomic"
)

// interpLock is the interpreter lock: whoever holds it may run Lua.
//
// Uncontended, taking and releasing it is one atomic operation each, as
// with sync.Mutex. Contended, it is fair: waiters queue in arrival order
// and the holder hands the lock straight to the first of them, where
// sync.Mutex lets the goroutine that just let go take it back at once
// (for up to a millisecond before it turns fair). That matters here
// because a task that never has to wait (a client connecting and closing
// in a loop on loopback) lets go of the lock only to take it back: with
// sync.Mutex a server task in the same process, woken by the poller to
// accept, rarely won it, the accept queue filled, and the kernel dropped
// SYNs that were sent again a second later.
//
// Each waiter blocks on a sync.Mutex of its own, locked before it waits and
// unlocked by the holder that hands the lock over: Go's scheduler makes
// that wake-up a direct switch to the waiter on the same processor, so the
// FIFO order costs no more than the barging one. (A channel would do the
// same, but its send and receive take more of the goroutine's stack, at
// its deepest point: a socket call letting go of the lock as it parks.
// That little more doubled an idle task's stack, from 4 to 8 KiB.)
type interpLock struct {
	state atomic.Int32 // lockFree, lockHeld, or lockQueued: held with waiters
	mu    sync.Mutex   // guards the queue, and moves into or out of lockQueued
	// The waiters in arrival order, each blocked on its turn: a ring
	// ring[head:head+n], grown by doubling.
	ring    []*turn
	head, n int
}

const (
	lockFree int32 = iota
	lockHeld
	lockQueued
)

// turn is what one waiter blocks on: a mutex locked while it waits.
type turn struct{ mu sync.Mutex }

// turns lends them: a goroutine holds one only while it waits, so ten
// thousand idle tasks hold none.
var turns = sync.Pool{New: func() any { return new(turn) }}

// lock takes the lock, queueing behind the current waiters when it is held.
func (l *interpLock) lock() {
	if l.state.CompareAndSwap(lockFree, lockHeld) {
		return
	}
	l.mu.Lock()
	for {
		if l.state.CompareAndSwap(lockFree, lockHeld) {
			l.mu.Unlock()
			return
		}
		// Held: mark it queued first, so that the holder's unlock takes
		// the slow path and finds this waiter. (Once queued, the state
		// changes only under mu.)
		if l.state.CompareAndSwap(lockHeld, lockQueued) || l.state.Load() == lockQueued {
			break
		}
	}
	t := l.enqueue()
	l.mu.Unlock()
	t.wait()
}

// unlock releases the lock, or hands it to the first waiter.
func (l *interpLock) unlock() {
	if l.state.CompareAndSwap(lockHeld, lockFree) {
		return
	}
	l.mu.Lock()
	next := l.dequeue()
	l.mu.Unlock()
	next.mu.Unlock() // its turn
}

// contended reports whether anyone waits for the lock.
func (l *interpLock) contended() bool { return l.state.Load() == lockQueued }

// yield hands the lock to the first waiter, if there is one, and waits to
// get it back in turn behind the others.
func (l *interpLock) yield() {
	if !l.contended() {
		return
	}
	l.mu.Lock()
	if l.n == 0 {
		l.mu.Unlock()
		return
	}
	next := l.dequeue()
	t := l.enqueue()
	l.mu.Unlock()
	next.mu.Unlock()
	t.wait()
}

// wait blocks until the holder hands the lock over, then gives t back.
func (t *turn) wait() {
	t.mu.Lock()
	t.mu.Unlock()
	turns.Put(t)
}

// enqueue adds a waiter at the tail and returns the turn it waits on.
// The caller holds mu.
func (l *interpLock) enqueue() *turn {
	t := turns.Get().(*turn)
	t.mu.Lock() // until the holder unlocks it
	if l.n == len(l.ring) {
		grown := make([]*turn, max(8, 2*len(l.ring)))
		for i := range l.n {
			grown[i] = l.ring[(l.head+i)%len(l.ring)]
		}
		l.ring, l.head = grown, 0
	}
	l.ring[(l.head+l.n)%len(l.ring)] = t
	l.n++
	l.state.Store(lockQueued)
	return t
}

// dequeue takes the first waiter's turn; the lock stays held, by that
// waiter from now on. The caller holds mu and the queue is not empty.
func (l *interpLock) dequeue() *turn {
	t := l.ring[l.head]
	l.ring[l.head] = nil
	l.head = (l.head + 1) % len(l.ring)
	l.n--
	if l.n == 0 {
		l.state.Store(lockHeld)
	}
	return t
}

// queueLen is the number of waiters (for tests).
func (l *interpLock) queueLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
