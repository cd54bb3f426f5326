package lua

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

// What the REPL asks the host about without running Lua code: the names a
// prefix can complete to, the tasks, killing one.

// Fields lists the names that can follow path and sep at the prompt, for
// tab completion. path is a dotted chain of names ("", "sock", "t.a.b");
// sep is '.' for fields (a socket's fd and methods too) or ':' for
// methods only. With an empty path it lists the globals and Lua's
// keywords. Nothing runs: values are looked up with raw gets, so no
// metamethod can block the prompt.
func (h *Host) Fields(path string, sep byte) []string {
	var out []string
	h.withLock(func() {
		if path == "" {
			h.L.G.Global.ForEach(func(k, _ glua.LValue) {
				if s, ok := k.(glua.LString); ok && isIdentifier(string(s)) {
					out = append(out, string(s))
				}
			})
			out = append(out, LuaKeywords()...)
			return
		}
		var v glua.LValue = h.L.G.Global
		for _, name := range strings.Split(path, ".") {
			t, ok := v.(*glua.LTable)
			if !ok {
				return
			}
			v = t.RawGetString(name)
		}
		out = h.fieldsOf(v, sep == ':')
	})
	sort.Strings(out)
	return dedupe(out)
}

func (h *Host) fieldsOf(v glua.LValue, methodsOnly bool) []string {
	var out []string
	switch v := v.(type) {
	case *glua.LTable:
		v.ForEach(func(k, val glua.LValue) {
			s, ok := k.(glua.LString)
			if !ok || !isIdentifier(string(s)) {
				return
			}
			if _, fn := val.(*glua.LFunction); fn || !methodsOnly {
				out = append(out, string(s))
			}
		})
		// Fields an __index table provides (a class's methods).
		if mt, ok := v.Metatable.(*glua.LTable); ok {
			if idx, ok := mt.RawGetString("__index").(*glua.LTable); ok && idx != v {
				out = append(out, h.fieldsOf(idx, methodsOnly)...)
			}
		}
	case *glua.LUserData:
		switch v.Value.(type) {
		case *sockObj:
			for _, f := range h.sockFuncs() {
				out = append(out, f.name)
			}
			if !methodsOnly {
				out = append(out, "fd", "kind")
			}
		case *Task:
			if !methodsOnly {
				out = append(out, "id", "name", "state", "waiting")
			}
		case *lsSocket:
			if mt, ok := v.Metatable.(*glua.LTable); ok {
				if idx, ok := mt.RawGetString("__index").(*glua.LTable); ok {
					out = append(out, h.fieldsOf(idx, methodsOnly)...)
				}
			}
		default:
			out = append(out, h.labFields(v, methodsOnly)...)
		}
	case glua.LString:
		if methodsOnly {
			if t, ok := h.L.GetGlobal("string").(*glua.LTable); ok {
				out = h.fieldsOf(t, true)
			}
		}
	}
	return out
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// TaskRows is the task list as .tasks shows it: a header row, then one row
// per running task.
func (h *Host) TaskRows() [][]string {
	owners := map[string][]string{}
	for _, s := range h.table.Sockets() {
		owners[s.Owner] = append(owners[s.Owner], strconv.Itoa(s.FD))
	}
	rows := [][]string{{"ID", "NAME", "STATE", "WAITING ON", "FDS", "AGE"}}
	for _, t := range h.tasks.list() {
		if t.Name == "print" {
			continue // the REPL printing a result
		}
		st, w := t.State()
		id := "-"
		if t.ID != 0 {
			id = strconv.Itoa(t.ID)
		}
		rows = append(rows, []string{id, t.Name, st, orDash(w),
			orDash(strings.Join(owners[t.Owner()], ",")), age(time.Since(t.started))})
	}
	return rows
}

// KillTask ends task id as kill(id) does.
func (h *Host) KillTask(id int) error {
	t := h.tasks.get(id)
	if t == nil {
		return fmt.Errorf("no task with id %d (.tasks lists them)", id)
	}
	t.Kill(errKilled)
	return nil
}

// SocketFD is the fd a value stands for: a number, or a socket object's fd.
func SocketFD(v glua.LValue) (int, bool) {
	switch v := v.(type) {
	case glua.LNumber:
		if float64(int(v)) == float64(v) {
			return int(v), true
		}
	case *glua.LUserData:
		if s := userdataSocket(v); s != nil {
			return s.FD, true
		}
	}
	return 0, false
}

// FdChain is what .fd N shows: fd -> open file description -> inode ->
// kernel socket state and queues.
func (h *Host) FdChain(fd int) (string, bool) {
	e, ok := sock.Find(h.table.Snapshot(), fd)
	if !ok {
		return fmt.Sprintf("fd %d is not open", fd), false
	}
	return strings.TrimRight(RenderChain(e), "\n"), true
}
