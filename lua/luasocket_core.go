package lua

import (
	_ "embed"
	"strings"
	"time"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"
)

// The socket and socket.core modules: registration, the functions of
// socket.core that are not methods, and the Lua part (luasocket.lua).

// luasocketLua is the socket module's Lua part.
//
//go:embed luasocket.lua
var luasocketLua string

// lsVersion is the version LuaSocket programs see.
const lsVersion = "LuaSocket 3.0.0"

func openLuaSocket(h *Host) {
	h.newLibrary("socket.core", "LuaSocket 3's core in Go on sockplay's sockets: tcp, udp, connect, select, sleep, gettime, dns ...", h.buildLuaSocket)
	// require "socket" runs the Lua part on socket.core's table and
	// returns it: the two modules are one table, as in LuaSocket.
	h.addLibrary("socket", "LuaSocket 3 on sockplay's sockets: socket.core and its Lua helpers (bind, connect4, connect6, try, choose, sink, source)", func() *glua.LTable {
		return h.library("socket.core")
	})
	h.L.PreloadModule("socket", func(L *glua.LState) int {
		core := h.library("socket.core")
		fn, err := loadLua(L, strings.NewReader(luasocketLua), "[socket]")
		if err != nil {
			L.RaiseError("loading the socket module: %s", err)
		}
		L.Push(fn)
		L.Call(0, 1)
		for name, doc := range luasocketLuaDocs {
			if f, ok := core.RawGetString(name).(*glua.LFunction); ok {
				h.docs[f] = doc
			}
		}
		return 1
	})
}

// buildLuaSocket makes socket.core's table and the objects' metatables,
// the first time a script asks for them.
func (h *Host) buildLuaSocket() *glua.LTable {
	h.ls = &luasocketState{}
	core := h.L.NewTable()
	h.addFuncs(core, []fn{
		{"tcp", h.lsCtor(tcpMaster, famUnspec), "socket.tcp() -> master | nil, err  -- a TCP object; its socket is made, IPv4 or IPv6, by its first bind or connect"},
		{"tcp4", h.lsCtor(tcpMaster, famInet), "socket.tcp4() -> master | nil, err  -- a TCP object on an IPv4 socket"},
		{"tcp6", h.lsCtor(tcpMaster, famInet6), "socket.tcp6() -> master | nil, err  -- a TCP object on an IPv6-only socket"},
		{"udp", h.lsCtor(udpUnconnected, famUnspec), "socket.udp() -> unconnected | nil, err  -- a UDP object; its socket is made by its first setsockname, setpeername or sendto"},
		{"udp4", h.lsCtor(udpUnconnected, famInet), "socket.udp4() -> unconnected | nil, err  -- a UDP object on an IPv4 socket"},
		{"udp6", h.lsCtor(udpUnconnected, famInet6), "socket.udp6() -> unconnected | nil, err  -- a UDP object on an IPv6-only socket"},
		{"connect", h.lsGlobalConnect, "socket.connect(address, port [, laddress [, lport [, family]]]) -> client | nil, err  -- a connected TCP client; family \"inet\" or \"inet6\" limits the addresses tried"},
		{"select", h.lsSelect, "socket.select(recvt, sendt [, timeout]) -> readable, writable [, \"timeout\"]  -- wait until objects are readable or writable; the results are arrays and sets; no 1024-descriptor limit"},
		{"sleep", h.lsSleep, "socket.sleep(seconds)  -- pause this task; other tasks keep running"},
		{"gettime", lsGettime, "socket.gettime() -> seconds  -- the time since the epoch, with microseconds"},
		{"skip", lsSkip, "socket.skip(n, ...) -> ...  -- the arguments after the first n"},
		{"newtry", h.lsNewtry, "socket.newtry([finalizer]) -> try  -- try(ok, ...) returns its arguments, or calls finalizer and raises an error protect catches"},
		{"protect", h.lsProtect, "socket.protect(fn) -> fn'  -- fn' returns nil, err where fn raised with a try; other errors go on"},
	})
	core.RawSetString("_VERSION", glua.LString(lsVersion))
	core.RawSetString("_SETSIZE", glua.LNumber(descriptorLimit()))
	core.RawSetString("_DATAGRAMSIZE", glua.LNumber(lsDatagramSize))
	core.RawSetString("_SOCKETINVALID", glua.LNumber(-1))
	dns := h.L.NewTable()
	h.addFuncs(dns, h.lsDNSFuncs())
	core.RawSetString("dns", dns)
	h.ls.core = core

	tcp, udp := h.L.NewTable(), h.L.NewTable()
	h.addFuncs(tcp, h.tcpMethods())
	h.addFuncs(udp, h.udpMethods())
	for c := range lsClasses {
		methods := tcp
		if !c.tcp() {
			methods = udp
		}
		index := h.L.NewTable()
		methods.ForEach(func(k, v glua.LValue) { index.RawSet(k, v) })
		index.RawSetString("class", glua.LString(c.String()))
		mt := h.L.NewTable()
		mt.RawSetString("__index", index)
		mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
			o := lsArg(L, 1)
			if o == nil {
				L.ArgError(1, "socket object expected")
			}
			L.Push(glua.LString(lsString(o)))
			return 1
		}))
		h.ls.meta[c] = mt
	}
	h.ls.tryMeta = h.L.NewTable()
	h.ls.tryMeta.RawSetString("__metatable", glua.LFalse)

	return core
}

// luasocketLuaDocs are the help lines of the functions luasocket.lua
// defines.
var luasocketLuaDocs = map[string]string{
	"bind":     "socket.bind(address, port [, backlog]) -> server | nil, err  -- a listening TCP object with reuseaddr, on the first of address's addresses that takes (\"*\": all)",
	"connect4": "socket.connect4(address, port [, laddress [, lport]]) -> client | nil, err  -- socket.connect over IPv4",
	"connect6": "socket.connect6(address, port [, laddress [, lport]]) -> client | nil, err  -- socket.connect over IPv6",
	"try":      "socket.try(ok, ...) -> ...  -- its arguments when ok is true, else raises the second for socket.protect to return",
	"choose":   "socket.choose(t) -> f  -- f(name, ...) calls t[name](...), t.default without a name",
	"sink":     "socket.sink([\"keep-open\" | \"close-when-done\",] sock) -> sink  -- an LTN12 sink that sends what it is given",
	"source":   "socket.source([\"until-closed\" | \"by-length\",] sock [, length]) -> source  -- an LTN12 source of what the socket receives",
}

// descriptorLimit is how many descriptors the process may open: the most
// sockets select can be given.
func descriptorLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 20
	}
	return int(rl.Cur)
}

func (h *Host) lsCtor(c lsClass, fam lsFamily) glua.LGFunction {
	return func(L *glua.LState) int {
		o, err := h.lsNew(L, c, fam)
		if err != nil {
			return pushNilErr(L, lsStrerror(err))
		}
		L.Push(h.lsValue(L, o))
		return 1
	}
}

// lsGlobalConnect is socket.connect: bind (when a local address is
// given) and connect a new TCP object.
func (h *Host) lsGlobalConnect(L *glua.LState) int {
	host := L.CheckString(1)
	port := lsPort(L, 2)
	laddr := L.OptString(3, "")
	lport := "0"
	if L.Get(4) != glua.LNil {
		lport = L.CheckString(4)
	}
	fam := famUnspec
	switch f := L.OptString(5, "unspec"); f {
	case "unspec":
	case "inet":
		fam = famInet
	case "inet6":
		fam = famInet6
	default:
		L.ArgError(5, "invalid option '"+f+"'")
	}
	o := &lsSocket{class: tcpClient, family: fam, block: -1, total: -1, birthday: time.Now()}
	fail := func(msg string) int {
		if o.s != nil {
			o.s.Close()
		}
		return pushNilErr(L, msg)
	}
	if L.Get(3) != glua.LNil {
		o.class = tcpMaster // lsBind makes a TCP socket
		if msg := h.lsBind(L, o, laddr, lport); msg != "" {
			return fail(msg)
		}
	}
	o.class = tcpClient
	o.markStart()
	if msg := h.lsConnect(L, o, host, port); msg != "" {
		return fail(msg)
	}
	L.Push(h.lsValue(L, o))
	return 1
}

func (h *Host) lsSleep(L *glua.LState) int {
	if secs := float64(L.CheckNumber(1)); secs > 0 {
		h.sleep(L, secs)
	}
	return 0
}

func lsGettime(L *glua.LState) int {
	L.Push(glua.LNumber(float64(time.Now().UnixMicro()) / 1e6))
	return 1
}

// lsSkip returns its arguments after the first n (and n itself counted).
func lsSkip(L *glua.LState) int {
	n := L.CheckInt(1)
	return max(L.GetTop()-n-1, 0)
}

// lsNewtry makes a try: try(ok, ...) returns all its arguments when ok is
// true; otherwise it calls the finalizer (whose errors are ignored) and
// raises {err} marked as a try's error, which protect turns back into
// nil, err.
func (h *Host) lsNewtry(L *glua.LState) int {
	fin := L.Get(1)
	L.Push(L.NewFunction(func(L *glua.LState) int {
		if glua.LVAsBool(L.Get(1)) {
			return L.GetTop()
		}
		if fin != glua.LNil {
			L.Push(fin)
			L.PCall(0, 0, nil)
		}
		e := L.NewTable()
		e.RawSetInt(1, L.Get(2))
		e.Metatable = h.ls.tryMeta
		L.Error(e, 0)
		return 0
	}))
	return 1
}

func (h *Host) lsProtect(L *glua.LState) int {
	f := L.Get(1)
	L.Push(L.NewFunction(func(L *glua.LState) int {
		L.Insert(f, 1)
		if err := L.PCall(L.GetTop()-1, glua.MultRet, nil); err != nil {
			ae, ok := err.(*glua.ApiError)
			if !ok {
				panic(err)
			}
			if t, ok := ae.Object.(*glua.LTable); ok && t.Metatable == h.ls.tryMeta {
				L.Push(glua.LNil)
				L.Push(t.RawGetInt(1))
				return 2
			}
			L.Error(ae.Object, 0)
		}
		return L.GetTop()
	}))
	return 1
}
