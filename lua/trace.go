package lua

import (
	"context"
	"sync"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

// traceSink delivers trace events to a Lua function. Events come from any
// goroutine, some holding the interpreter lock, so they are queued and a
// daemon task calls the function.
type traceSink struct {
	mu      sync.Mutex
	ch      chan sock.Event
	closed  bool // ch is closed: the calls still in flight send nothing
	dropped int
	task    *Task
}

const traceQueue = 4096

// put queues an event for the trace function, or counts it as dropped
// when the queue is full.
func (ts *traceSink) put(e sock.Event) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return
	}
	select {
	case ts.ch <- e:
	default:
		ts.dropped++
	}
}

// stop ends the trace: the events already queued are still delivered, then
// the delivering task ends.
func (ts *traceSink) stop() {
	ts.mu.Lock()
	if !ts.closed {
		ts.closed = true
		close(ts.ch)
	}
	ts.mu.Unlock()
}

func openTrace(h *Host) {
	h.setGlobals([]fn{
		{"trace", h.luaTrace, "trace(true | false | \"hex\" | fn)  -- print every socket call strace-style to stderr (\"hex\": with payload dumps), stop (after fn has had every call made before), or call fn(event) for each"},
	})
}

// TraceTo prints every event to w, with a hex dump of payloads when hex.
func (h *Host) TraceTo(w *Console, hex bool) {
	h.table.SetTracer(func(e sock.Event) {
		line := e.Format() + "\n"
		if hex && len(e.Data) > 0 {
			line += sock.HexDump(e.Data)
		}
		if h.traceLine(e, line) {
			return // a capture shows it among its packets
		}
		w.WriteString(line)
	})
}

func (h *Host) luaTrace(L *glua.LState) int {
	if ts := h.tracer; ts != nil {
		h.tracer = nil
		h.table.SetTracer(nil)
		ts.stop()
		// The calls made before this one reach the function before
		// trace returns (unless the function itself stops the trace).
		if h.taskOf(L) != ts.task {
			h.waitWith(L, waitFor("trace", "delivery"), func(ctx context.Context) {
				select {
				case <-ts.task.Done():
				case <-ctx.Done():
				}
			})
		}
	}
	switch v := L.Get(1).(type) {
	case glua.LBool:
		if v {
			h.TraceTo(h.errw, false)
		} else {
			h.table.SetTracer(nil)
		}
	case glua.LString:
		if v != "hex" {
			L.ArgError(1, "true, false, \"hex\" or a function expected")
		}
		h.TraceTo(h.errw, true)
	case *glua.LFunction:
		ts := &traceSink{ch: make(chan sock.Event, traceQueue)}
		h.table.SetTracer(ts.put)
		// The daemon task takes events off the queue and calls fn under the
		// lock like any Lua code; it does not keep the process alive.
		deliver := L.NewFunction(func(L *glua.LState) int {
			for {
				var e sock.Event
				var ok bool
				h.waitWith(L, waitFor("trace", "events"), func(ctx context.Context) {
					select {
					case e, ok = <-ts.ch:
					case <-ctx.Done():
					}
				})
				if !ok {
					return 0
				}
				L.Push(v)
				L.Push(eventTable(L, e))
				L.Call(1, 0)
			}
		})
		t := h.startHelper(h.ctx, deliver, "trace", false)
		t.Daemon = true
		ts.task = t
		h.tracer = ts
	case *glua.LNilType:
		h.table.SetTracer(nil)
	default:
		L.ArgError(1, "true, false, \"hex\" or a function expected, got "+v.Type().String())
	}
	return 0
}

func eventTable(L *glua.LState, e sock.Event) *glua.LTable {
	t := L.NewTable()
	t.RawSetString("time", glua.LNumber(float64(e.Time.UnixNano())/1e9))
	t.RawSetString("duration", glua.LNumber(e.Dur.Seconds()))
	t.RawSetString("fd", glua.LNumber(e.FD))
	t.RawSetString("kind", glua.LString(e.Kind.String()))
	t.RawSetString("call", glua.LString(e.Call))
	args := L.NewTable()
	for _, a := range e.Args {
		args.Append(glua.LString(a))
	}
	t.RawSetString("args", args)
	t.RawSetString("result", glua.LNumber(e.Ret))
	if e.Err != nil {
		t.RawSetString("errno", glua.LString(sock.Code(e.Err)))
		t.RawSetString("error", glua.LString(sock.Message(e.Err)))
	}
	if e.Data != nil {
		t.RawSetString("data", glua.LString(e.Data))
	}
	if e.Note != "" {
		t.RawSetString("note", glua.LString(e.Note))
	}
	t.RawSetString("owner", glua.LString(e.Owner))
	if e.Host != "" {
		t.RawSetString("host", glua.LString(e.Host))
	}
	t.RawSetString("line", glua.LString(e.String()))
	return t
}
