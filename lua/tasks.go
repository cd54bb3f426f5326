package lua

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

// Task is a Lua function running on its own goroutine and thread.
type Task struct {
	ID     int
	Name   string
	L      *glua.LState
	Daemon bool // does not keep the process alive (the trace task)

	ctx  taskContext // one allocation with the task: the hot path touches
	vm   vmContext   // all three on every socket call
	done chan struct{}

	mu      sync.Mutex
	state   string   // running, waiting, done, failed, killed
	waiting waitDesc // what a waiting task waits on
	started time.Time

	results []glua.LValue
	err     error
}

// waitDesc says what a task waits on ("accept", fd 5) without formatting
// it: blocking calls are hot, and the text is only wanted when tasks() or
// the REPL asks.
type waitDesc struct {
	op     string
	fd     int // -1 when the wait is not on an fd
	detail string
}

func (w waitDesc) String() string {
	switch {
	case w.op == "":
		return ""
	case w.fd >= 0 && w.detail != "":
		return fmt.Sprintf("%s fd %d %s", w.op, w.fd, w.detail)
	case w.fd >= 0:
		return fmt.Sprintf("%s fd %d", w.op, w.fd)
	case w.detail != "":
		return w.op + " " + w.detail
	}
	return w.op
}

func (t *Task) setWaiting(w waitDesc) {
	t.mu.Lock()
	t.waiting = w
	if w.op == "" {
		t.state = "running"
	} else {
		t.state = "waiting"
	}
	t.mu.Unlock()
}

// State returns the task's state and what it waits on.
func (t *Task) State() (state, waiting string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state, t.waiting.String()
}

// Owner is the label the task's sockets carry in the descriptor table:
// "task 3 (name)", or a helper's name alone.
func (t *Task) Owner() string {
	switch {
	case t.ID == 0:
		return t.Name
	case t.Name != "" && t.Name != fmt.Sprintf("task %d", t.ID):
		return fmt.Sprintf("task %d (%s)", t.ID, t.Name)
	}
	return fmt.Sprintf("task %d", t.ID)
}

// Kill cancels the task: what it waits on wakes, and its next instruction
// raises.
func (t *Task) Kill(cause error) { t.ctx.cancel(cause) }

// Done is closed when the task has ended.
func (t *Task) Done() <-chan struct{} { return t.done }

type taskRegistry struct {
	mu      sync.Mutex
	nextID  int
	byID    map[int]*Task
	byState map[*glua.LState]*Task
	all     sync.WaitGroup
	changed chan struct{} // closed and replaced whenever a task ends
}

func (r *taskRegistry) init() {
	r.byID = map[int]*Task{}
	r.byState = map[*glua.LState]*Task{}
	r.changed = make(chan struct{})
}

// add registers t; a numbered task gets the next number. Helpers (see
// startHelper) get none, so the numbers a user sees go up one by one.
func (r *taskRegistry) add(t *Task, numbered bool) {
	r.mu.Lock()
	if numbered {
		r.nextID++
		t.ID = r.nextID
		r.byID[t.ID] = t
	}
	if t.Name == "" {
		t.Name = fmt.Sprintf("task %d", t.ID)
	}
	r.byState[t.L] = t
	r.mu.Unlock()
}

func (r *taskRegistry) remove(t *Task) {
	r.mu.Lock()
	if t.ID != 0 {
		delete(r.byID, t.ID)
	}
	delete(r.byState, t.L)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *taskRegistry) list() []*Task {
	r.mu.Lock()
	out := make([]*Task, 0, len(r.byState))
	for _, t := range r.byState {
		out = append(out, t)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].started.Before(out[j].started)
	})
	return out
}

func (r *taskRegistry) get(id int) *Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// live counts the tasks that keep the process alive.
func (r *taskRegistry) live() int {
	n := 0
	for _, t := range r.list() {
		if !t.Daemon {
			n++
		}
	}
	return n
}

func (r *taskRegistry) killAll(cause error) {
	for _, t := range r.list() {
		t.Kill(cause)
	}
}

// waitAll waits until no task but daemons runs, or ctx ends.
func (r *taskRegistry) waitAll(ctx context.Context) {
	for {
		r.mu.Lock()
		n := 0
		for _, t := range r.byState {
			if !t.Daemon {
				n++
			}
		}
		ch := r.changed
		r.mu.Unlock()
		if n == 0 {
			return
		}
		if ctx == nil {
			<-ch
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// taskOf finds the task running L, following coroutines to the task that
// resumed them.
func (h *Host) taskOf(L *glua.LState) *Task {
	if vc, ok := L.Context().(*vmContext); ok && !vc.coroutine {
		return vc.t // a task's own thread: no lookup
	}
	h.tasks.mu.Lock()
	defer h.tasks.mu.Unlock()
	for s := L; s != nil; s = s.Parent {
		if t := h.tasks.byState[s]; t != nil {
			return t
		}
	}
	return nil
}

// taskCtx is the context blocking calls made by L run under.
func (h *Host) taskCtx(L *glua.LState) context.Context {
	if t := h.taskOf(L); t != nil {
		return &t.ctx
	}
	return h.ctx
}

// startTaskIn runs fn(args...) as a background task on a new goroutine and
// thread, its sockets opening in ns (a lab host's namespace; nil:
// sockplay's own). The caller holds the interpreter lock; the task starts
// running when the caller lets go.
func (h *Host) startTaskIn(ns *sock.Netns, fn *glua.LFunction, args []glua.LValue, name string) *Task {
	t := h.newTask(h.ctx, name, true)
	t.ctx.netns.Store(ns)
	go h.runTask(t, fn, args, false)
	return t
}

// taskNetns is the namespace the task running L opens its sockets in: a
// task spawns its helpers where it runs itself.
func (h *Host) taskNetns(L *glua.LState) *sock.Netns {
	if t := h.taskOf(L); t != nil {
		return t.ctx.netns.Load()
	}
	return nil
}

// startHelper is startTask for a task the host runs for a moment on its
// own account (printing a result, a DNS handler's call, delivering trace
// events): it takes no task number, and its sockets carry its name alone.
func (h *Host) startHelper(parent context.Context, fn *glua.LFunction, name string, foreground bool) *Task {
	t := h.newTask(parent, name, false)
	go h.runTask(t, fn, nil, foreground)
	return t
}

// newTask makes and registers a task that runTask will run, numbered or
// not (see startHelper). The caller holds the interpreter lock.
func (h *Host) newTask(parent context.Context, name string, numbered bool) *Task {
	if parent == nil {
		parent = h.ctx
	}
	th, _ := h.L.NewThread()
	t := &Task{Name: name, L: th, done: make(chan struct{}), state: "running", started: time.Now()}
	t.ctx.init(h, t)
	h.tasks.add(t, numbered)
	t.ctx.owner = t.Owner()
	if parent != h.ctx {
		t.ctx.follow(parent)
	}
	if h.ctx.Err() != nil {
		// Close has begun; its killAll may have missed this task.
		t.ctx.cancel(errInterrupted)
	}
	t.vm.taskContext, t.vm.self, t.vm.budget = &t.ctx, th, turnBudget
	th.SetContext(&t.vm)
	h.tasks.all.Add(1)
	return t
}

func (h *Host) runTask(t *Task, fn *glua.LFunction, args []glua.LValue, foreground bool) {
	defer h.tasks.all.Done()
	h.lock(t.L)
	err := t.L.CallByParam(glua.P{Fn: fn, NRet: glua.MultRet, Protect: true}, args...)
	var results []glua.LValue
	if err == nil {
		top := t.L.GetTop()
		results = make([]glua.LValue, top)
		for i := 1; i <= top; i++ {
			results[i-1] = t.L.Get(i)
		}
		t.L.SetTop(0)
	}
	h.unlock()

	cause := t.ctx.Cause()
	state := "done"
	switch {
	case errors.Is(cause, errExit):
		state, err = "done", nil
	case errors.Is(cause, errKilled):
		// Killed, even if it then returned: a pcall or a coroutine may
		// have caught the error, and a tail call ends with no instruction
		// left to raise it in.
		state, err, results = "killed", errKilled, nil
	case err == nil:
	case cause != nil:
		state, err = "killed", cause
	default:
		state = "failed"
	}
	t.mu.Lock()
	t.state, t.waiting, t.results, t.err = state, waitDesc{}, results, err
	t.mu.Unlock()
	t.ctx.cancel(nil)
	h.tasks.remove(t)
	if state == "failed" && !foreground {
		h.failed.Store(true)
		fmt.Fprintf(h.errw, "%s failed: %s\n", t.Owner(), FormatError(err))
	}
	close(t.done)
}

func openTasks(h *Host) {
	h.setGlobals([]fn{
		{"spawn", h.luaSpawn, "spawn(fn, ...) -> task  -- run fn(...) as a background task; blocking calls in one task let the others run; spawn{fn, ..., name = \"label\"} also names it (tasks(), the OWNER of its sockets in fds())"},
		{"sleep", h.luaSleep, "sleep(seconds)  -- pause this task; other tasks keep running"},
		{"tasks", h.luaTasks, "tasks() -> {{id, name, state, waiting, fds}, ...}  -- the running tasks"},
		{"wait", h.luaWait, "wait(task [, timeout]) -> results... | nil, msg, code  -- wait for a task to end and get what it returned"},
		{"kill", h.luaKill, "kill(task) -> true  -- wake what the task waits on and end it"},
	})
	mt := h.L.NewTypeMetatable("sock.task")
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString(h.taskString(checkTask(L, 1))))
		return 1
	}))
	mt.RawSetString("__index", h.L.NewFunction(func(L *glua.LState) int {
		t := checkTask(L, 1)
		switch L.CheckString(2) {
		case "id":
			if t.ID == 0 {
				L.Push(glua.LNil) // a helper has no number
			} else {
				L.Push(glua.LNumber(t.ID))
			}
		case "name":
			L.Push(glua.LString(t.Name))
		case "state":
			st, _ := t.State()
			L.Push(glua.LString(st))
		case "waiting":
			_, w := t.State()
			L.Push(glua.LString(w))
		default:
			L.Push(glua.LNil)
		}
		return 1
	}))
}

func (h *Host) taskString(t *Task) string {
	st, w := t.State()
	id := ""
	if t.ID != 0 {
		id = fmt.Sprintf(" %d", t.ID)
	}
	if w != "" {
		return fmt.Sprintf("<task%s %q %s: %s>", id, t.Name, st, w)
	}
	return fmt.Sprintf("<task%s %q %s>", id, t.Name, st)
}

func (h *Host) taskValue(L *glua.LState, t *Task) glua.LValue {
	ud := L.NewUserData()
	ud.Value = t
	ud.Metatable = L.GetTypeMetatable("sock.task")
	return ud
}

func checkTask(L *glua.LState, n int) *Task {
	ud, ok := L.Get(n).(*glua.LUserData)
	if ok {
		if t, ok := ud.Value.(*Task); ok {
			return t
		}
	}
	L.ArgError(n, "task expected, got "+L.Get(n).Type().String())
	return nil
}

// lookupTask accepts a task object or its id.
func (h *Host) lookupTask(L *glua.LState, n int) *Task {
	if num, ok := L.Get(n).(glua.LNumber); ok {
		if t := h.tasks.get(int(num)); t != nil {
			return t
		}
		L.ArgError(n, fmt.Sprintf("no task with id %d", int(num)))
	}
	return checkTask(L, n)
}

func (h *Host) luaSpawn(L *glua.LState) int {
	if spec, ok := L.Get(1).(*glua.LTable); ok && L.GetTop() == 1 {
		return h.spawnNamed(L, spec)
	}
	fn := L.CheckFunction(1)
	args := make([]glua.LValue, 0, L.GetTop()-1)
	for i := 2; i <= L.GetTop(); i++ {
		args = append(args, L.Get(i))
	}
	name := functionName(fn)
	t := h.startTaskIn(h.taskNetns(L), fn, args, name)
	L.Push(h.taskValue(L, t))
	return 1
}

// spawnNamed is spawn{fn, args..., name = "label"}: the name is fixed
// before the task runs, so every socket it opens or accepts carries it,
// and a proxy can say which client a backend connection serves.
func (h *Host) spawnNamed(L *glua.LState, spec *glua.LTable) int {
	L.Push(h.taskValue(L, h.spawnSpec(L, 1, spec, h.taskNetns(L))))
	return 1
}

// spawnSpec starts the task a spawn{fn, args..., name = "label"} table at
// argument arg describes, its sockets opening in ns.
func (h *Host) spawnSpec(L *glua.LState, arg int, spec *glua.LTable, ns *sock.Netns) *Task {
	fn, ok := spec.RawGetInt(1).(*glua.LFunction)
	if !ok {
		L.ArgError(arg, "spawn{fn, ...}: function expected as the first element, got "+spec.RawGetInt(1).Type().String())
	}
	name := functionName(fn)
	switch v := spec.RawGetString("name").(type) {
	case glua.LString:
		if v == "" || strings.ContainsAny(string(v), "\r\n") {
			L.ArgError(arg, "spawn{name = ...}: want a one-line, non-empty name")
		}
		name = string(v)
	case *glua.LNilType:
	default:
		L.ArgError(arg, "spawn{name = ...}: string expected, got "+v.Type().String())
	}
	n := spec.MaxN()
	args := make([]glua.LValue, 0, max(n-1, 0))
	for i := 2; i <= n; i++ {
		args = append(args, spec.RawGetInt(i))
	}
	return h.startTaskIn(ns, fn, args, name)
}

// functionName is a task's default name: where its function was defined.
func functionName(fn *glua.LFunction) string {
	if fn.Proto == nil {
		return ""
	}
	src := strings.Trim(strings.TrimPrefix(fn.Proto.SourceName, "@"), "()")
	return fmt.Sprintf("%s:%d", src, fn.Proto.LineDefined)
}

func (h *Host) luaSleep(L *glua.LState) int {
	secs := float64(L.CheckNumber(1))
	if secs < 0 {
		L.ArgError(1, "seconds must not be negative")
	}
	h.sleep(L, secs)
	return 0
}

// sleep pauses the task for secs seconds, letting the others run; a kill
// or Ctrl-C ends it.
func (h *Host) sleep(L *glua.LState, secs float64) {
	d := time.Duration(min(secs, 1e9) * float64(time.Second))
	var interrupted bool
	h.waitWith(L, waitDesc{op: "sleep", fd: -1, detail: fmt.Sprintf("%gs", secs)}, func(ctx context.Context) {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
			interrupted = true
		}
	})
	if interrupted {
		h.raiseCancelled(L)
	}
}

// raiseCancelled ends a task whose context was cancelled while it waited.
func (h *Host) raiseCancelled(L *glua.LState) {
	ctx := h.taskCtx(L)
	cause := causeOf(ctx)
	if cause == nil || errors.Is(cause, context.Canceled) {
		cause = errInterrupted
	}
	L.RaiseError("%s", cause.Error())
}

func (h *Host) luaTasks(L *glua.LState) int {
	owners := map[string][]int{}
	for _, s := range h.table.Sockets() {
		owners[s.Owner] = append(owners[s.Owner], s.FD)
	}
	out := L.NewTable()
	for _, t := range h.tasks.list() {
		st, w := t.State()
		row := L.NewTable()
		if t.ID != 0 {
			row.RawSetString("id", glua.LNumber(t.ID))
		}
		row.RawSetString("name", glua.LString(t.Name))
		row.RawSetString("state", glua.LString(st))
		if w != "" {
			row.RawSetString("waiting", glua.LString(w))
		}
		fds := L.NewTable()
		for _, fd := range owners[t.Owner()] {
			fds.Append(glua.LNumber(fd))
		}
		row.RawSetString("fds", fds)
		row.RawSetString("task", h.taskValue(L, t))
		out.Append(row)
	}
	L.Push(out)
	return 1
}

func (h *Host) luaWait(L *glua.LState) int {
	t := h.lookupTask(L, 1)
	timeout := time.Duration(float64(L.OptNumber(2, -1)) * float64(time.Second))
	if t.L == L {
		L.ArgError(1, "a task cannot wait for itself")
	}
	var timedOut, interrupted bool
	h.waitWith(L, waitDesc{op: "wait", fd: -1, detail: t.Owner()}, func(ctx context.Context) {
		var tc <-chan time.Time
		if timeout >= 0 {
			tm := time.NewTimer(timeout)
			defer tm.Stop()
			tc = tm.C
		}
		select {
		case <-t.done:
		case <-tc:
			timedOut = true
		case <-ctx.Done():
			interrupted = true
		}
	})
	switch {
	case interrupted:
		h.raiseCancelled(L)
	case timedOut:
		return pushFail(L, sock.ErrTimeout)
	}
	if t.err != nil {
		L.Push(glua.LNil)
		L.Push(glua.LString(errorMessage(t.err)))
		if errors.Is(t.err, errKilled) {
			L.Push(glua.LString("KILLED"))
		} else {
			L.Push(glua.LString("ERROR"))
		}
		return 3
	}
	for _, v := range t.results {
		L.Push(v)
	}
	return len(t.results)
}

// errorMessage is an error's first line: the Lua message without traceback.
func errorMessage(err error) string {
	var ae *glua.ApiError
	if errors.As(err, &ae) {
		return ae.Object.String()
	}
	return err.Error()
}

func (h *Host) luaKill(L *glua.LState) int {
	t := h.lookupTask(L, 1)
	t.Kill(errKilled)
	L.Push(glua.LTrue)
	return 1
}
