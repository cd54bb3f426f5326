package lua

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func newTaskContext(h *Host, t *Task) *taskContext {
	c := &taskContext{}
	c.init(h, t)
	return c
}

type wakeCounter struct{ n int }

func (w *wakeCounter) Wake() { w.n++ }

func TestTaskContextCancel(t *testing.T) {
	c := newTaskContext(nil, nil)
	if c.Err() != nil || c.Cause() != nil {
		t.Fatal("a new task context is already cancelled")
	}
	w := &wakeCounter{}
	c.WatchCancel(w)
	derived, cancelDerived := context.WithTimeout(c, time.Hour)
	defer cancelDerived()
	ran := make(chan struct{})
	stop := context.AfterFunc(c, func() { close(ran) })
	stopped := context.AfterFunc(c, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped() {
		t.Fatal("stop of a pending AfterFunc = false")
	}

	c.cancel(errKilled)
	c.cancel(errInterrupted) // only the first counts
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed")
	}
	if !errors.Is(c.Err(), context.Canceled) || c.Cause() != errKilled || causeOf(c) != errKilled {
		t.Fatalf("Err %v, Cause %v; want Canceled, killed", c.Err(), c.Cause())
	}
	if w.n != 1 {
		t.Fatalf("the watched wait was woken %d times, want 1", w.n)
	}
	if c.UnwatchCancel(w) {
		t.Fatal("UnwatchCancel after the wake = true; the wait would not wait for it")
	}
	select {
	case <-derived.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a derived context did not end with its parent")
	}
	<-ran
	if stop() {
		t.Fatal("stop after the AfterFunc ran = true")
	}
	// After the end: AfterFunc runs at once, WithCancel starts cancelled.
	late := make(chan struct{})
	context.AfterFunc(c, func() { close(late) })
	<-late
	if d, cancel := context.WithCancel(c); d.Err() == nil {
		t.Fatal("a context derived after the end is not cancelled")
	} else {
		cancel()
	}
}

// A foreground task follows its caller's context, with its cause, and
// lets go of it when it ends first.
func TestTaskContextFollow(t *testing.T) {
	parent, cancel := context.WithCancelCause(context.Background())
	c := newTaskContext(nil, nil)
	c.follow(parent)
	cancel(errInterrupted)
	<-c.Done()
	if c.Cause() != errInterrupted {
		t.Fatalf("Cause = %v, want the parent's", c.Cause())
	}

	parent2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	before := runtime.NumGoroutine()
	for range 100 {
		c := newTaskContext(nil, nil)
		c.follow(parent2)
		c.cancel(nil)
		if c.Cause() != context.Canceled {
			t.Fatalf("Cause of cancel(nil) = %v", c.Cause())
		}
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("goroutines %d -> %d after 100 followed contexts ended", before, n)
	}
}
