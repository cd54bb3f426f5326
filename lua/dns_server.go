package lua

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
	"sockplay/sock/dns"
)

// dns.serve: sock/dns's server, run as a task ("dns.serve") that owns its
// sockets, keeps the process alive as a TCP server does, and ends with
// Ctrl-C or kill. A Lua handler runs as a task of its own for each
// question, so it may block like any task; the goroutines that read the
// sockets never run Lua themselves.

const dnsServerType = "dns.server"

type dnsServer struct {
	srv  *dns.Server
	task *Task
}

func (h *Host) openDNSServer() {
	mt := h.L.NewTypeMetatable(dnsServerType)
	methods := h.L.NewTable()
	h.addFuncs(methods, []fn{
		{"close", h.dnsServerClose, "server:close() -> true  -- stop answering and close the server's sockets"},
		{"stop", h.dnsServerClose, "server:stop() -> true  -- the same as server:close()"},
	})
	mt.RawSetString("__index", h.L.NewFunction(func(L *glua.LState) int {
		s := checkDNSServer(L, 1)
		udp, tcp := s.srv.FDs()
		var v glua.LValue
		switch k := L.CheckString(2); k {
		case "addr":
			v = glua.LString(s.srv.Addr().String())
		case "host":
			v = glua.LString(s.srv.Addr().Addr().String())
		case "port":
			v = glua.LNumber(s.srv.Addr().Port())
		case "udp_fd":
			v = glua.LNumber(udp)
		case "tcp_fd":
			v = glua.LNumber(tcp)
		case "queries":
			v = glua.LNumber(s.srv.Queries())
		case "closed":
			v = glua.LBool(s.srv.Closed())
		case "task":
			v = h.taskValue(L, s.task)
		default:
			v = methods.RawGetString(k)
		}
		L.Push(v)
		return 1
	}))
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		s := checkDNSServer(L, 1)
		udp, tcp := s.srv.FDs()
		if s.srv.Closed() {
			L.Push(glua.LString(fmt.Sprintf("<dns server %s closed, %d queries>", s.srv.Addr(), s.srv.Queries())))
		} else {
			L.Push(glua.LString(fmt.Sprintf("<dns server %s udp fd=%d tcp fd=%d, %d queries>", s.srv.Addr(), udp, tcp, s.srv.Queries())))
		}
		return 1
	}))
}

func checkDNSServer(L *glua.LState, n int) *dnsServer {
	if ud, ok := L.Get(n).(*glua.LUserData); ok {
		if s, ok := ud.Value.(*dnsServer); ok {
			return s
		}
	}
	L.ArgError(n, "dns server expected, got "+L.Get(n).Type().String())
	return nil
}

func (h *Host) dnsServerClose(L *glua.LState) int {
	checkDNSServer(L, 1).srv.Close()
	L.Push(glua.LTrue)
	return 1
}

func (h *Host) dnsServe(L *glua.LState) int {
	opts := L.CheckTable(1)
	var handler *glua.LFunction
	switch v := opts.RawGetString("handler").(type) {
	case *glua.LFunction:
		handler = v
	case *glua.LNilType:
	default:
		L.ArgError(1, "option \"handler\": function expected, got "+v.Type().String())
	}
	t := tableFromLua(opts)
	delete(t.Fields, "handler")
	o, err := dns.ParseServeOptions(t, handler != nil)
	if err != nil {
		L.ArgError(1, err.Error())
	}
	cfg := dns.ServerConfig{Zone: o.Zone}
	if o.ZoneFile != "" {
		if cfg.Zone, err = dns.ZoneFromFile(o.ZoneFile, o.Origin, o.TTL); err != nil {
			return pushFail(L, err)
		}
	}
	if o.Log {
		cfg.Log = func(line string) { h.out.WriteString(line + "\n") }
	}
	// In a lab host the server, and its handler's calls, live there.
	ns := h.taskNetns(L)
	if handler != nil {
		cfg.Handler = h.dnsHandler(handler, ns)
	}
	host := strings.Trim(o.Host, "[]")
	fam := dns.IPv4
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		fam = dns.IPv6
	}
	addrs, err := h.lookup(L, host, fam)
	if err != nil {
		return pushFail(L, err)
	}
	// The task exists before the sockets so that they carry its name in
	// the descriptor table; it starts running when this call returns.
	s := &dnsServer{}
	s.task = h.startTaskIn(ns, h.L.NewFunction(func(L *glua.LState) int {
		if s.srv != nil {
			h.blocking(L, "serve dns on "+s.srv.Addr().String(), func(context.Context) {
				<-s.srv.Done() // its context is the task's: kill ends it too
				s.srv.Wait()
			})
		}
		return 0
	}), nil, "dns.serve")
	if s.srv, err = dns.Serve(&s.task.ctx, h.table, netip.AddrPortFrom(addrs[0], uint16(o.Port)), cfg); err != nil {
		return pushFail(L, err)
	}
	ud := L.NewUserData()
	ud.Value = s
	ud.Metatable = L.GetTypeMetatable(dnsServerType)
	L.Push(ud)
	return 1
}

var errHandlerFailed = errors.New("the handler failed")

// dnsHandler runs fn as a task for each question and waits for it: its
// reply, converted inside the task so that a bad one fails the task (and
// the server answers SERVFAIL) with the error in the task's report.
func (h *Host) dnsHandler(fn *glua.LFunction, ns *sock.Netns) dns.Handler {
	return func(ctx context.Context, req *dns.Request) (*dns.Reply, error) {
		var reply *dns.Reply
		h.lock(nil)
		call := h.L.NewFunction(func(L *glua.LState) int {
			L.Push(fn)
			L.Push(tableToLua(L, req.Table()))
			L.Call(1, 1)
			var t *dns.Table
			switch v := L.Get(-1).(type) {
			case *glua.LTable:
				t = tableFromLua(v)
			case *glua.LNilType:
			default:
				L.RaiseError("dns handler's reply: table or nil expected, got %s", v.Type())
			}
			var err error
			if reply, err = req.Reply(t); err != nil {
				L.RaiseError("dns handler's reply: %s", err.Error())
			}
			return 0
		})
		t := h.startHelper(ctx, call, "dns handler", false)
		t.ctx.netns.Store(ns)
		h.unlock()
		<-t.done
		if t.err != nil {
			return nil, errHandlerFailed
		}
		return reply, nil
	}
}
