package lua

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

func openFds(h *Host) {
	h.setGlobals([]fn{
		{"fds", h.luaFds, "fds([\"all\"]) -> table  -- the descriptor table: sockplay's sockets (\"all\": every fd, 0, 1, 2 and the runtime's too); printed, an aligned table"},
		{"fd", h.luaFd, "fd(n) -> table  -- one fd's chain: fd -> open file description (flags, offset) -> inode -> kernel socket state and queues"},
	})
	mt := h.L.NewTypeMetatable("sock.fdtable")
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		t := L.CheckTable(1)
		all := glua.LVAsBool(t.RawGetString("_all"))
		L.Push(glua.LString(strings.TrimRight(RenderFds(h.table.Snapshot(), all, h.socketNames(L)), "\n")))
		return 1
	}))
	mt2 := h.L.NewTypeMetatable("sock.fdchain")
	mt2.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		t := L.CheckTable(1)
		fd := int(glua.LVAsNumber(t.RawGetString("fd")))
		e, ok := sock.Find(h.table.Snapshot(), fd)
		if !ok {
			L.Push(glua.LString(fmt.Sprintf("fd %d is not open", fd)))
			return 1
		}
		L.Push(glua.LString(strings.TrimRight(RenderChain(e), "\n")))
		return 1
	}))
}

func (h *Host) luaFds(L *glua.LState) int {
	all := false
	if L.GetTop() >= 1 {
		switch v := L.Get(1).(type) {
		case glua.LString:
			if v != "all" {
				L.ArgError(1, fmt.Sprintf("want \"all\" or nothing, not %q", string(v)))
			}
			all = true
		case glua.LBool:
			all = bool(v)
		case *glua.LNilType:
		default:
			L.ArgError(1, "\"all\" expected, got "+v.Type().String())
		}
	}
	out := L.NewTable()
	for _, e := range h.table.Snapshot() {
		if !all && (e.Socket == nil || !e.Socket.Ours) {
			continue
		}
		out.Append(entryTable(L, e))
	}
	if all {
		out.RawSetString("_all", glua.LTrue)
	}
	L.SetMetatable(out, L.GetTypeMetatable("sock.fdtable"))
	L.Push(out)
	return 1
}

func (h *Host) luaFd(L *glua.LState) int {
	fd := L.CheckInt(1)
	e, ok := sock.Find(h.table.Snapshot(), fd)
	if !ok {
		return pushFail(L, &sock.Error{Code: "EBADF", Msg: fmt.Sprintf("bad file descriptor (fd %d is not open)", fd)})
	}
	t := entryTable(L, e)
	L.SetMetatable(t, L.GetTypeMetatable("sock.fdchain"))
	L.Push(t)
	return 1
}

func entryTable(L *glua.LState, e sock.Entry) *glua.LTable {
	t := L.NewTable()
	t.RawSetString("fd", glua.LNumber(e.FD))
	t.RawSetString("type", glua.LString(e.Type))
	t.RawSetString("target", glua.LString(e.Target))
	t.RawSetString("inode", glua.LNumber(e.Inode))
	t.RawSetString("flags", glua.LString(e.Flags))
	t.RawSetString("pos", glua.LNumber(e.Pos))
	if e.Socket != nil {
		info := socketInfoTable(L, e.FD, e.Socket)
		info.ForEach(func(k, v glua.LValue) { t.RawSet(k, v) })
	}
	return t
}

func socketInfoTable(L *glua.LState, fd int, s *sock.SocketInfo) *glua.LTable {
	t := L.NewTable()
	t.RawSetString("fd", glua.LNumber(fd))
	t.RawSetString("kind", glua.LString(s.Kind.String()))
	t.RawSetString("state", glua.LString(s.State))
	if s.Local.IsValid() {
		t.RawSetString("laddr", glua.LString(s.Local.Addr().String()))
		t.RawSetString("lport", glua.LNumber(s.Local.Port()))
	}
	if s.Peer.IsValid() {
		t.RawSetString("raddr", glua.LString(s.Peer.Addr().String()))
		t.RawSetString("rport", glua.LNumber(s.Peer.Port()))
	}
	if c := s.Capture; c != nil {
		t.RawSetString("iface", glua.LString(c.Iface))
		t.RawSetString("filter", glua.LString(c.Filter))
		t.RawSetString("received", glua.LNumber(c.Received))
		t.RawSetString("dropped", glua.LNumber(c.Dropped))
	}
	t.RawSetString("recvq", glua.LNumber(s.RecvQ))
	t.RawSetString("sendq", glua.LNumber(s.SendQ))
	t.RawSetString("bytes_in", glua.LNumber(s.BytesIn))
	t.RawSetString("bytes_out", glua.LNumber(s.BytesOut))
	t.RawSetString("dgrams_in", glua.LNumber(s.DgramsIn))
	t.RawSetString("dgrams_out", glua.LNumber(s.DgramsOut))
	t.RawSetString("owner", glua.LString(s.Owner))
	if s.Host != "" {
		t.RawSetString("host", glua.LString(s.Host))
	}
	t.RawSetString("age", glua.LNumber(s.Age.Seconds()))
	t.RawSetString("ours", glua.LBool(s.Ours))
	if s.Ours {
		t.RawSetString("waits", glua.LNumber(s.Waits))
	}
	if s.Kind.Stream() {
		t.RawSetString("retrans", glua.LNumber(s.Retrans))
		t.RawSetString("rtt", glua.LNumber(s.RTT.Seconds()))
		t.RawSetString("rttvar", glua.LNumber(s.RTTVar.Seconds()))
		t.RawSetString("cwnd", glua.LNumber(s.Cwnd))
	}
	if s.Impair != "" {
		t.RawSetString("impair", glua.LString(s.Impair))
	}
	return t
}

// socketNames maps fds to the global variables that hold them, so the table
// can say "srv" rather than just "task 1".
//
// A socket object names its fd for certain. A plain number only might: at
// the prompt people write l = sock.open("tcp"), but also n = sock.write(c,
// "hello\n"), and 6 may well be an open fd too. So a number names an fd
// only when it equals one of sockplay's open sockets, no socket object
// names that fd already, and the variable is not called like a counter,
// size or port (i, j, k, n, m, x, y, count, len, size, port, bytes ...).
func (h *Host) socketNames(L *glua.LState) map[int]string {
	names := map[int]string{}
	numbers := map[int]string{}
	L.G.Global.ForEach(func(k, v glua.LValue) {
		name, ok := k.(glua.LString)
		if !ok {
			return
		}
		switch v := v.(type) {
		case *glua.LUserData:
			if s := userdataSocket(v); s != nil && !s.Closed() {
				if old, dup := names[s.FD]; !dup || string(name) < old {
					names[s.FD] = string(name)
				}
			}
		case glua.LNumber:
			fd := int(v)
			if float64(fd) != float64(v) || fd < 0 || !fdLikeName(string(name)) {
				return
			}
			if old, dup := numbers[fd]; !dup || string(name) < old {
				numbers[fd] = string(name)
			}
		}
	})
	for fd, name := range numbers {
		if _, named := names[fd]; named {
			continue
		}
		if s, err := h.table.Get(fd); err == nil && !s.Closed() {
			names[fd] = name
		}
	}
	return names
}

// userdataSocket is the socket a socket object (sockplay's or a LuaSocket
// object) holds, or nil.
func userdataSocket(v *glua.LUserData) *sock.Socket {
	switch o := v.Value.(type) {
	case *sockObj:
		return o.s
	case *lsSocket:
		return o.s
	}
	return nil
}

// fdLikeName rejects the names of numbers that are seldom fds.
func fdLikeName(name string) bool {
	switch strings.ToLower(name) {
	case "i", "j", "k", "n", "m", "x", "y", "z", "_", "ok", "code", "status":
		return false
	}
	lower := strings.ToLower(name)
	for _, word := range []string{"count", "len", "size", "port", "bytes", "num", "total", "sent", "recv", "read", "written", "max", "min", "timeout", "time", "age", "id"} {
		if strings.Contains(lower, word) && !strings.Contains(lower, "fd") {
			return false
		}
	}
	return true
}

// FdRows is the descriptor table as .fds shows it, cell by cell: a header
// row, then one row per descriptor (see RenderFds). The REPL's .watch
// compares frames cell by cell.
func (h *Host) FdRows(all bool) [][]string {
	var names map[int]string
	h.withLock(func() { names = h.socketNames(h.L) })
	return fdRows(h.table.Snapshot(), all, names)
}

// FdColumns names FdRows's columns, in order. When a socket lives in a
// lab host, a HOST column comes before LOCAL: the same address can be
// two hosts' own.
var FdColumns = []string{"FD", "KIND", "STATE", "RECV-Q", "SEND-Q", "LOCAL", "PEER", "IN/OUT", "OWNER", "AGE"}

// hostColumn is where the HOST column goes.
const hostColumn = 5

// RenderFds renders a snapshot as an aligned table in the spirit of ss:
//
//	FD  KIND  STATE        RECV-Q  SEND-Q  LOCAL            PEER             IN/OUT  OWNER   AGE
//	5   tcp   LISTEN       0       128     127.0.0.1:8080   *                0/0     task 1  3.2s
//
// Without all, only sockplay's sockets (and the connections it closed that
// the kernel still keeps) are shown.
func RenderFds(entries []sock.Entry, all bool, names map[int]string) string {
	rows := fdRows(entries, all, names)
	if len(rows) == 1 {
		return "(no sockets open)\n"
	}
	return alignRows(rows)
}

func fdRows(entries []sock.Entry, all bool, names map[int]string) [][]string {
	hosts := false
	for _, e := range entries {
		if e.Socket != nil && e.Socket.Host != "" && (all || e.Socket.Ours) {
			hosts = true
		}
	}
	row := func(cells []string, host string) []string {
		if !hosts {
			return cells
		}
		return append(cells[:hostColumn:hostColumn], append([]string{host}, cells[hostColumn:]...)...)
	}
	rows := [][]string{row(append([]string(nil), FdColumns...), "HOST")}
	for _, e := range entries {
		s := e.Socket
		if s == nil || (!s.Ours && e.Type == "socket" && s.Kind == 0) {
			if !all {
				continue
			}
			rows = append(rows, row([]string{strconv.Itoa(e.FD), e.Type, "-", "", "", e.Target, "", "", describeOther(e), ""}, ""))
			continue
		}
		if !all && !s.Ours {
			continue
		}
		fd := strconv.Itoa(e.FD)
		if e.FD < 0 {
			fd = "-"
		}
		owner := s.Owner
		if n := names[e.FD]; n != "" && e.FD >= 0 {
			// "l, task 1 (main)": the variable, then the owner, whose own
			// label may hold parentheses already.
			owner = n + ", " + s.Owner
		}
		io := fmt.Sprintf("%d/%d", s.BytesIn, s.BytesOut)
		if !s.Kind.Stream() {
			io = fmt.Sprintf("%dd/%dd", s.DgramsIn, s.DgramsOut)
		}
		state := s.State
		if s.Impair != "" {
			state += " (impaired)"
		}
		local, peer := addrOrStar(s.Local), addrOrStar(s.Peer)
		if c := s.Capture; c != nil {
			// A capture: its interface, its filter, the kernel's counters.
			local, peer = c.Iface, "(own sockets)"
			if c.Filter != "" {
				peer = strconv.Quote(c.Filter)
			}
			io = fmt.Sprintf("%dp, %d dropped", c.Received, c.Dropped)
		}
		rows = append(rows, row([]string{fd, s.Kind.String(), state, strconv.Itoa(s.RecvQ), strconv.Itoa(s.SendQ),
			local, peer, io, owner, age(s.Age)}, orDash(s.Host)))
	}
	return rows
}

func describeOther(e sock.Entry) string {
	if e.Note != "" {
		return e.Note
	}
	switch e.FD {
	case 0:
		return "stdin"
	case 1:
		return "stdout"
	case 2:
		return "stderr"
	}
	switch e.Type {
	case "epoll":
		return "Go runtime poller"
	case "eventfd":
		return "poller wake-up"
	case "pipe":
		if e.FD > 2 {
			return "runtime pipe"
		}
	}
	return ""
}

func addrOrStar(ap interface {
	IsValid() bool
	String() string
}) string {
	if !ap.IsValid() {
		return "*"
	}
	return ap.String()
}

func age(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return d.Truncate(time.Minute).String()
}

// AlignRows pads columns to their widest cell, two spaces apart.
func AlignRows(rows [][]string) string { return alignRows(rows) }

// alignRows pads columns to their widest cell.
func alignRows(rows [][]string) string {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// RenderChain shows the three levels behind one fd.
func RenderChain(e sock.Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "fd %d  (this process's descriptor table)\n", e.FD)
	fmt.Fprintf(&b, "  -> open file description: flags %s, offset %d\n", orDash(e.Flags), e.Pos)
	fmt.Fprintf(&b, "  -> inode %d: %s\n", e.Inode, e.Target)
	if e.Note != "" {
		fmt.Fprintf(&b, "     (%s)\n", e.Note)
	}
	if s := e.Socket; s != nil && s.Kind != 0 {
		where := ""
		if s.Host != "" {
			where = " in lab host " + s.Host
		}
		if c := s.Capture; c != nil {
			fmt.Fprintf(&b, "  -> kernel socket%s: AF_PACKET on %s, filter %s\n", where, c.Iface, orDash(c.Filter))
			fmt.Fprintf(&b, "     the kernel passed it %d packets and dropped %d (PACKET_STATISTICS); owner %s; age %s\n",
				c.Received, c.Dropped, orDash(s.Owner), age(s.Age))
			return b.String()
		}
		fmt.Fprintf(&b, "  -> kernel socket%s: %s %s, local %s, peer %s\n", where, s.Kind, s.State, addrOrStar(s.Local), addrOrStar(s.Peer))
		fmt.Fprintf(&b, "     Recv-Q %d, Send-Q %d", s.RecvQ, s.SendQ)
		if s.State == "LISTEN" {
			b.WriteString("  (accept queue, backlog)")
		}
		b.WriteByte('\n')
		if s.Ours {
			fmt.Fprintf(&b, "     through sockplay: %d bytes in, %d out; %d datagrams in, %d out; owner %s; age %s\n",
				s.BytesIn, s.BytesOut, s.DgramsIn, s.DgramsOut, orDash(s.Owner), age(s.Age))
		}
		if s.Impair != "" {
			fmt.Fprintf(&b, "     impaired: %s\n", s.Impair)
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
