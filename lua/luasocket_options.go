package lua

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"strings"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"
)

// LuaSocket's socket options: its names ("tcp-nodelay"), its value shapes
// (booleans, numbers, {on =, timeout =} for linger, {multiaddr =,
// interface =} for multicast groups) and its failures ("setsockopt
// failed").

type lsOptKind uint8

const (
	optBool lsOptKind = iota
	optInt
	optLinger
	optIP     // an IPv4 address: ip-multicast-if
	optMreq   // {multiaddr, interface}: an IPv4 multicast group
	optMreq6  // {multiaddr, interface}: an IPv6 multicast group
	optErrStr // SO_ERROR as LuaSocket's message
)

type lsOption struct {
	level, opt int
	kind       lsOptKind
}

// lsOptionValue is an option set before the socket existed, applied when
// it is made.
type lsOptionValue struct {
	name       string
	level, opt int
	value      []byte
}

// Whether an option can be set, read, or both.
const (
	canSet = 1 << iota
	canGet
	canBoth = canSet | canGet
)

type lsOptionEntry struct {
	lsOption
	access uint8
}

func opt(level, name int, kind lsOptKind, access uint8) lsOptionEntry {
	return lsOptionEntry{lsOption{level, name, kind}, access}
}

// The options each kind of object takes, as LuaSocket 3.1 lists them.
var (
	tcpOptions = map[string]lsOptionEntry{
		"keepalive":            opt(unix.SOL_SOCKET, unix.SO_KEEPALIVE, optBool, canBoth),
		"reuseaddr":            opt(unix.SOL_SOCKET, unix.SO_REUSEADDR, optBool, canBoth),
		"reuseport":            opt(unix.SOL_SOCKET, unix.SO_REUSEPORT, optBool, canBoth),
		"tcp-nodelay":          opt(unix.IPPROTO_TCP, unix.TCP_NODELAY, optBool, canBoth),
		"tcp-keepidle":         opt(unix.IPPROTO_TCP, tcpKeepIdle, optInt, canBoth),
		"tcp-keepcnt":          opt(unix.IPPROTO_TCP, unix.TCP_KEEPCNT, optInt, canBoth),
		"tcp-keepintvl":        opt(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, optInt, canBoth),
		"tcp-defer-accept":     opt(unix.IPPROTO_TCP, tcpDeferAccept, optInt, canSet),
		"tcp-fastopen":         opt(unix.IPPROTO_TCP, unix.TCP_FASTOPEN, optInt, canSet),
		"tcp-fastopen-connect": opt(unix.IPPROTO_TCP, tcpFastopenConnect, optInt, canSet),
		"ipv6-v6only":          opt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, optBool, canSet),
		"linger":               opt(unix.SOL_SOCKET, unix.SO_LINGER, optLinger, canBoth),
		"error":                opt(unix.SOL_SOCKET, unix.SO_ERROR, optErrStr, canGet),
		"recv-buffer-size":     opt(unix.SOL_SOCKET, unix.SO_RCVBUF, optInt, canBoth),
		"send-buffer-size":     opt(unix.SOL_SOCKET, unix.SO_SNDBUF, optInt, canBoth),
	}
	udpOptions = map[string]lsOptionEntry{
		"dontroute":            opt(unix.SOL_SOCKET, unix.SO_DONTROUTE, optBool, canBoth),
		"broadcast":            opt(unix.SOL_SOCKET, unix.SO_BROADCAST, optBool, canBoth),
		"reuseaddr":            opt(unix.SOL_SOCKET, unix.SO_REUSEADDR, optBool, canBoth),
		"reuseport":            opt(unix.SOL_SOCKET, unix.SO_REUSEPORT, optBool, canBoth),
		"ip-multicast-if":      opt(unix.IPPROTO_IP, unix.IP_MULTICAST_IF, optIP, canBoth),
		"ip-multicast-ttl":     opt(unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, optInt, canSet),
		"ip-multicast-loop":    opt(unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, optBool, canBoth),
		"ip-add-membership":    opt(unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, optMreq, canSet),
		"ip-drop-membership":   opt(unix.IPPROTO_IP, unix.IP_DROP_MEMBERSHIP, optMreq, canSet),
		"ipv6-unicast-hops":    opt(unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, optInt, canBoth),
		"ipv6-multicast-hops":  opt(unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, optInt, canBoth),
		"ipv6-multicast-loop":  opt(unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, optBool, canBoth),
		"ipv6-add-membership":  opt(unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, optMreq6, canSet),
		"ipv6-drop-membership": opt(unix.IPPROTO_IPV6, unix.IPV6_LEAVE_GROUP, optMreq6, canSet),
		"ipv6-v6only":          opt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, optBool, canBoth),
		"error":                opt(unix.SOL_SOCKET, unix.SO_ERROR, optErrStr, canGet),
		"recv-buffer-size":     opt(unix.SOL_SOCKET, unix.SO_RCVBUF, optInt, canBoth),
		"send-buffer-size":     opt(unix.SOL_SOCKET, unix.SO_SNDBUF, optInt, canBoth),
	}
)

func intOption(v int32) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(v)) }

func optionNames(m map[string]lsOptionEntry, access uint8) string {
	var names []string
	for n, e := range m {
		if e.access&access != 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// checkOptionName raises for a name the object does not take (to set or
// to get, as access says), in LuaSocket's words, with the names it does.
func checkOptionName(L *glua.LState, table map[string]lsOptionEntry, access uint8) (string, lsOption) {
	name := L.CheckString(2)
	e, ok := table[name]
	if !ok || e.access&access == 0 {
		L.ArgError(2, "unsupported option `"+name+"' (known: "+optionNames(table, access)+")")
	}
	return name, e.lsOption
}

// encodeOption turns argument 3 into the option's bytes, raising when it
// has the wrong shape.
func encodeOption(L *glua.LState, op lsOption) []byte {
	v := L.Get(3)
	switch op.kind {
	case optBool:
		b, ok := v.(glua.LBool)
		if !ok {
			L.TypeError(3, glua.LTBool)
		}
		if b {
			return intOption(1)
		}
		return intOption(0)
	case optInt:
		n, _ := toNumber(v)
		return intOption(int32(n))
	case optLinger:
		t, ok := v.(*glua.LTable)
		if !ok {
			L.TypeError(3, glua.LTTable)
		}
		on, ok := L.GetField(t, "on").(glua.LBool)
		if !ok {
			L.ArgError(3, "boolean 'on' field expected")
		}
		secs, ok := toNumber(L.GetField(t, "timeout"))
		if !ok {
			L.ArgError(3, "number 'timeout' field expected")
		}
		b := intOption(0)
		if on {
			b = intOption(1)
		}
		return append(b, intOption(int32(uint16(secs)))...)
	case optIP:
		s := L.CheckString(3)
		a := netip.IPv4Unspecified()
		if s != "*" {
			var err error
			if a, err = netip.ParseAddr(s); err != nil || !a.Is4() {
				L.ArgError(3, "ip expected")
			}
		}
		b := a.As4()
		return b[:]
	case optMreq, optMreq6:
		t, ok := v.(*glua.LTable)
		if !ok {
			L.TypeError(3, glua.LTTable)
		}
		group, ok := L.GetField(t, "multiaddr").(glua.LString)
		if !ok {
			L.ArgError(3, "string 'multiaddr' field expected")
		}
		a, err := netip.ParseAddr(string(group))
		if err != nil || a.Is4() != (op.kind == optMreq) {
			L.ArgError(3, "invalid 'multiaddr' ip address")
		}
		if op.kind == optMreq6 {
			b := a.As16()
			out := append([]byte(nil), b[:]...)
			var ifindex float64
			if iv := L.GetField(t, "interface"); iv != glua.LNil {
				if ifindex, ok = toNumber(iv); !ok {
					L.ArgError(3, "number 'interface' field expected")
				}
			}
			return append(out, intOption(int32(ifindex))...)
		}
		ifv, ok := L.GetField(t, "interface").(glua.LString)
		if !ok {
			L.ArgError(3, "string 'interface' field expected")
		}
		iface := netip.IPv4Unspecified()
		if ifv != "*" {
			if iface, err = netip.ParseAddr(string(ifv)); err != nil || !iface.Is4() {
				L.ArgError(3, "invalid 'interface' ip address")
			}
		}
		g, i := a.As4(), iface.As4()
		return append(g[:], i[:]...)
	}
	return nil
}

func (h *Host) lsSetoption(L *glua.LState, o *lsSocket, table map[string]lsOptionEntry) int {
	name, op := checkOptionName(L, table, canSet)
	value := encodeOption(L, op)
	v := lsOptionValue{name: name, level: op.level, opt: op.opt, value: value}
	if o.s == nil && !o.closed {
		// LuaSocket fails here ("setsockopt failed") and the option is
		// lost; sockplay keeps it for the socket bind or connect makes.
		o.pending = append(o.pending, v)
		return pushOne(L)
	}
	if o.s == nil {
		return pushNilErr(L, "setsockopt failed")
	}
	if err := h.lsApplyOption(o, v); err != nil {
		return pushNilErr(L, "setsockopt failed")
	}
	return pushOne(L)
}

func (h *Host) lsApplyOption(o *lsSocket, v lsOptionValue) error {
	return o.s.SetOptionBytes(v.name, v.level, v.opt, v.value)
}

func (h *Host) lsGetoption(L *glua.LState, o *lsSocket, table map[string]lsOptionEntry) int {
	_, op := checkOptionName(L, table, canGet)
	if o.s == nil {
		return pushNilErr(L, "getsockopt failed")
	}
	size := 4
	switch op.kind {
	case optLinger:
		size = 8
	}
	b, err := o.s.OptionBytes(op.level, op.opt, size)
	if err != nil || len(b) < size {
		return pushNilErr(L, "getsockopt failed")
	}
	n := int32(binary.NativeEndian.Uint32(b))
	switch op.kind {
	case optBool:
		L.Push(glua.LBool(n != 0))
	case optInt:
		L.Push(glua.LNumber(n))
	case optLinger:
		t := L.NewTable()
		t.RawSetString("on", glua.LBool(n != 0))
		t.RawSetString("timeout", glua.LNumber(int32(binary.NativeEndian.Uint32(b[4:]))))
		L.Push(t)
	case optIP:
		L.Push(glua.LString(netip.AddrFrom4([4]byte(b[:4])).String()))
	case optErrStr:
		if n == 0 {
			L.Push(glua.LNil) // no pending error: LuaSocket pushes its NULL message
		} else {
			L.Push(glua.LString(lsStrerror(unix.Errno(n))))
		}
	}
	return 1
}

func (h *Host) tcpSetoption(L *glua.LState) int {
	return h.lsSetoption(L, checkAny(L, true), tcpOptions)
}
func (h *Host) tcpGetoption(L *glua.LState) int {
	return h.lsGetoption(L, checkAny(L, true), tcpOptions)
}
func (h *Host) udpSetoption(L *glua.LState) int {
	return h.lsSetoption(L, checkAny(L, false), udpOptions)
}
func (h *Host) udpGetoption(L *glua.LState) int {
	return h.lsGetoption(L, checkAny(L, false), udpOptions)
}
