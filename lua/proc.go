//go:build linux

package lua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// The proc module runs programs the way a CGI server does: one process per
// call, its standard input given, its output collected, a time limit. The
// wait happens with the interpreter lock released, so the other tasks keep
// serving while a program runs. (gopher-lua's os.execute and io.popen hold
// the lock for the whole run, stalling every task.)
//
// Every program runs in a process group of its own. On a timeout, or when
// the task that runs it is killed, the whole group gets SIGKILL, and the
// program is always reaped: no zombie is left behind.

// defaultMaxOutput bounds what proc.run keeps of stdout and of stderr.
const defaultMaxOutput = 64 << 20

// waitDelay is how long proc.run waits for the output pipes to close after
// the program has exited, in case something outside its process group
// still holds them.
const waitDelay = 2 * time.Second

func openProc(h *Host) {
	h.newModule("proc", "processes: run a program with stdin, env and a time limit", []fn{
		{"run", h.procRun, "proc.run{argv = {prog, args...}, env = {NAME = value}, stdin = data, timeout = seconds, dir = path, max_output = bytes} -> {status, signal, stdout, stderr, timed_out, truncated, pid, time} | nil, msg, code  -- run a program to its end in a process group of its own (env: the whole environment, default sockplay's own); on timeout or kill of the task the group gets SIGKILL, and whatever the program leaves running in it is killed when it exits; always reaped"},
		{"executable", h.procExecutable, "proc.executable() -> path  -- the running sockplay binary, to run a Lua script as a program"},
	})
}

// runSpec is a checked proc.run argument.
type runSpec struct {
	argv      []string
	env       []string // nil: inherit
	stdin     string
	hasStdin  bool
	timeout   time.Duration
	dir       string
	maxOutput int
	// start starts the program; nil is cmd.Start (a lab host starts it
	// inside its namespaces).
	start func(cmd *exec.Cmd) error
}

// checkRunSpec reads the table of proc.run's options at argument arg.
func checkRunSpec(L *glua.LState, arg int) runSpec {
	t := L.CheckTable(arg)
	spec := runSpec{maxOutput: defaultMaxOutput}
	t.ForEach(func(k, v glua.LValue) {
		key, ok := k.(glua.LString)
		if !ok {
			L.ArgError(arg, fmt.Sprintf("unexpected %s key (fields: argv, env, stdin, timeout, dir, max_output)", k.Type()))
		}
		switch key {
		case "argv":
			list, ok := v.(*glua.LTable)
			if !ok {
				L.ArgError(arg, "field \"argv\": table expected, got "+v.Type().String())
			}
			for i := 1; i <= list.Len(); i++ {
				s, ok := list.RawGetInt(i).(glua.LString)
				if !ok {
					L.ArgError(arg, fmt.Sprintf("argv[%d]: string expected, got %s", i, list.RawGetInt(i).Type()))
				}
				spec.argv = append(spec.argv, string(s))
			}
		case "env":
			env, ok := v.(*glua.LTable)
			if !ok {
				L.ArgError(arg, "field \"env\": table expected, got "+v.Type().String())
			}
			spec.env = []string{}
			env.ForEach(func(name, value glua.LValue) {
				n, ok := name.(glua.LString)
				if !ok || n == "" || strings.ContainsAny(string(n), "=\x00") {
					L.ArgError(arg, fmt.Sprintf("env: bad variable name %q", name.String()))
				}
				switch value.(type) {
				case glua.LString, glua.LNumber:
				default:
					L.ArgError(arg, fmt.Sprintf("env.%s: string expected, got %s", n, value.Type()))
				}
				spec.env = append(spec.env, string(n)+"="+value.String())
			})
			sort.Strings(spec.env)
		case "stdin":
			s, ok := v.(glua.LString)
			if !ok {
				L.ArgError(arg, "field \"stdin\": string expected, got "+v.Type().String())
			}
			spec.stdin, spec.hasStdin = string(s), true
		case "timeout":
			n, ok := v.(glua.LNumber)
			if !ok || n < 0 {
				L.ArgError(arg, "field \"timeout\": a number of seconds >= 0 expected")
			}
			spec.timeout = time.Duration(float64(n) * float64(time.Second))
		case "dir":
			s, ok := v.(glua.LString)
			if !ok {
				L.ArgError(arg, "field \"dir\": string expected, got "+v.Type().String())
			}
			spec.dir = string(s)
		case "max_output":
			n, ok := v.(glua.LNumber)
			if !ok || n < 0 {
				L.ArgError(arg, "field \"max_output\": a number of bytes >= 0 expected")
			}
			spec.maxOutput = int(n)
		default:
			L.ArgError(arg, fmt.Sprintf("unknown field %q (fields: argv, env, stdin, timeout, dir, max_output)", string(key)))
		}
	})
	if len(spec.argv) == 0 {
		L.ArgError(arg, "argv must name a program")
	}
	return spec
}

// capped keeps the first max bytes written to it and drops the rest, so a
// chatty program runs to its end instead of dying of SIGPIPE.
type capped struct {
	buf       []byte
	max       int
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.buf); room < len(p) {
		c.truncated = true
		c.buf = append(c.buf, p[:max(room, 0)]...)
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// runResult is what one run ended with.
type runResult struct {
	pid            int
	state          *os.ProcessState
	stdout, stderr capped
	timedOut       bool
	cancelled      bool
	elapsed        time.Duration
}

// runProgram starts spec's program and waits for it, its time limit or
// ctx, whichever comes first. It returns only once the program is reaped.
func runProgram(ctx context.Context, spec runSpec) (*runResult, error) {
	cmd := exec.Command(spec.argv[0], spec.argv[1:]...)
	cmd.Env = spec.env
	cmd.Dir = spec.dir
	if spec.hasStdin {
		cmd.Stdin = strings.NewReader(spec.stdin)
	}
	r := &runResult{stdout: capped{max: spec.maxOutput}, stderr: capped{max: spec.maxOutput}}
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = waitDelay
	becomeSubreaper()
	start := time.Now()
	startCmd := spec.start
	if startCmd == nil {
		startCmd = (*exec.Cmd).Start
	}
	orphans.mu.Lock() // the pid is running before a scan may see it
	if err := startCmd(cmd); err != nil {
		orphans.mu.Unlock()
		var se *sock.Error
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, startError(spec.argv[0], err)
	}
	r.pid = cmd.Process.Pid
	orphans.running[r.pid] = true
	orphans.mu.Unlock()

	// Wait for the exit without reaping (WNOWAIT): while the program is a
	// zombie its pid, and so its process group id, cannot be reused, which
	// makes killing the group afterwards safe.
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, r.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				return
			}
		}
	}()
	var timeout <-chan time.Time
	if spec.timeout > 0 {
		tm := time.NewTimer(spec.timeout)
		defer tm.Stop()
		timeout = tm.C
	}
	killGroup := func() { unix.Kill(-r.pid, unix.SIGKILL) }
	select {
	case <-exited:
	case <-timeout:
		r.timedOut = true
		killGroup()
		<-exited
	case <-ctx.Done():
		r.cancelled = true
		killGroup()
		<-exited
	}
	// Whatever the program left running in its group goes too: a run is
	// one program and everything it started.
	killGroup()
	reapGroup(r.pid)
	cmd.Wait() // reaps the program; its exit status is in ProcessState
	orphans.mu.Lock()
	delete(orphans.running, r.pid)
	orphans.mu.Unlock()
	watchOrphans()
	r.state = cmd.ProcessState
	r.elapsed = time.Since(start)
	return r, nil
}

// sockplay is a subreaper (PR_SET_CHILD_SUBREAPER): a process that
// outlives its parent, like the sleep in "sleep 9 & wait" when the shell is
// killed, becomes sockplay's child instead of init's. Not every init reaps
// (a container's often does not), so sockplay reaps those itself.
var subreaperOnce sync.Once

func becomeSubreaper() {
	subreaperOnce.Do(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

// reapGroup reaps the members of process group pgid that have become
// sockplay's children, once the group has been killed. The leader pgid is
// still unreaped (a zombie), so the group id cannot have been reused. It
// gives up after a second on members that do not die.
func reapGroup(pgid int) {
	self := os.Getpid()
	deadline := time.Now().Add(time.Second)
	for {
		others := 0
		for _, p := range groupMembers(pgid) {
			if p.pid == pgid {
				continue
			}
			others++
			if p.ppid == self {
				var ws unix.WaitStatus
				unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
			}
		}
		if others == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond) // a killed member's parent is still dying
	}
}

// orphans are the processes a run leaves behind outside its process
// group: a daemon that called setsid keeps running after the run, and
// when its parent dies it becomes sockplay's child (sockplay is the
// subreaper). Nobody else will wait for it, so sockplay watches each one
// and reaps it when it exits; what it started in turn becomes sockplay's
// then, and is watched too.
var orphans = struct {
	mu       sync.Mutex
	running  map[int]bool // proc.run's programs (and groups) running now
	watching map[int]bool
}{running: map[int]bool{}, watching: map[int]bool{}}

// watchOrphans looks for sockplay's children that no one waits for:
// outside its own process group (the programs exec'd by sockplay's own
// code stay in it) and outside the groups of the runs in progress (each
// run reaps its own group). Each gets a goroutine that reaps it.
func watchOrphans() {
	self, group := os.Getpid(), unix.Getpgrp()
	orphans.mu.Lock()
	defer orphans.mu.Unlock()
	for _, p := range procList(func(p procEntry) bool { return p.ppid == self }) {
		if p.pgrp == group || orphans.running[p.pgrp] || orphans.watching[p.pid] {
			continue
		}
		orphans.watching[p.pid] = true
		go func(pid int) {
			var ws unix.WaitStatus
			for {
				if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
					break
				}
			}
			orphans.mu.Lock()
			delete(orphans.watching, pid)
			orphans.mu.Unlock()
			watchOrphans()
		}(p.pid)
	}
}

type procEntry struct{ pid, ppid, pgrp int }

// groupMembers lists the processes of group pgid from /proc.
func groupMembers(pgid int) []procEntry {
	return procList(func(p procEntry) bool { return p.pgrp == pgid })
}

// procList lists the processes that keep says to, from /proc.
func procList(keep func(procEntry) bool) []procEntry {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procEntry
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		if p := (procEntry{pid, ppid, pgrp}); keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// startError words a failure to start: no such program, not executable,
// not a program at all.
func startError(prog string, err error) error {
	if errors.Is(err, exec.ErrNotFound) {
		return &sock.Error{Op: "exec", Code: "ENOENT", Msg: fmt.Sprintf("%s: executable file not found in $PATH", prog), Errno: unix.ENOENT}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return &sock.Error{Op: "exec", Code: unix.ErrnoName(errno), Msg: fmt.Sprintf("%s (%s)", errno.Error(), prog), Errno: errno}
	}
	return &sock.Error{Op: "exec", Code: "EIO", Msg: err.Error()}
}

func (h *Host) procRun(L *glua.LState) int {
	return h.runAndPush(L, checkRunSpec(L, 1))
}

// runAndPush runs spec's program under the calling task and pushes
// proc.run's result table.
func (h *Host) runAndPush(L *glua.LState, spec runSpec) int {
	var r *runResult
	var err error
	h.blocking(L, "run "+spec.argv[0], func(ctx context.Context) {
		r, err = runProgram(ctx, spec)
	})
	if err != nil {
		return pushFail(L, err)
	}
	if r.cancelled {
		h.raiseCancelled(L)
	}
	t := L.CreateTable(0, 8)
	t.RawSetString("pid", glua.LNumber(r.pid))
	t.RawSetString("stdout", glua.LString(r.stdout.buf))
	t.RawSetString("stderr", glua.LString(r.stderr.buf))
	t.RawSetString("timed_out", glua.LBool(r.timedOut))
	t.RawSetString("truncated", glua.LBool(r.stdout.truncated || r.stderr.truncated))
	t.RawSetString("time", glua.LNumber(r.elapsed.Seconds()))
	if ws, ok := r.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.RawSetString("signal", glua.LString(unix.SignalName(ws.Signal())))
	} else {
		t.RawSetString("status", glua.LNumber(r.state.ExitCode()))
	}
	L.Push(t)
	return 1
}

func (h *Host) procExecutable(L *glua.LState) int {
	p, err := os.Executable()
	if err != nil {
		return pushFail(L, &sock.Error{Op: "executable", Code: "ENOENT", Msg: err.Error()})
	}
	L.Push(glua.LString(p))
	return 1
}
