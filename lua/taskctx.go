package lua

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

// taskContext is a task's context, and the sock.Parker of its socket
// calls. It is cancelled by kill, by the end of the task, by the host's
// Close, or by the context of the caller that started a foreground task (a
// REPL chunk's Ctrl-C).
//
// The standard library would need a cancel context, two context values
// (the owner and the parker), the parker itself and an AfterFunc watching
// for cancellation, plus an entry in the parent's map of children: about a
// kilobyte per task, at 10,000 tasks the largest cost after the Lua thread.
// This is one object, and a socket call finds its parker and owner
// without walking a chain of values.
type taskContext struct {
	h     *Host
	t     *Task
	done  chan struct{}
	ended atomic.Bool // done is closed
	owner string      // the OWNER of sockets opened under it; set before the task runs
	// Where sockets opened under it are made: a lab host's namespace, nil
	// for sockplay's own. Atomic: host:call switches it while contexts
	// derived from this one may be read elsewhere.
	netns atomic.Pointer[sock.Netns]

	// The socket call being made: written by the task's own thread,
	// holding the interpreter lock, and read by it in Park and Unpark.
	L    *glua.LState
	what waitDesc

	// The socket wait a cancel must end, published through watch: the
	// task sets it on every wait that parks, so it avoids the mutex.
	watch   atomic.Pointer[watchBox]
	watched watchBox // the box watch points to; written only by the task

	mu         sync.Mutex
	err, cause error
	afters     []*afterFunc // contexts derived from this one
	stopParent func() bool
}

type watchBox struct{ w sock.Wakeable }

type afterFunc struct{ f func() }

func (c *taskContext) init(h *Host, t *Task) {
	c.h, c.t, c.done = h, t, make(chan struct{})
}

func (c *taskContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *taskContext) Done() <-chan struct{}       { return c.done }

// Value answers only sock.NetnsKey, for the contexts derived from c (a
// timeout's): their sockets open in the task's host too.
func (c *taskContext) Value(key any) any {
	if _, ok := key.(sock.NetnsKey); ok {
		if ns := c.netns.Load(); ns != nil {
			return ns
		}
	}
	return nil
}

func (c *taskContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Cause is why the task was cancelled (errKilled, errInterrupted, ...), or
// nil while it was not.
func (c *taskContext) Cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// SockOwner labels the sockets opened or accepted under c.
func (c *taskContext) SockOwner() string { return c.owner }

// SockNetns is where the sockets opened under c are made (sock.NetnsContext).
func (c *taskContext) SockNetns() *sock.Netns { return c.netns.Load() }

// AfterFunc lets contexts derived from c (a DNS query's timeout, a
// process's context) hear of its cancellation without a goroutine each:
// the context package looks for this method.
func (c *taskContext) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.afters = append(c.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.afters {
			if x == a {
				c.afters = append(c.afters[:i], c.afters[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancel ends c with cause (nil: context.Canceled) and wakes what the task
// waits on. Only the first call counts.
func (c *taskContext) cancel(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if cause == nil {
		cause = context.Canceled
	}
	c.err, c.cause = context.Canceled, cause
	close(c.done)
	c.ended.Store(true)
	afters, stop := c.afters, c.stopParent
	c.afters, c.stopParent = nil, nil
	c.mu.Unlock()
	// After done is closed: a wait that begins to be watched from now on
	// sees it and does not park.
	if b := c.watch.Swap(nil); b != nil {
		b.w.Wake()
	}
	for _, a := range afters {
		a.f()
	}
	if stop != nil {
		stop()
	}
}

// follow cancels c when parent ends, for a task started under a context
// its caller may cancel.
func (c *taskContext) follow(parent context.Context) {
	if parent.Done() == nil {
		return
	}
	stop := context.AfterFunc(parent, func() { c.cancel(causeOf(parent)) })
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		stop()
		return
	}
	c.stopParent = stop
	c.mu.Unlock()
}

// causeOf is context.Cause, knowing task contexts.
func causeOf(ctx context.Context) error {
	if c, ok := ctx.(*taskContext); ok {
		return c.Cause()
	}
	return context.Cause(ctx)
}

// Park and Unpark make c the task's sock.Parker: a socket call that can
// complete at once keeps the interpreter lock; one that must wait in the
// poller lets go of it for the wait, like any blocking call.
func (c *taskContext) Park() {
	c.t.setWaiting(c.what)
	c.h.unlock()
}

func (c *taskContext) Unpark() {
	c.h.lock(c.L)
	c.t.vm.budget = turnBudget // a new turn
	c.t.setWaiting(waitDesc{})
}

// WatchCancel and UnwatchCancel make c a sock.CancelWatcher: cancel wakes
// the socket wait the task is in, and no wait registers a context.AfterFunc
// of its own.
// The box is reused: a wait whose watch a cancel took waits (in sock)
// until Wake has returned before it ends, so the task never rewrites the
// box while a cancel still reads it.
func (c *taskContext) WatchCancel(w sock.Wakeable) {
	c.watched.w = w
	c.watch.Store(&c.watched)
}

func (c *taskContext) UnwatchCancel(w sock.Wakeable) bool {
	if !c.watch.CompareAndSwap(&c.watched, nil) {
		return false
	}
	c.watched.w = nil // let the socket go
	return true
}

// parkingContext is the task context as socket calls on the task's own
// thread see it: with the task as their Parker. Other blocking calls (and
// those of coroutines), which let go of the lock themselves, get the bare
// taskContext. One pointer wide, so passing it as a context allocates
// nothing.
type parkingContext struct{ *taskContext }

func (p parkingContext) SockParker() sock.Parker { return p.taskContext }
