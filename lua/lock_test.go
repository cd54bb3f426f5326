package lua

import (
	"runtime"
	"sync"
	"testing"
)

// The interpreter lock excludes, and hands itself over in arrival order:
// a goroutine that queues behind another gets the lock before it.
func TestInterpLockFIFO(t *testing.T) {
	var l interpLock
	l.lock()
	const n = 5
	order := make(chan int, n)
	var queued, finished sync.WaitGroup
	for i := range n {
		queued.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			// Queue one at a time, so arrival order is i's order.
			queued.Done()
			l.lock()
			order <- i
			l.unlock()
		}()
		queued.Wait()
		for !l.contended() || l.queueLen() != i+1 {
			runtime.Gosched()
		}
	}
	l.unlock()
	for want := range n {
		if got := <-order; got != want {
			t.Fatalf("waiter %d got the lock in turn %d", got, want)
		}
	}
	finished.Wait() // the last one has let go too
	if l.contended() || !l.state.CompareAndSwap(lockFree, lockHeld) {
		t.Fatal("the lock is not free after every waiter let go")
	}
}

// yield hands the lock to the first waiter and takes it back after; with
// no one waiting it does nothing.
func TestInterpLockYield(t *testing.T) {
	var l interpLock
	l.lock()
	l.yield() // alone: keeps it
	if l.state.Load() != lockHeld {
		t.Fatal("yield with no waiter let the lock go")
	}
	ran := make(chan struct{})
	go func() {
		l.lock()
		close(ran)
		l.unlock()
	}()
	for !l.contended() {
		runtime.Gosched()
	}
	l.yield()
	select {
	case <-ran:
	default:
		t.Fatal("yield came back before the waiter had its turn")
	}
	l.unlock()
}

// Many goroutines taking, yielding and releasing it never overlap (run
// with -race: the counter is not atomic).
func TestInterpLockExcludes(t *testing.T) {
	var l interpLock
	var wg sync.WaitGroup
	inside := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				l.lock()
				inside++
				if inside != 1 {
					t.Errorf("%d holders at once", inside)
				}
				if (g+i)%7 == 0 {
					inside--
					l.yield()
					inside++
				}
				inside--
				l.unlock()
			}
		}()
	}
	wg.Wait()
}
