package lua

import (
	"sort"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// socket.select as LuaSocket gives it: two arrays of objects (anything
// with a getfd method, and a dirty method that says bytes are buffered),
// and two result tables that are both arrays and sets ({obj, [obj] = 1}).
// It waits with poll(2), so it has no FD_SETSIZE limit: _SETSIZE is the
// process's descriptor limit.

type selectEntry struct {
	fd     int
	obj    glua.LValue
	events int16
}

// collectSelect reads the objects of the table at argument n into by,
// keyed by fd (the last object with a given fd wins, as in LuaSocket).
func collectSelect(L *glua.LState, n int, by map[int]*selectEntry, ev int16, order *[]glua.LValue) {
	t := L.Get(n)
	if t == glua.LNil {
		return
	}
	tab, ok := t.(*glua.LTable)
	if !ok {
		L.TypeError(n, glua.LTTable)
	}
	for i := 1; ; i++ {
		v := L.GetTable(tab, glua.LNumber(i))
		if v == glua.LNil {
			return
		}
		fd := selectFd(L, v)
		if fd < 0 {
			continue
		}
		e := by[fd]
		if e == nil {
			e = &selectEntry{fd: fd}
			by[fd] = e
		}
		e.obj = v
		e.events |= ev
		if order != nil {
			*order = append(*order, v)
		}
	}
}

// selectFd calls v:getfd(), or returns -1 when v has no getfd or it gives
// no descriptor.
func selectFd(L *glua.LState, v glua.LValue) int {
	if o := lsArgValue(v); o != nil { // the common case, without a call
		if o.s == nil || o.s.Closed() {
			return -1
		}
		return o.s.FD
	}
	getfd := L.GetField(v, "getfd")
	if getfd == glua.LNil {
		return -1
	}
	L.Push(getfd)
	L.Push(v)
	L.Call(1, 1)
	r := L.Get(-1)
	L.Pop(1)
	if n, ok := toNumber(r); ok && n >= 0 {
		return int(n)
	}
	return -1
}

func lsArgValue(v glua.LValue) *lsSocket {
	if ud, ok := v.(*glua.LUserData); ok {
		if o, ok := ud.Value.(*lsSocket); ok {
			return o
		}
	}
	return nil
}

// selectDirty calls v:dirty() when v has one.
func selectDirty(L *glua.LState, v glua.LValue) bool {
	if o := lsArgValue(v); o != nil {
		return o.class.tcp() && len(o.buf) > 0
	}
	dirty := L.GetField(v, "dirty")
	if dirty == glua.LNil {
		return false
	}
	L.Push(dirty)
	L.Push(v)
	L.Call(1, 1)
	r := L.Get(-1)
	L.Pop(1)
	return glua.LVAsBool(r)
}

// lsSelect is socket.select(recvt, sendt [, timeout]) -> readable,
// writable [, "timeout"].
func (h *Host) lsSelect(L *glua.LState) int {
	timeout := optNumber(L, 3, -1)
	by := map[int]*selectEntry{}
	var recvOrder []glua.LValue
	collectSelect(L, 1, by, unix.POLLIN, &recvOrder)
	collectSelect(L, 2, by, unix.POLLOUT, nil)

	// Objects with buffered bytes are readable at once, first, in the
	// order given; the poll does not look at them for reading.
	readable, writable := L.NewTable(), L.NewTable()
	seen := map[glua.LValue]bool{}
	for _, v := range recvOrder {
		if fd := selectFd(L, v); fd >= 0 && !seen[v] && selectDirty(L, v) {
			seen[v] = true
			readable.Append(v)
			if e := by[fd]; e != nil {
				e.events &^= unix.POLLIN
			}
		}
	}
	if readable.Len() > 0 {
		timeout = 0
	}
	var fds []unix.PollFd
	var entries []*selectEntry
	for _, e := range by {
		if e.events != 0 {
			entries = append(entries, e)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].fd < entries[j].fd })
	for _, e := range entries {
		fds = append(fds, unix.PollFd{Fd: int32(e.fd), Events: e.events})
	}

	n, err := h.pollFds(L, "select", fds, timeout)
	if err != nil {
		L.RaiseError("select failed: %s", sock.Message(err))
	}
	for i, p := range fds {
		if p.Revents&unix.POLLNVAL != 0 {
			L.RaiseError("select failed: fd %d is not open", p.Fd)
		}
		e := entries[i]
		if e.events&unix.POLLIN != 0 && p.Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
			readable.Append(e.obj)
		}
		if e.events&unix.POLLOUT != 0 && p.Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0 {
			writable.Append(e.obj)
		}
	}
	if n == 0 && readable.Len() == 0 {
		L.Push(readable)
		L.Push(writable)
		L.Push(glua.LString("timeout"))
		return 3
	}
	L.Push(asSet(readable))
	L.Push(asSet(writable))
	return 2
}

// asSet adds to an array each element's index, keyed by the element.
func asSet(t *glua.LTable) *glua.LTable {
	for i := 1; i <= t.Len(); i++ {
		t.RawSet(t.RawGetInt(i), glua.LNumber(i))
	}
	return t
}
