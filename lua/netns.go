package lua

import (
	"context"
	"fmt"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

// sock.netns(): a network namespace of the script's own, where real kernel
// loss can be switched on (nftables) so TCP's retransmissions show. Its
// sockets are ordinary fds in the table; only their loopback is separate.

const netnsType = "sock.netns"

type netnsObj struct{ ns *sock.Netns }

func (h *Host) netnsFuncs() []fn {
	return []fn{
		{"netns", h.luaNetns, "sock.netns() -> ns | nil, msg, code  -- a network namespace with its own loopback (needs root); ns:open(kind) -> fd, ns:loss(p) drops a fraction p of its packets in the kernel (nftables), ns:close()"},
	}
}

func (h *Host) openNetnsType() {
	mt := h.L.NewTypeMetatable(netnsType)
	methods := h.L.NewTable()
	h.addFuncs(methods, []fn{
		{"open", h.netnsOpen, "ns:open(kind) -> fd | nil, msg, code  -- socket(2) inside the namespace: tcp, udp, tcp6 or udp6"},
		{"loss", h.netnsLoss, "ns:loss(p) -> true | nil, msg, code  -- the kernel drops a fraction p (0..1) of the packets arriving in the namespace; 0 stops it"},
		{"close", h.netnsClose, "ns:close() -> true  -- let the namespace go (the kernel removes it when its last socket closes)"},
	})
	mt.RawSetString("__index", h.L.NewFunction(func(L *glua.LState) int {
		o := checkNetns(L, 1)
		switch k := L.CheckString(2); k {
		case "fd":
			L.Push(glua.LNumber(o.ns.FD()))
		default:
			L.Push(methods.RawGetString(k))
		}
		return 1
	}))
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		o := checkNetns(L, 1)
		L.Push(glua.LString(fmt.Sprintf("<netns fd=%d loss=%g%%>", o.ns.FD(), o.ns.Loss()*100)))
		return 1
	}))
}

func checkNetns(L *glua.LState, n int) *netnsObj {
	if ud, ok := L.Get(n).(*glua.LUserData); ok {
		if o, ok := ud.Value.(*netnsObj); ok {
			return o
		}
	}
	L.ArgError(n, "netns expected, got "+L.Get(n).Type().String())
	return nil
}

func (h *Host) luaNetns(L *glua.LState) int {
	ns, err := sock.NewNetns()
	if err != nil {
		return pushFail(L, err)
	}
	h.namespaces = append(h.namespaces, ns)
	ud := L.NewUserData()
	ud.Value = &netnsObj{ns: ns}
	ud.Metatable = L.GetTypeMetatable(netnsType)
	L.Push(ud)
	return 1
}

func (h *Host) netnsOpen(L *glua.LState) int {
	o := checkNetns(L, 1)
	kind, err := sock.ParseKind(L.CheckString(2))
	if err != nil {
		L.ArgError(2, err.Error())
	}
	s, err := h.table.OpenIn(h.taskCtx(L), kind, o.ns)
	if err != nil {
		return pushFail(L, err)
	}
	L.Push(glua.LNumber(s.FD))
	return 1
}

func (h *Host) netnsLoss(L *glua.LState) int {
	o := checkNetns(L, 1)
	p := float64(L.CheckNumber(2))
	if p < 0 || p > 1 {
		L.ArgError(2, fmt.Sprintf("loss must be between 0 and 1, not %g", p))
	}
	var err error
	h.blocking(L, "nftables", func(context.Context) { err = o.ns.SetLoss(p) })
	if err != nil {
		return pushFail(L, err)
	}
	L.Push(glua.LTrue)
	return 1
}

func (h *Host) netnsClose(L *glua.LState) int {
	o := checkNetns(L, 1)
	if err := o.ns.Close(); err != nil {
		return pushFail(L, err)
	}
	L.Push(glua.LTrue)
	return 1
}
