package lua

import (
	"bufio"
	"context"
	"io"
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// installBase records gopher-lua's own functions (they need no help line of
// ours) and replaces the ones that would reach os.Stdout or os.Exit.
func (h *Host) installBase() {
	h.adoptCoroutines()
	fixStringMatch(h.L)

	h.builtin = map[*glua.LFunction]struct{}{}
	var walk func(t *glua.LTable, depth int)
	walk = func(t *glua.LTable, depth int) {
		t.ForEach(func(_, v glua.LValue) {
			switch v := v.(type) {
			case *glua.LFunction:
				h.builtin[v] = struct{}{}
			case *glua.LTable:
				if depth < 1 {
					walk(v, depth+1)
				}
			}
		})
	}
	walk(h.L.G.Global, 0)
}

// fixStringMatch makes string.match return nil when nothing matches, as
// Lua 5.1's does: gopher-lua's returns no value at all, so the common
// tonumber(s:match("%d+")) raised "bad argument #1 to tonumber (value
// expected)" on a string without digits instead of giving nil.
func fixStringMatch(L *glua.LState) {
	str, ok := L.GetGlobal("string").(*glua.LTable)
	if !ok {
		return
	}
	match, ok := str.RawGetString("match").(*glua.LFunction)
	if !ok || !match.IsG {
		return
	}
	inner := match.GFunction
	str.RawSetString("match", L.NewFunction(func(L *glua.LState) int {
		if n := inner(L); n > 0 {
			return n
		}
		L.Push(glua.LNil)
		return 1
	}))
}

// adoptCoroutines makes the threads of coroutine.create and wrap run under
// a VM context on the creating task's context, as the task's thread does:
// a busy loop in a coroutine then shares the interpreter lock and ends
// when that task is killed. (Its blocking calls still take the plain path,
// under whichever task resumed it: a coroutine can be handed to another
// task, and the parking state is the creating task's own.)
// (gopher-lua gives a new thread a context derived from the creator's; the
// VM context hands out no Done channel to derive from, so nothing is
// registered, and the thread's context is replaced here.)
func (h *Host) adoptCoroutines() {
	co, ok := h.L.GetGlobal("coroutine").(*glua.LTable)
	if !ok {
		return
	}
	adopt := func(L *glua.LState, th *glua.LState) {
		if vc, ok := L.Context().(*vmContext); ok && th != nil {
			th.SetContext(&vmContext{taskContext: vc.taskContext, self: th, budget: turnBudget, coroutine: true})
		}
	}
	wrapG := func(name string, thread func(L *glua.LState) *glua.LState) {
		f, ok := co.RawGetString(name).(*glua.LFunction)
		if !ok || !f.IsG {
			return
		}
		inner := f.GFunction
		co.RawSetString(name, h.L.NewFunction(func(L *glua.LState) int {
			n := inner(L)
			adopt(L, thread(L))
			return n
		}))
	}
	// coroutine.yield fails, as Lua 5.1's does, where a Go function
	// (pcall, xpcall, table.sort's comparator, string.gsub's callback ...)
	// lies between it and its coroutine: gopher-lua cannot yield across
	// one, and trying breaks its VM. Libraries probe for this (coxpcall,
	// under Copas) and then use pcalls built on coroutines.
	if y, ok := co.RawGetString("yield").(*glua.LFunction); ok && y.IsG {
		inner := y.GFunction
		co.RawSetString("yield", h.L.NewFunction(func(L *glua.LState) int {
			if goFrameBelow(L) {
				L.RaiseError("attempt to yield across metamethod/C-call boundary")
			}
			return inner(L)
		}))
	}
	wrapG("create", func(L *glua.LState) *glua.LState {
		th, _ := L.Get(-1).(*glua.LState)
		return th
	})
	wrapG("wrap", func(L *glua.LState) *glua.LState {
		// wrap returns a closure whose one upvalue is the thread.
		if f, ok := L.Get(-1).(*glua.LFunction); ok && len(f.Upvalues) == 1 {
			th, _ := f.Upvalues[0].Value().(*glua.LState)
			return th
		}
		return nil
	})
}

// goFrameBelow reports whether a Go function called the Lua code that is
// running on L (level 0 is the running function itself).
func goFrameBelow(L *glua.LState) bool {
	for level := 1; ; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			return false
		}
		if f, err := L.GetInfo("f", dbg, glua.LNil); err == nil {
			if fn, ok := f.(*glua.LFunction); ok && fn.IsG {
				return true
			}
		}
	}
}

func openBaseDocs(h *Host) {
	h.setGlobals([]fn{
		{"print", h.luaPrint, "print(...)  -- write the values, tab-separated, and a newline"},
	})
	h.openLoaders()
	iolib := h.L.GetGlobal("io").(*glua.LTable)
	h.addFuncs(iolib, []fn{
		{"write", h.luaIOWrite, "io.write(...)  -- write strings and numbers with no separator"},
		{"read", h.luaIORead, "io.read([\"l\" | \"L\" | \"a\" | n]) -> string | nil  -- read standard input; other tasks run meanwhile"},
	})
	iolib.RawSetString("stdout", h.stream("stdout", h.out))
	iolib.RawSetString("stderr", h.stream("stderr", h.errw))
	oslib := h.L.GetGlobal("os").(*glua.LTable)
	h.addFuncs(oslib, []fn{
		{"exit", h.luaExit, "os.exit([code])  -- end the program: every task stops and every fd closes"},
	})
}

func (h *Host) luaPrint(L *glua.LState) int {
	var b strings.Builder
	for i := 1; i <= L.GetTop(); i++ {
		if i > 1 {
			b.WriteByte('\t')
		}
		b.WriteString(h.tostring(L, L.Get(i)))
	}
	b.WriteByte('\n')
	h.out.WriteString(b.String())
	return 0
}

// tostring is Lua's tostring, __tostring included.
func (h *Host) tostring(L *glua.LState, v glua.LValue) string {
	if mt, ok := L.GetMetaField(v, "__tostring").(*glua.LFunction); ok {
		L.Push(mt)
		L.Push(v)
		L.Call(1, 1)
		s := L.Get(-1)
		L.Pop(1)
		return s.String()
	}
	return v.String()
}

func (h *Host) luaIOWrite(L *glua.LState) int {
	var b strings.Builder
	for i := 1; i <= L.GetTop(); i++ {
		switch v := L.Get(i).(type) {
		case glua.LString, glua.LNumber:
			b.WriteString(v.String())
		default:
			L.ArgError(i, "string expected, got "+v.Type().String())
		}
	}
	h.out.WriteString(b.String())
	return 0
}

// luaIORead reads standard input with the interpreter lock released.
func (h *Host) luaIORead(L *glua.LState) int {
	format := "l"
	n := -1
	switch v := L.Get(1).(type) {
	case glua.LNumber:
		n = int(v)
	case glua.LString:
		format = strings.TrimPrefix(string(v), "*")
	case *glua.LNilType:
	default:
		L.ArgError(1, "format expected, got "+v.Type().String())
	}
	if h.stdinReader == nil {
		h.stdinReader = bufio.NewReader(h.stdin)
	}
	var out string
	var ok bool
	h.waitWith(L, waitFor("io.read", "stdin"), func(context.Context) {
		r := h.stdinReader
		switch {
		case n >= 0:
			buf := make([]byte, n)
			m, _ := io.ReadFull(r, buf)
			out, ok = string(buf[:m]), m > 0 || n == 0
		case format == "a":
			data, _ := io.ReadAll(r)
			out, ok = string(data), true
		default:
			line, err := r.ReadString('\n')
			ok = err == nil || line != ""
			if format != "L" {
				line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			}
			out = line
		}
	})
	if !ok {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(glua.LString(out))
	return 1
}

// stream is a small file-like table for io.stdout and io.stderr whose
// methods write through a console.
func (h *Host) stream(name string, c *Console) *glua.LTable {
	t := h.L.NewTable()
	mt := h.L.NewTable()
	methods := h.L.NewTable()
	h.addFuncs(methods, []fn{
		{"write", func(L *glua.LState) int {
			var b strings.Builder
			for i := 2; i <= L.GetTop(); i++ {
				b.WriteString(L.CheckString(i))
			}
			c.WriteString(b.String())
			L.Push(L.Get(1))
			return 1
		}, "io." + name + ":write(...)  -- write strings to " + name},
		{"flush", func(L *glua.LState) int { c.Flush(); L.Push(L.Get(1)); return 1 }, "io." + name + ":flush()"},
		{"setvbuf", func(L *glua.LState) int { L.Push(glua.LTrue); return 1 }, "io." + name + ":setvbuf(mode)  -- accepted; output is written at once"},
		{"close", func(L *glua.LState) int { L.Push(glua.LTrue); return 1 }, "io." + name + ":close()  -- does nothing: the host owns the stream"},
	})
	mt.RawSetString("__index", methods)
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int { L.Push(glua.LString("file (" + name + ")")); return 1 }))
	h.L.SetMetatable(t, mt)
	return t
}

// luaExit ends the program from any task: the exit code is kept, every task
// is cancelled with errExit, and this task raises so it stops at once.
func (h *Host) luaExit(L *glua.LState) int {
	code := 0
	switch v := L.Get(1).(type) {
	case glua.LNumber:
		code = int(v)
	case glua.LBool:
		if !bool(v) {
			code = 1
		}
	case *glua.LNilType:
	default:
		L.ArgError(1, "number or boolean expected, got "+v.Type().String())
	}
	h.exitCode.Store(int32(code))
	h.exiting.Store(true)
	h.tasks.killAll(errExit)
	L.RaiseError("exit")
	return 0
}
