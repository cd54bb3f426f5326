package lua

import (
	"bytes"
	"context"
	"net/netip"
	"time"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

// LuaSocket's TCP objects: master, server and client (see luasocket.go).

func (h *Host) tcpMethods() []fn {
	return []fn{
		{"accept", h.tcpAccept, "server:accept() -> client | nil, err  -- wait for a connection (within the timeout)"},
		{"bind", h.tcpBind, "master:bind(address, port) -> 1 | nil, err  -- give the socket a local address (\"*\": all; port 0: any free)"},
		{"close", h.tcpClose, "tcp:close() -> 1  -- close the descriptor"},
		{"connect", h.tcpConnect, "tcp:connect(address, port) -> 1 | nil, err  -- connect, trying each address the name resolves to; the object becomes a client"},
		{"dirty", h.tcpDirty, "tcp:dirty() -> boolean  -- whether received bytes wait in the object's buffer"},
		{"getfamily", h.tcpGetfamily, "tcp:getfamily() -> \"inet4\" | \"inet6\""},
		{"getfd", h.tcpGetfd, "tcp:getfd() -> fd  -- the kernel's descriptor number, -1 when there is none"},
		{"getoption", h.tcpGetoption, "tcp:getoption(name) -> value | nil, err  -- keepalive, reuseaddr, reuseport, tcp-nodelay, tcp-keepidle, tcp-keepcnt, tcp-keepintvl, linger, error, recv-buffer-size, send-buffer-size"},
		{"getpeername", h.tcpGetpeername, "tcp:getpeername() -> address, port, family | nil, err"},
		{"getsockname", h.tcpGetsockname, "tcp:getsockname() -> address, port, family | nil, err  -- the port as a string, as LuaSocket returns it"},
		{"getstats", h.tcpGetstats, "client:getstats() -> received, sent, age  -- bytes received and sent, seconds since the object was made"},
		{"gettimeout", h.tcpGettimeout, "tcp:gettimeout() -> block, total"},
		{"listen", h.tcpListen, "master:listen([backlog]) -> 1 | nil, err  -- accept connections (backlog default 32); the object becomes a server"},
		{"receive", h.tcpReceive, "client:receive([\"*l\" | \"*a\" | n] [, prefix]) -> data | nil, err, partial  -- a line (without \\r\\n), everything until the peer closes, or n bytes"},
		{"send", h.tcpSend, "client:send(data [, i [, j]]) -> last | nil, err, last  -- send data:sub(i, j); last is the index of the last byte sent"},
		{"setfd", h.tcpSetfd, "tcp:setfd(fd)  -- point the object at another of sockplay's TCP fds, or -1 for none"},
		{"setoption", h.tcpSetoption, "tcp:setoption(name, value) -> 1 | nil, err  -- see getoption; also ipv6-v6only, tcp-defer-accept, tcp-fastopen, tcp-fastopen-connect"},
		{"setpeername", h.tcpConnect, "tcp:setpeername(address, port)  -- connect"},
		{"setsockname", h.tcpBind, "tcp:setsockname(address, port)  -- bind"},
		{"setstats", h.tcpSetstats, "client:setstats([received [, sent [, age]]]) -> 1"},
		{"settimeout", h.tcpSettimeout, "tcp:settimeout(seconds | nil [, \"b\" | \"t\"]) -> 1  -- b: each call may wait this long; t: a call in all; 0: never wait (\"timeout\" at once); nil: for ever"},
		{"shutdown", h.tcpShutdown, "client:shutdown([\"both\" | \"send\" | \"receive\"]) -> 1"},
	}
}

func (h *Host) tcpClose(L *glua.LState) int { return h.lsClose(L, checkAny(L, true)) }
func (h *Host) tcpDirty(L *glua.LState) int {
	L.Push(glua.LBool(len(checkAny(L, true).buf) > 0))
	return 1
}
func (h *Host) tcpGetfamily(L *glua.LState) int { return lsGetfamily(L, checkAny(L, true)) }
func (h *Host) tcpGetfd(L *glua.LState) int     { return lsGetfd(L, checkAny(L, true)) }
func (h *Host) tcpSetfd(L *glua.LState) int     { return h.lsSetfd(L, checkAny(L, true)) }
func (h *Host) tcpGettimeout(L *glua.LState) int {
	return lsGettimeout(L, checkAny(L, true))
}
func (h *Host) tcpSettimeout(L *glua.LState) int {
	return lsSettimeout(L, checkAny(L, true))
}
func (h *Host) tcpGetpeername(L *glua.LState) int { return h.lsGetpeername(L, checkAny(L, true)) }
func (h *Host) tcpGetsockname(L *glua.LState) int { return h.lsGetsockname(L, checkAny(L, true)) }

func (h *Host) tcpBind(L *glua.LState) int {
	o := checkClass(L, tcpMaster)
	host := L.CheckString(2)
	port := lsPort(L, 3)
	if err := h.lsBind(L, o, host, port); err != "" {
		return pushNilErr(L, err)
	}
	return pushOne(L)
}

// lsBind binds o to the first of host's addresses that takes. It
// returns LuaSocket's message, or "".
func (h *Host) lsBind(L *glua.LState, o *lsSocket, host, portStr string) string {
	return h.lsEachAddr(L, o, host, portStr, true, func(ap netip.AddrPort) error { return o.s.Bind(ap) })
}

// lsEachAddr resolves host (for a bind when passive) and tries each
// address in turn until try succeeds, giving o a socket first when it has
// none, or none of the address's family (LuaSocket makes a socket.tcp()'s
// socket on its first bind or connect, and anew when a connect moves on
// to an address of the other family). It returns LuaSocket's message for
// the last failure, or "".
func (h *Host) lsEachAddr(L *glua.LState, o *lsSocket, host, portStr string, passive bool, try func(netip.AddrPort) error) string {
	port, err := parsePort(portStr)
	if err != nil {
		return gaiError(err)
	}
	addrs, err := h.lsResolve(L, host, o.family, passive)
	if err != nil {
		return gaiError(err)
	}
	for _, a := range addrs {
		if o.s == nil || o.family != familyOf(a) {
			if err = h.lsOpen(L, o, familyOf(a)); err != nil {
				continue
			}
		}
		if err = try(netip.AddrPortFrom(a, port)); err == nil {
			return ""
		}
	}
	return lsStrerror(err)
}

func (h *Host) tcpConnect(L *glua.LState) int {
	o := checkAny(L, true)
	host := L.CheckString(2)
	port := lsPort(L, 3)
	o.markStart()
	msg := h.lsConnect(L, o, host, port)
	// The class changes even on failure: a connect that timed out with
	// timeout 0 goes on in the kernel, and the client waits for it.
	h.setClass(L, o, tcpClient)
	if msg != "" {
		return pushNilErr(L, msg)
	}
	return pushOne(L)
}

// lsConnect connects o to the first of host's addresses that answers.
// It returns LuaSocket's message, or "".
func (h *Host) lsConnect(L *glua.LState, o *lsSocket, host, portStr string) string {
	return h.lsEachAddr(L, o, host, portStr, false, func(ap netip.AddrPort) error {
		o.markStart()
		return h.lsCall(L, o, "connect", func(ctx context.Context) error { return o.s.Connect(ctx, ap) })
	})
}

func (h *Host) tcpListen(L *glua.LState) int {
	o := checkClass(L, tcpMaster)
	backlog := int(optNumber(L, 2, 32))
	if o.s == nil {
		return pushNilErr(L, strerror(errNoSocket))
	}
	if backlog < 0 {
		backlog = 0 // listen(2) takes a negative backlog as 0
	}
	if err := o.s.Listen(backlog); err != nil {
		return pushNilErr(L, lsStrerror(err))
	}
	h.setClass(L, o, tcpServer)
	return pushOne(L)
}

func (h *Host) tcpAccept(L *glua.LState) int {
	o := checkClass(L, tcpServer)
	o.markStart()
	var c *sock.Socket
	err := h.lsCall(L, o, "accept", func(ctx context.Context) error {
		var err error
		c, _, err = o.s.Accept(ctx)
		return err
	})
	if err != nil {
		return pushNilErr(L, lsIOError(err))
	}
	L.Push(h.lsValue(L, &lsSocket{class: tcpClient, family: o.family, s: c, block: -1, total: -1, birthday: time.Now()}))
	return 1
}

func (h *Host) tcpShutdown(L *glua.LState) int {
	o := checkClass(L, tcpClient)
	how := ""
	switch L.OptString(2, "both") {
	case "both":
		how = "rw"
	case "send":
		how = "w"
	case "receive":
		how = "r"
	default:
		L.ArgError(2, "invalid option '"+L.OptString(2, "both")+"'")
	}
	if o.s != nil {
		o.s.Shutdown(how) // LuaSocket reports no failure
	}
	return pushOne(L)
}

func (h *Host) tcpGetstats(L *glua.LState) int {
	o := checkClass(L, tcpClient)
	L.Push(glua.LNumber(o.received))
	L.Push(glua.LNumber(o.sent))
	L.Push(glua.LNumber(time.Since(o.birthday).Seconds()))
	return 3
}

func (h *Host) tcpSetstats(L *glua.LState) int {
	o := checkClass(L, tcpClient)
	o.received = int64(optNumber(L, 2, float64(o.received)))
	o.sent = int64(optNumber(L, 3, float64(o.sent)))
	if age, ok := toNumber(L.Get(4)); ok {
		o.birthday = time.Now().Add(-time.Duration(age * float64(time.Second)))
	}
	return pushOne(L)
}

func (h *Host) tcpSend(L *glua.LState) int {
	o := checkClass(L, tcpClient)
	data := L.CheckString(2)
	start := int64(optNumber(L, 3, 1))
	end := int64(optNumber(L, 4, -1))
	o.markStart()
	size := int64(len(data))
	if start < 0 {
		start = size + start + 1
	}
	if end < 0 {
		end = size + end + 1
	}
	start = max(start, 1)
	end = min(end, size)
	var sent int
	var err error
	if start <= end {
		p := bytesOf(data[start-1 : end])
		err = h.lsCall(L, o, "send", func(ctx context.Context) error {
			var err error
			sent, err = o.s.Write(ctx, p)
			return err
		})
		o.sent += int64(sent)
	}
	last := glua.LNumber(int64(sent) + start - 1)
	if err != nil {
		L.Push(glua.LNil)
		L.Push(glua.LString(lsIOError(err)))
		L.Push(last)
		return 3
	}
	L.Push(last)
	L.Push(glua.LNil)
	L.Push(glua.LNil)
	return 3
}

// lsFill reads what has arrived into o's buffer when the buffer is
// empty: LuaSocket's buffer_get.
func (h *Host) lsFill(L *glua.LState, o *lsSocket) error {
	if len(o.buf) > 0 {
		return nil
	}
	var got []byte
	err := h.lsCall(L, o, "receive", func(ctx context.Context) error {
		var err error
		got, err = o.s.ReadAppend(ctx, lsReadSize, nil)
		return err
	})
	if len(got) > 0 {
		o.buf = got
	}
	return err
}

// take hands out n buffered bytes.
func (o *lsSocket) take(n int) []byte {
	p := o.buf[:n]
	o.buf = o.buf[n:]
	if len(o.buf) == 0 {
		o.buf = nil
	}
	o.received += int64(n)
	return p
}

func (h *Host) tcpReceive(L *glua.LState) int {
	o := checkClass(L, tcpClient)
	prefix := L.OptString(3, "")
	out := []byte(prefix)
	var err error
	if n, ok := toNumber(L.Get(2)); ok {
		if n < 0 {
			L.ArgError(2, "invalid receive pattern")
		}
		o.markStart()
		wanted := int(n)
		if len(prefix) == 0 || wanted > len(prefix) {
			out, err = h.lsReceiveN(L, o, out, wanted-len(prefix))
		}
	} else {
		p := L.OptString(2, "l")
		if len(p) > 0 && p[0] == '*' {
			p = p[1:]
		}
		o.markStart()
		switch {
		case len(p) > 0 && p[0] == 'l':
			out, err = h.lsReceiveLine(L, o, out)
		case len(p) > 0 && p[0] == 'a':
			out, err = h.lsReceiveAll(L, o, out)
		default:
			L.ArgError(2, "invalid receive pattern")
		}
	}
	if err != nil {
		L.Push(glua.LNil)
		L.Push(glua.LString(lsIOError(err)))
		L.Push(glua.LString(out))
		return 3
	}
	L.Push(glua.LString(out))
	L.Push(glua.LNil)
	L.Push(glua.LNil)
	return 3
}

// lsReceiveN appends wanted bytes to out. Like LuaSocket's it waits for
// something to arrive even when wanted is 0.
func (h *Host) lsReceiveN(L *glua.LState, o *lsSocket, out []byte, wanted int) ([]byte, error) {
	total := 0
	for {
		err := h.lsFill(L, o)
		k := min(len(o.buf), wanted-total)
		out = append(out, o.take(k)...)
		total += k
		if total >= wanted || err != nil {
			return out, err
		}
	}
}

// lsReceiveLine appends a line to out: the bytes up to \n, leaving out
// every \r.
func (h *Host) lsReceiveLine(L *glua.LState, o *lsSocket, out []byte) ([]byte, error) {
	for {
		err := h.lsFill(L, o)
		if i := bytes.IndexByte(o.buf, '\n'); i >= 0 {
			out = appendNoCR(out, o.take(i + 1)[:i])
			return out, nil
		}
		out = appendNoCR(out, o.take(len(o.buf)))
		if err != nil {
			return out, err
		}
	}
}

func appendNoCR(out, p []byte) []byte {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			return append(out, p...)
		}
		out = append(out, p[:i]...)
		p = p[i+1:]
	}
	return out
}

// lsReceiveAll appends everything until the peer closes. A clean end of
// stream after some bytes is success; with none it is "closed".
func (h *Host) lsReceiveAll(L *glua.LState, o *lsSocket, out []byte) ([]byte, error) {
	total := 0
	for {
		err := h.lsFill(L, o)
		total += len(o.buf)
		out = append(out, o.take(len(o.buf))...)
		if err == nil {
			continue
		}
		if total > 0 && sock.Code(err) == "EOF" {
			return out, nil
		}
		return out, err
	}
}
