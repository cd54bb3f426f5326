// Package lua is sockplay's Lua host: one gopher-lua state, the interpreter
// lock, background tasks, and the modules that hand scripts real sockets
// (sock), DNS, the descriptor table, the trace and help.
//
// Concurrency model. Every task runs on its own goroutine with its own
// gopher-lua thread; all threads share the globals. One mutex, the
// interpreter lock, is held whenever Lua code runs. A Go function that may
// block (a socket wait, sleep, DNS) lets go of the lock for the wait and
// takes it back after, so while one task waits for a peer every other task
// runs. Because no task ever yields through the VM, pcall, coroutines,
// iterators and tail calls around a blocking call behave as in plain Lua.
// A task that computes without blocking is made to share the lock now and
// then (see vmContext), so a busy loop cannot freeze the others.
package lua

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
	"sockplay/sock/dns"
)

// Version is sockplay's version, printed by --version and the banner.
const Version = "0.1.0"

// Options are the host's connections to the outside world. Every field has
// a default, so tests replace only what they look at.
type Options struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Table  *sock.Table // default: a new table
	// Resolve turns a host name into addresses; default (nil): the
	// system's resolver rules (/etc/hosts, then /etc/resolv.conf's
	// servers, asked on the calling task's own sockets).
	Resolve Resolver
	// DNS says where those rules are read from: by the default resolver,
	// dns.resolve, dns.reverse and dns.query's default server. The zero
	// value is the system's files.
	DNS ResolverConfig
}

// Host is one Lua world with its tasks and sockets.
type Host struct {
	L     *glua.LState // the main state; tasks run on threads of it
	table *sock.Table
	out   *Console
	errw  *Console
	stdin io.Reader
	res   Resolver // nil: resolver

	resolver *dns.Resolver

	gil interpLock // the interpreter lock

	ctx    context.Context // cancelled when the host closes
	cancel context.CancelFunc

	tasks       taskRegistry
	docs        map[*glua.LFunction]string   // help text of every registered function
	builtin     map[*glua.LFunction]struct{} // gopher-lua's own functions
	stdinReader *bufio.Reader
	modDocs     map[string]string
	libs        map[string]*library     // modules require finds that are no globals (socket, mime.core)
	modMethods  map[string]*glua.LTable // a module's objects' methods, for help
	ls          *luasocketState
	bufs        map[int]*readBuffer // bytes read past a line or delimiter, per fd
	peers       peerCache           // recent datagram peers as Lua values
	tracer      *traceSink
	exitCode    atomic.Int32
	exiting     atomic.Bool
	failed      atomic.Bool // an uncaught error ended some task
	closed      atomic.Bool
	namespaces  []*sock.Netns // made by sock.netns(), released at Close
	captures    captures      // packet captures, stopped at Close
	labs        labs          // made by lab.new(), taken down at Close
}

// New builds a host with the standard libraries and sockplay's modules.
func New(opts Options) *Host {
	if opts.Stdin == nil {
		opts.Stdin = os.Stdin
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Table == nil {
		opts.Table = sock.NewTable()
	}
	h := &Host{
		table:   opts.Table,
		stdin:   opts.Stdin,
		res:     opts.Resolve,
		docs:    make(map[*glua.LFunction]string, 256), // every module's functions
		modDocs: map[string]string{},
		libs:    map[string]*library{},
		bufs:    map[int]*readBuffer{},

		resolver: &dns.Resolver{Table: opts.Table, Config: opts.DNS},
	}
	h.out = NewConsole(opts.Stdout)
	h.errw = NewConsole(opts.Stderr)
	if c, ok := opts.Stderr.(*Console); ok {
		h.errw = c
	}
	if c, ok := opts.Stdout.(*Console); ok {
		h.out = c
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.tasks.init()
	h.L = glua.NewState(glua.Options{
		// Small registries that grow on demand keep a thread (one per task)
		// near 5 KiB instead of 100 KiB; the larger maximum lets unpack and
		// table.concat of big tables work. 128 is the smallest start
		// NewState accepts: below it silently uses its 5,120 default.
		RegistrySize:        128,
		RegistryGrowStep:    64,
		RegistryMaxSize:     1 << 20,
		CallStackSize:       256,
		MinimizeStackMemory: true,
		SkipOpenLibs:        true,
	})
	openLibs(h.L)
	// Threads are made from the state's Options without that check, so a
	// task's registry starts at 32 slots (512 bytes; most tasks never use
	// more) and grows by 64 as it needs to: at 10,000 connections, one
	// task each, this alone saves 15 MiB.
	h.L.Options.RegistrySize = taskRegistrySize
	h.gil.lock() // the host is built under the lock like any Lua code
	defer h.gil.unlock()
	h.installBase()
	for _, m := range allModules() {
		m.open(h)
	}
	return h
}

// openLibs opens gopher-lua's standard libraries, as OpenLibs does, except
// channel: it waits on Go channels holding the interpreter lock, which
// would freeze every task, and it is not Lua.
func openLibs(L *glua.LState) {
	for _, lib := range []struct {
		name string
		open glua.LGFunction
	}{
		{glua.LoadLibName, glua.OpenPackage}, // package and base first
		{glua.BaseLibName, glua.OpenBase},
		{glua.TabLibName, glua.OpenTable},
		{glua.IoLibName, glua.OpenIo},
		{glua.OsLibName, glua.OpenOs},
		{glua.StringLibName, glua.OpenString},
		{glua.MathLibName, glua.OpenMath},
		{glua.DebugLibName, glua.OpenDebug},
		{glua.CoroutineLibName, glua.OpenCoroutine},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(glua.LString(lib.name))
		L.Call(1, 0)
	}
}

// taskRegistrySize is the registry a task's thread starts with.
const taskRegistrySize = 32

// Table is the host's socket table.
func (h *Host) Table() *sock.Table { return h.table }

// Stdout and Stderr are the consoles every Lua output goes through.
func (h *Host) Stdout() *Console { return h.out }
func (h *Host) Stderr() *Console { return h.errw }

// lock takes the interpreter lock for the Lua state L after a wait.
func (h *Host) lock(L *glua.LState) {
	h.gil.lock()
	if L != nil {
		L.G.CurrentThread = L // coroutine.running() is per task
	}
}

func (h *Host) unlock() { h.gil.unlock() }

// blocking runs fn with the interpreter lock released, under the calling
// task's context, and marks the task as waiting on what.
func (h *Host) blocking(L *glua.LState, what string, fn func(ctx context.Context)) {
	h.waitWith(L, waitDesc{op: what, fd: -1}, fn)
}

// waitWith is blocking with a description that is only formatted when
// someone looks: the socket calls use it on every read and write.
func (h *Host) waitWith(L *glua.LState, what waitDesc, fn func(ctx context.Context)) {
	t := h.taskOf(L)
	ctx := h.ctx
	if t != nil {
		ctx = &t.ctx
		t.setWaiting(what)
	}
	h.unlock()
	fn(ctx)
	h.lock(L)
	if t != nil {
		t.setWaiting(waitDesc{})
	}
}

// waitOn describes a wait on an fd.
func waitOn(op string, fd int) waitDesc { return waitDesc{op: op, fd: fd} }

// waitFor describes a wait on something else.
func waitFor(op, detail string) waitDesc { return waitDesc{op: op, fd: -1, detail: detail} }

// vmContext is the context a task's VM checks before every instruction.
// Besides cancellation it keeps the task's turn: a budget of work, spent
// by VM instructions and by socket calls that complete without waiting;
// when it runs out and other tasks wait for the lock, the lock goes to
// the first of them (see interpLock) and this task waits its turn behind
// the others. Cooperative scheduling for code that blocks, fair sharing
// for code that never does.
//
// The bound: a task whose wait is over gets the lock after each task
// ahead of it in the queue has had at most one turn, a turn being
// turnBudget VM instructions, where a socket call that did not wait
// counts as sockCallCost of them (it costs about as much time). On this
// kind of machine a turn is about 0.1 ms of Lua. A Go function that runs
// long without returning to the VM (a huge string.rep) cannot be cut
// short: the turn ends after it.
//
// The VM selects on Done() before every instruction. Selecting on an open
// channel costs the runtime about 40 machine instructions, on a nil one
// about 10: so Done() is nil until the task is cancelled, when it becomes
// the closed channel. A task's coroutines get VM contexts of their own on
// the same task context (see adoptCoroutines).
type vmContext struct {
	*taskContext
	self      *glua.LState // the thread this context is set on
	budget    int32        // what is left of the turn
	coroutine bool         // a coroutine's thread, not the task's own
}

const (
	turnBudget   = 4096
	sockCallCost = 64
)

// sockCall runs a socket call holding the interpreter lock; the call lets
// go of it only if it has to wait. It raises when the wait ended because
// the task itself was cancelled. A coroutine's thread takes the plain path
// (see adoptCoroutines).
//
// No closure wraps call on the task's path: the frames below a parked
// call are what an idle task's stack holds, and they must fit in 4 KiB
// (BenchmarkIdleTaskMemory).
func (h *Host) sockCall(L *glua.LState, what waitDesc, call func(ctx context.Context) error) error {
	var err error
	if vc, ok := L.Context().(*vmContext); ok && !vc.coroutine {
		vc.L, vc.what = L, what
		err = call(parkingContext{vc.taskContext})
		vc.budget -= sockCallCost // (a call that waited began a new turn)
	} else {
		h.waitWith(L, what, func(ctx context.Context) { err = call(ctx) })
	}
	h.checkCancelled(L, err)
	return err
}

func (c *vmContext) Done() <-chan struct{} {
	c.budget--
	if c.budget < 0 {
		c.endTurn()
	}
	if c.ended.Load() {
		return c.done
	}
	return nil
}

// endTurn starts the task's next turn, handing the lock to the first
// waiter if there is one. Called between VM instructions, where the
// state is consistent.
func (c *vmContext) endTurn() {
	c.budget = turnBudget
	if c.h.gil.contended() {
		c.h.gil.yield()
		c.self.G.CurrentThread = c.self
	}
}

// Err words a cancellation the way a user reads it.
func (c *vmContext) Err() error {
	if err := c.taskContext.Err(); err != nil {
		if cause := c.Cause(); cause != nil && cause != err {
			return cause
		}
		return errInterrupted
	}
	return nil
}

var (
	errInterrupted = errors.New("interrupted")
	errKilled      = errors.New("killed")
	errExit        = errors.New("exit")
)

// Close ends every task and closes every socket the host opened. It is safe
// to call more than once.
func (h *Host) Close() {
	if h.closed.Swap(true) {
		return
	}
	h.cancel()
	h.tasks.killAll(errInterrupted)
	h.tasks.waitAll(nil)
	if h.tracer != nil {
		h.tracer.stop()
	}
	h.table.SetTracer(nil)
	// Every socket but the captures first: the packets their closing
	// sends (FINs, ACKs) reach the captures before those stop.
	for _, s := range h.table.Sockets() {
		if s.Kind != sock.Packet {
			s.Close()
		}
	}
	h.captures.stopAll()
	h.table.CloseAll()
	h.closeLabs()
	for _, ns := range h.namespaces {
		ns.Close()
	}
	h.out.Flush()
	h.errw.Flush()
}

// ExitCode is the status a run ended with: os.exit's argument, or 1 when an
// uncaught error ended a task.
func (h *Host) ExitCode() int {
	if h.exiting.Load() {
		return int(h.exitCode.Load())
	}
	if h.failed.Load() {
		return 1
	}
	return 0
}

// Exiting reports whether os.exit was called.
func (h *Host) Exiting() bool { return h.exiting.Load() }

// Interrupt cancels every task, as Ctrl-C does to a script.
func (h *Host) Interrupt() { h.tasks.killAll(errInterrupted) }

// SetScriptPath makes require find modules beside the script, and in its
// lib/ folder, before the defaults.
func (h *Host) SetScriptPath(script string) {
	dir := filepath.Dir(script)
	h.withLock(func() {
		pkg := h.L.GetGlobal("package").(*glua.LTable)
		old := glua.LVAsString(pkg.RawGetString("path"))
		p := filepath.Join(dir, "?.lua") + ";" + filepath.Join(dir, "lib", "?.lua")
		if !strings.Contains(old, p) {
			pkg.RawSetString("path", glua.LString(p+";"+old))
		}
	})
}

// SetArgs sets the global arg table the way the lua command does: arg[0] is
// the script, arg[1..] its arguments, and arg[-1] the program.
func (h *Host) SetArgs(program, script string, args []string) {
	h.withLock(func() {
		t := h.L.NewTable()
		t.RawSetInt(-1, glua.LString(program))
		t.RawSetInt(0, glua.LString(script))
		for i, a := range args {
			t.RawSetInt(i+1, glua.LString(a))
		}
		h.L.SetGlobal("arg", t)
	})
}

// withLock runs fn holding the interpreter lock.
func (h *Host) withLock(fn func()) {
	h.lock(nil)
	defer h.unlock()
	fn()
}

// Eval compiles and runs a chunk as a foreground task and waits for it. It
// returns the chunk's results converted to strings by the caller's printer.
func (h *Host) Eval(ctx context.Context, name, src string) ([]glua.LValue, error) {
	return h.EvalAs(ctx, name, "", src)
}

// EvalAs is Eval for a chunk whose sockets carry owner in the descriptor
// table instead of the task's own label ("" keeps it): the REPL runs every
// chunk as a short task, and "repl" says more than a dead "task 7 (main)".
func (h *Host) EvalAs(ctx context.Context, name, owner, src string) ([]glua.LValue, error) {
	h.lock(nil)
	fn, err := loadLua(h.L, strings.NewReader(src), name)
	if err != nil {
		h.unlock()
		return nil, err
	}
	// A script's chunk is a numbered task ("task 1 (main)"); the REPL's
	// are helpers named after their owner, so that a prompt's chunks take
	// no task numbers.
	t := h.newTask(ctx, cmp.Or(owner, "main"), owner == "")
	h.unlock()
	// The caller waits for the chunk anyway: it runs on the caller's
	// goroutine, which spares starting one (and, at start-up, a thread).
	h.runTask(t, fn, nil, true)
	return t.results, t.err
}

// RunFile runs a script file as the main task and waits for it (but not for
// the tasks it spawned: see Wait).
func (h *Host) RunFile(ctx context.Context, path string) error {
	var src []byte
	var err error
	name := path
	if path == "-" {
		src, err = io.ReadAll(h.stdin)
		name = "stdin"
	} else {
		src, err = os.ReadFile(path)
		name = filepath.Base(path)
		if strings.HasPrefix(path, "./") || !filepath.IsAbs(path) {
			name = path
		}
	}
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", path, pathError(err))
	}
	if len(src) > 0 && src[0] == '#' { // a #! line, as lua allows
		if i := strings.IndexByte(string(src), '\n'); i >= 0 {
			src = append([]byte("--"), src[i:]...)
		}
	}
	_, err = h.Eval(ctx, name, string(src))
	return err
}

func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Wait blocks until every task has ended or ctx is done.
func (h *Host) Wait(ctx context.Context) { h.tasks.waitAll(ctx) }

// Tasks counts the tasks still running (not counting daemons).
func (h *Host) Tasks() int { return h.tasks.live() }

// FormatError renders an error from Eval for a user: the message with its
// traceback, and no Go stack.
func FormatError(err error) string {
	var ae *glua.ApiError
	if errors.As(err, &ae) {
		msg := ae.Object.String()
		if ae.Type == glua.ApiErrorSyntax {
			return strings.TrimSpace(msg)
		}
		if ae.StackTrace != "" {
			return msg + "\n" + cleanTraceback(ae.StackTrace)
		}
		return msg
	}
	return err.Error()
}

// cleanTraceback drops the frames of the host's own Go functions that say
// nothing to a Lua user.
func cleanTraceback(tb string) string {
	lines := strings.Split(strings.TrimRight(tb, "\n"), "\n")
	out := lines[:0]
	for _, l := range lines {
		if strings.Contains(l, "[G]: ?") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
