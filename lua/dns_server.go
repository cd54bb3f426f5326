package lua

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

// dns.serve: an authoritative server on a UDP and a TCP socket of one port.
// The sockets come from the host's table, so fds() shows them and the trace
// sees their calls; miekg/dns only packs and unpacks. A running server is a
// task ("dns.serve"): it keeps the process alive as a TCP server does, and
// Ctrl-C or kill ends it. A Lua handler runs as a task of its own for each
// question, so it may block like any task; the goroutines that read the
// sockets never run Lua themselves.

const (
	tcpIdleTimeout  = 10 * time.Second // a TCP client that sends nothing for this long is dropped
	maxTCPConns     = 256
	maxHandlerTasks = 64 // UDP questions in the handler at once; more are dropped, as by a busy server
	defaultZoneTTL  = 3600
)

type dnsServer struct {
	h       *Host
	addr    netip.AddrPort
	udp     *sock.Socket
	tcp     *sock.Socket
	zone    *zone           // nil: only the handler answers
	handler *glua.LFunction // nil: only the zone answers
	log     bool
	failed  bool // the sockets could not be opened; the task ends at once

	task    *Task
	ctx     context.Context // ends when the server stops
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the reading goroutines and their questions
	closed  atomic.Bool
	queries atomic.Uint64
	inLua   chan struct{} // a semaphore for handler tasks answering UDP

	mu    sync.Mutex
	conns map[*sock.Socket]struct{}
}

var serveOptNames = []string{"addr", "host", "port", "zone", "origin", "ttl", "handler", "log"}

func (h *Host) openDNSServer() {
	mt := h.L.NewTypeMetatable(dnsServerType)
	methods := h.L.NewTable()
	h.addFuncs(methods, []fn{
		{"close", h.dnsServerClose, "server:close() -> true  -- stop answering and close the server's sockets"},
		{"stop", h.dnsServerClose, "server:stop() -> true  -- the same as server:close()"},
	})
	mt.RawSetString("__index", h.L.NewFunction(func(L *glua.LState) int {
		srv := checkDNSServer(L, 1)
		switch k := L.CheckString(2); k {
		case "addr":
			L.Push(glua.LString(srv.addr.String()))
		case "host":
			L.Push(glua.LString(srv.addr.Addr().String()))
		case "port":
			L.Push(glua.LNumber(srv.addr.Port()))
		case "udp_fd":
			L.Push(glua.LNumber(srv.udp.FD))
		case "tcp_fd":
			L.Push(glua.LNumber(srv.tcp.FD))
		case "queries":
			L.Push(glua.LNumber(srv.queries.Load()))
		case "closed":
			L.Push(glua.LBool(srv.closed.Load()))
		case "task":
			L.Push(h.taskValue(L, srv.task))
		default:
			L.Push(methods.RawGetString(k))
		}
		return 1
	}))
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		srv := checkDNSServer(L, 1)
		if srv.closed.Load() {
			L.Push(glua.LString(fmt.Sprintf("<dns server %s closed, %d queries>", srv.addr, srv.queries.Load())))
		} else {
			L.Push(glua.LString(fmt.Sprintf("<dns server %s udp fd=%d tcp fd=%d, %d queries>", srv.addr, srv.udp.FD, srv.tcp.FD, srv.queries.Load())))
		}
		return 1
	}))
}

func checkDNSServer(L *glua.LState, n int) *dnsServer {
	if ud, ok := L.Get(n).(*glua.LUserData); ok {
		if srv, ok := ud.Value.(*dnsServer); ok {
			return srv
		}
	}
	L.ArgError(n, "dns server expected, got "+L.Get(n).Type().String())
	return nil
}

func (h *Host) dnsServerClose(L *glua.LState) int {
	checkDNSServer(L, 1).stop()
	L.Push(glua.LTrue)
	return 1
}

func (h *Host) dnsServe(L *glua.LState) int {
	opts := L.CheckTable(1)
	host, port := "127.0.0.1", 0
	var zoneArg glua.LValue = glua.LNil
	var handler *glua.LFunction
	origin, hasOrigin := "", false
	ttl := uint32(defaultZoneTTL)
	logQueries := false
	var addrSet, hostSet bool
	opts.ForEach(func(k, v glua.LValue) {
		key, _ := k.(glua.LString)
		bad := func(want string) {
			L.ArgError(1, fmt.Sprintf("option %q: %s expected, got %s", string(key), want, v.Type()))
		}
		switch key {
		case "addr":
			s, ok := v.(glua.LString)
			if !ok {
				bad("\"host:port\"")
			}
			h, p, err := net.SplitHostPort(string(s))
			if err != nil {
				h, p = string(s), "53"
			}
			pn, err := strconv.Atoi(p)
			if err != nil || pn < 0 || pn > 65535 {
				L.ArgError(1, fmt.Sprintf("option \"addr\": bad port in %q", string(s)))
			}
			host, port, addrSet = h, pn, true
		case "host":
			s, ok := v.(glua.LString)
			if !ok {
				bad("host")
			}
			host, hostSet = string(s), true
		case "port":
			p, ok := v.(glua.LNumber)
			if !ok || p < 0 || p > 65535 || float64(p) != float64(int(p)) {
				bad("port 0-65535")
			}
			port = int(p)
			hostSet = true
		case "zone":
			switch v.(type) {
			case glua.LString, *glua.LTable:
				zoneArg = v
			default:
				bad("zone table or zone file name")
			}
		case "origin":
			s, ok := v.(glua.LString)
			if !ok {
				bad("domain name")
			}
			if err := validName(string(s)); err != nil {
				L.ArgError(1, "option \"origin\": "+err.Error())
			}
			origin, hasOrigin = dns.Fqdn(string(s)), true
		case "ttl":
			t, ok := v.(glua.LNumber)
			if !ok || t < 0 || t > 2147483647 {
				bad("TTL in seconds")
			}
			ttl = uint32(t)
		case "handler":
			f, ok := v.(*glua.LFunction)
			if !ok {
				bad("function")
			}
			handler = f
		case "log":
			b, ok := v.(glua.LBool)
			if !ok {
				bad("boolean")
			}
			logQueries = bool(b)
		default:
			L.ArgError(1, fmt.Sprintf("unknown option %s (known: %s)", luaKey(k), strings.Join(serveOptNames, ", ")))
		}
	})
	if addrSet && hostSet {
		L.ArgError(1, "give addr or host and port, not both")
	}
	if zoneArg == glua.LNil && handler == nil {
		L.ArgError(1, "a zone or a handler is needed")
	}

	var z *zone
	switch zv := zoneArg.(type) {
	case *glua.LTable:
		var err error
		if z, err = zoneFromTable(zv, origin, hasOrigin, ttl); err != nil {
			L.ArgError(1, "zone: "+err.Error())
		}
	case glua.LString:
		var err error
		if z, err = zoneFromFile(string(zv), origin, ttl); err != nil {
			return pushFail(L, err)
		}
	}

	kind := sock.UDP
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && a.Is6() && !a.Is4In6() {
		kind = sock.UDP6
	}
	addrs, err := h.resolve(L, kind, strings.Trim(host, "[]"), port)
	if err != nil {
		h.checkCancelled(L, err)
		return pushFail(L, err)
	}

	srv := &dnsServer{h: h, zone: z, handler: handler, log: logQueries, conns: map[*sock.Socket]struct{}{}, inLua: make(chan struct{}, maxHandlerTasks)}
	// The task exists before the sockets so that they carry its name in
	// the descriptor table; it starts running when this call returns.
	srv.task = h.startTask(h.ctx, h.L.NewFunction(srv.run), nil, "dns.serve", false)
	srv.ctx, srv.cancel = context.WithCancel(&srv.task.ctx)
	if err := srv.open(addrs[0]); err != nil {
		srv.failed = true
		srv.cancel()
		return pushFail(L, err)
	}
	srv.wg.Add(2)
	go srv.serveUDP()
	go srv.serveTCP()

	ud := L.NewUserData()
	ud.Value = srv
	ud.Metatable = L.GetTypeMetatable(dnsServerType)
	L.Push(ud)
	return 1
}

// open binds the UDP socket, then the TCP one on the port UDP got. With
// port 0 that port may be taken for TCP: then both start over.
func (srv *dnsServer) open(addr netip.AddrPort) error {
	ukind, tkind := sock.UDP, sock.TCP
	if addr.Addr().Is6() {
		ukind, tkind = sock.UDP6, sock.TCP6
	}
	ctx := &srv.task.ctx
	for try := 0; ; try++ {
		u, err := srv.h.table.Open(ctx, ukind)
		if err != nil {
			return err
		}
		if err := u.Bind(addr); err != nil {
			u.Close()
			return err
		}
		local, err := u.LocalAddr()
		if err != nil {
			u.Close()
			return err
		}
		t, err := srv.h.table.Open(ctx, tkind)
		if err != nil {
			u.Close()
			return err
		}
		err = t.SetOption("reuseaddr", 1)
		if err == nil {
			err = t.Bind(local)
		}
		if err == nil {
			err = t.Listen(128)
		}
		if err == nil {
			srv.udp, srv.tcp, srv.addr = u, t, local
			return nil
		}
		u.Close()
		t.Close()
		if addr.Port() != 0 || sock.Code(err) != "EADDRINUSE" || try >= 20 {
			return err
		}
	}
}

// run is the server task: it waits, with the lock released, until the
// server is closed or the task is killed, then waits for every question
// in flight.
func (srv *dnsServer) run(L *glua.LState) int {
	if srv.failed {
		return 0
	}
	srv.h.blocking(L, "serve dns on "+srv.addr.String(), func(context.Context) {
		<-srv.ctx.Done() // a child of the task's context: kill ends it too
		srv.stop()
		srv.wg.Wait()
	})
	return 0
}

// stop closes the sockets, which wakes every goroutine reading them. It
// does not wait: it may run inside a handler that a goroutine waits for.
func (srv *dnsServer) stop() {
	if srv.closed.Swap(true) {
		return
	}
	srv.cancel()
	srv.udp.Close()
	srv.tcp.Close()
	srv.mu.Lock()
	for c := range srv.conns {
		c.Close()
	}
	srv.mu.Unlock()
}

func (srv *dnsServer) serveUDP() {
	defer srv.wg.Done()
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, from, _, err := srv.udp.RecvFrom(srv.ctx, buf)
		if err != nil {
			if srv.ctx.Err() != nil || srv.closed.Load() || sock.Code(err) == "EBADF" {
				return
			}
			continue
		}
		srv.queries.Add(1)
		data := append([]byte(nil), buf[:n]...)
		if srv.handler == nil {
			srv.answerUDP(data, from)
			continue
		}
		select {
		case srv.inLua <- struct{}{}:
		default:
			continue // too many questions in the handler already
		}
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer func() { <-srv.inLua }()
			srv.answerUDP(data, from)
		}()
	}
}

func (srv *dnsServer) answerUDP(data []byte, from netip.AddrPort) {
	if out := srv.respond(data, from, "udp"); out != nil {
		srv.udp.SendTo(srv.ctx, out, from)
	}
}

func (srv *dnsServer) serveTCP() {
	defer srv.wg.Done()
	for {
		c, peer, err := srv.tcp.Accept(srv.ctx)
		if err != nil {
			if srv.ctx.Err() != nil || srv.closed.Load() || sock.Code(err) == "EBADF" {
				return
			}
			continue
		}
		srv.mu.Lock()
		if len(srv.conns) >= maxTCPConns || srv.closed.Load() {
			srv.mu.Unlock()
			c.Close()
			continue
		}
		srv.conns[c] = struct{}{}
		srv.mu.Unlock()
		srv.wg.Add(1)
		go srv.serveConn(c, peer)
	}
}

// serveConn answers the questions of one TCP connection in order, each
// with its two-byte length in front, until the client closes or idles.
func (srv *dnsServer) serveConn(c *sock.Socket, peer netip.AddrPort) {
	defer srv.wg.Done()
	defer func() {
		srv.mu.Lock()
		delete(srv.conns, c)
		srv.mu.Unlock()
		c.Close()
	}()
	c.SetTimeout(tcpIdleTimeout)
	var lenBuf [2]byte
	for {
		if err := readFull(srv.ctx, c, lenBuf[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if err := readFull(srv.ctx, c, msg); err != nil {
			return
		}
		srv.queries.Add(1)
		out := srv.respond(msg, peer, "tcp")
		if out == nil {
			continue
		}
		frame := make([]byte, 2+len(out))
		binary.BigEndian.PutUint16(frame, uint16(len(out)))
		copy(frame[2:], out)
		if _, err := c.Write(srv.ctx, frame); err != nil {
			return
		}
	}
}

func readFull(ctx context.Context, s *sock.Socket, p []byte) error {
	for off := 0; off < len(p); {
		n, err := s.Read(ctx, p[off:])
		if err != nil {
			return err
		}
		off += n
	}
	return nil
}

// respond turns a question into the packed answer, or nil for no answer.
func (srv *dnsServer) respond(data []byte, client netip.AddrPort, transport string) []byte {
	req := new(dns.Msg)
	if err := req.Unpack(data); err != nil {
		if len(data) < 12 || data[2]&0x80 != 0 {
			return nil // not even a header, or an answer: nothing to say
		}
		bad := &dns.Msg{MsgHdr: dns.MsgHdr{Id: binary.BigEndian.Uint16(data), Response: true, Opcode: int(data[2]>>3) & 0xF, Rcode: dns.RcodeFormatError}}
		out, _ := bad.Pack()
		srv.logLine(transport, client, nil, bad)
		return out
	}
	if req.Response {
		return nil
	}
	reply := new(dns.Msg)
	reply.SetReply(req)
	switch {
	case req.Opcode != dns.OpcodeQuery:
		reply.Rcode = dns.RcodeNotImplemented
	case len(req.Question) != 1:
		reply.Rcode = dns.RcodeFormatError
	default:
		answered := false
		if srv.handler != nil {
			r, drop := srv.runHandler(req, client, transport)
			if drop {
				srv.logLine(transport, client, req, nil)
				return nil
			}
			if r != nil {
				reply, answered = r, true
			}
		}
		if !answered && srv.zone != nil {
			srv.zone.answer(req.Question[0], reply)
		} else if !answered {
			reply.Authoritative = true
		}
	}
	opt := req.IsEdns0()
	if opt != nil && reply.IsEdns0() == nil {
		reply.SetEdns0(1232, opt.Do())
	}
	size := dns.MaxMsgSize
	if transport == "udp" {
		// What the client can take: 512 bytes, or what its EDNS0 says.
		size = dns.MinMsgSize
		if opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
	}
	reply.Truncate(size)
	out, err := reply.Pack()
	if err != nil {
		fail := new(dns.Msg)
		fail.SetRcode(req, dns.RcodeServerFailure)
		out, _ = fail.Pack()
		reply = fail
	}
	srv.logLine(transport, client, req, reply)
	return out
}

// logLine prints one line per question when the server was asked to.
func (srv *dnsServer) logLine(transport string, client netip.AddrPort, req, reply *dns.Msg) {
	if !srv.log {
		return
	}
	q := "(no question)"
	if req != nil && len(req.Question) > 0 {
		q = typeName(req.Question[0].Qtype) + " " + req.Question[0].Name
	}
	result := "dropped"
	if reply != nil {
		n := len(reply.Answer)
		result = fmt.Sprintf("%s, %d answer", rcodeName(reply.Rcode), n)
		if n != 1 {
			result += "s"
		}
		if reply.Truncated {
			result += ", truncated"
		}
	}
	srv.h.out.WriteString(fmt.Sprintf("dns %s %s %s -> %s\n", transport, client, q, result))
}

// runHandler runs the Lua handler as a task for one question and waits for
// it. It returns the handler's reply, nil when the handler left the
// question to the zone, or drop when there is to be no answer at all.
func (srv *dnsServer) runHandler(req *dns.Msg, client netip.AddrPort, transport string) (reply *dns.Msg, drop bool) {
	h := srv.h
	h.lock(nil)
	if srv.ctx.Err() != nil {
		h.unlock()
		return nil, true
	}
	var out *dns.Msg
	var dropIt bool
	fn := h.L.NewFunction(func(L *glua.LState) int {
		L.Push(srv.handler)
		L.Push(requestTable(L, req, client, transport))
		L.Call(1, 1)
		ret := L.Get(-1)
		L.Pop(1)
		var err error
		out, dropIt, err = srv.replyFromLua(ret, req)
		if err != nil {
			L.RaiseError("dns handler's reply: %s", err.Error())
		}
		return 0
	})
	t := h.startTask(srv.ctx, fn, nil, "dns handler", false)
	h.unlock()
	<-t.done
	if srv.ctx.Err() != nil {
		return nil, true
	}
	if t.err != nil {
		fail := new(dns.Msg)
		fail.SetRcode(req, dns.RcodeServerFailure)
		return fail, false
	}
	return out, dropIt
}

// requestTable is what a handler gets: the question as a message table
// plus name, type, class, client, client_port and transport.
func requestTable(L *glua.LState, req *dns.Msg, client netip.AddrPort, transport string) *glua.LTable {
	t := msgToLua(L, req)
	q := req.Question[0]
	t.RawSetString("name", glua.LString(q.Name))
	t.RawSetString("type", glua.LString(typeName(q.Qtype)))
	t.RawSetString("class", glua.LString(className(q.Qclass)))
	t.RawSetString("client", glua.LString(client.Addr().String()))
	t.RawSetString("client_port", glua.LNumber(client.Port()))
	t.RawSetString("transport", glua.LString(transport))
	return t
}

var replyFieldNames = []string{"rcode", "answer", "authority", "additional", "aa", "tc", "ra", "ad", "drop"}

// replyFromLua turns a handler's return value into a reply: nil leaves the
// question to the zone (or, with no zone, an empty NOERROR answer).
func (srv *dnsServer) replyFromLua(v glua.LValue, req *dns.Msg) (*dns.Msg, bool, error) {
	t, ok := v.(*glua.LTable)
	if v == glua.LNil {
		return nil, false, nil
	}
	if !ok {
		return nil, false, fmt.Errorf("table or nil expected, got %s", v.Type())
	}
	reply := new(dns.Msg)
	reply.SetReply(req)
	reply.Authoritative = true
	d := rrDefaults{origin: ".", name: req.Question[0].Name, ttl: 60}
	if srv.zone != nil {
		d.origin, d.ttl = srv.zone.origin, srv.zone.ttl
	}
	var err error
	drop := false
	t.ForEach(func(k, val glua.LValue) {
		if err != nil {
			return
		}
		key, _ := k.(glua.LString)
		boolean := func() bool {
			b, ok := val.(glua.LBool)
			if !ok {
				err = fmt.Errorf("field %q: boolean expected, got %s", string(key), val.Type())
			}
			return bool(b)
		}
		switch key {
		case "rcode":
			reply.Rcode, err = parseRcode(val)
		case "answer", "authority", "additional":
			var rrs []dns.RR
			rrs, err = recordList(val, string(key), d)
			switch key {
			case "answer":
				reply.Answer = rrs
			case "authority":
				reply.Ns = rrs
			default:
				reply.Extra = rrs
			}
		case "aa":
			reply.Authoritative = boolean()
		case "tc":
			reply.Truncated = boolean()
		case "ra":
			reply.RecursionAvailable = boolean()
		case "ad":
			reply.AuthenticatedData = boolean()
		case "drop":
			drop = boolean()
		default:
			err = fmt.Errorf("unknown field %s (known: %s)", luaKey(k), strings.Join(replyFieldNames, ", "))
		}
	})
	if err != nil {
		return nil, false, err
	}
	return reply, drop, nil
}

func parseRcode(v glua.LValue) (int, error) {
	switch v := v.(type) {
	case glua.LString:
		if r, ok := dns.StringToRcode[strings.ToUpper(string(v))]; ok {
			return r, nil
		}
		return 0, fmt.Errorf("field \"rcode\": unknown rcode %q (NOERROR, NXDOMAIN, SERVFAIL, REFUSED ...)", string(v))
	case glua.LNumber:
		if v >= 0 && v <= 15 && float64(v) == float64(int(v)) {
			return int(v), nil
		}
		return 0, fmt.Errorf("field \"rcode\": %v out of range 0-15", v)
	}
	return 0, fmt.Errorf("field \"rcode\": name expected, got %s", v.Type())
}

// recordList reads a list of records (tables or zone-file lines).
func recordList(v glua.LValue, what string, d rrDefaults) ([]dns.RR, error) {
	l, ok := v.(*glua.LTable)
	if !ok {
		return nil, fmt.Errorf("field %q: list of records expected, got %s", what, v.Type())
	}
	var out []dns.RR
	for i := 1; i <= l.Len(); i++ {
		rr, err := rrFromLua(l.RawGetInt(i), d)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %v", what, i, err)
		}
		out = append(out, rr)
	}
	return out, nil
}

// Zones.

// zone is the data of one authoritative zone, by owner name.
type zone struct {
	origin string // canonical: lower case, fully qualified
	ttl    uint32
	soa    *dns.SOA
	names  map[string][]dns.RR // canonical owner -> records
	ents   map[string]bool     // names that exist only because names below them do
}

// zoneFromTable reads {origin=, ttl=, "zone-file line", {record table}, ...}.
func zoneFromTable(t *glua.LTable, origin string, hasOrigin bool, ttl uint32) (*zone, error) {
	var err error
	t.ForEach(func(k, v glua.LValue) {
		if err != nil {
			return
		}
		switch k {
		case glua.LString("origin"):
			s, ok := v.(glua.LString)
			if !ok {
				err = fmt.Errorf("origin: domain name expected, got %s", v.Type())
				return
			}
			if verr := validName(string(s)); verr != nil {
				err = fmt.Errorf("origin: %v", verr)
				return
			}
			if !hasOrigin {
				origin, hasOrigin = dns.Fqdn(string(s)), true
			}
		case glua.LString("ttl"):
			n, ok := v.(glua.LNumber)
			if !ok || n < 0 || n > 2147483647 {
				err = fmt.Errorf("ttl: seconds expected, got %s", v.String())
				return
			}
			ttl = uint32(n)
		default:
			if n, ok := k.(glua.LNumber); !ok || n < 1 || float64(n) != float64(int(n)) || int(n) > t.Len() {
				err = fmt.Errorf("unknown key %s: a zone holds origin, ttl and a list of records", luaKey(k))
			}
		}
	})
	if err != nil {
		return nil, err
	}
	d := rrDefaults{origin: origin, ttl: ttl}
	if !hasOrigin {
		d.origin = "."
	}
	var rrs []dns.RR
	for i := 1; i <= t.Len(); i++ {
		rr, err := rrFromLua(t.RawGetInt(i), d)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %v", i, err)
		}
		rrs = append(rrs, rr)
	}
	return newZone(origin, rrs, ttl)
}

// zoneFromFile reads a zone file. A missing file or a syntax error is a
// failure of the world, not of the script.
func zoneFromFile(path, origin string, ttl uint32) (*zone, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &sock.Error{Op: "open", Code: sock.Code(err), Msg: fmt.Sprintf("cannot open zone file %s: %v", path, err)}
	}
	defer f.Close()
	start := origin
	if start == "" {
		start = "."
	}
	zp := dns.NewZoneParser(f, start, path)
	zp.SetDefaultTTL(ttl)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, &sock.Error{Op: "zone", Code: "EINVAL", Msg: strings.TrimPrefix(err.Error(), "dns: ")}
	}
	z, err := newZone(origin, rrs, ttl)
	if err != nil {
		return nil, &sock.Error{Op: "zone", Code: "EINVAL", Msg: fmt.Sprintf("%s: %v", path, err)}
	}
	return z, nil
}

// newZone indexes records. With no origin given the zone's apex is its SOA's
// owner, else the root.
func newZone(origin string, rrs []dns.RR, ttl uint32) (*zone, error) {
	z := &zone{ttl: ttl, names: map[string][]dns.RR{}, ents: map[string]bool{}}
	for _, rr := range rrs {
		if rr.Header().Class != dns.ClassINET {
			return nil, fmt.Errorf("%s: only class IN is served", rr.Header().Name)
		}
		key := dns.CanonicalName(rr.Header().Name)
		z.names[key] = append(z.names[key], rr)
		if soa, ok := rr.(*dns.SOA); ok && z.soa == nil {
			z.soa = soa
		}
	}
	switch {
	case origin != "":
		z.origin = dns.CanonicalName(origin)
	case z.soa != nil:
		z.origin = dns.CanonicalName(z.soa.Hdr.Name)
	default:
		z.origin = "."
	}
	if z.soa != nil && dns.CanonicalName(z.soa.Hdr.Name) != z.origin {
		return nil, fmt.Errorf("the SOA record is for %s, not the origin %s", z.soa.Hdr.Name, z.origin)
	}
	for name := range z.names {
		if !dns.IsSubDomain(z.origin, name) {
			return nil, fmt.Errorf("%s is outside the zone %s", name, z.origin)
		}
		for p := parentName(name); p != "" && p != z.origin && dns.IsSubDomain(z.origin, p); p = parentName(p) {
			if _, ok := z.names[p]; !ok {
				z.ents[p] = true
			}
		}
	}
	return z, nil
}

// parentName is name without its first label; "" above the root.
func parentName(name string) string {
	if name == "." || name == "" {
		return ""
	}
	off, end := dns.NextLabel(name, 0)
	if end || off >= len(name) {
		return "."
	}
	return name[off:]
}

// find returns the records at name: its own, or a wildcard's renamed to
// it. exists is false for a name the zone does not have (NXDOMAIN).
func (z *zone) find(name string) (rrs []dns.RR, exists bool) {
	key := dns.CanonicalName(name)
	if rrs, ok := z.names[key]; ok {
		return rrs, true
	}
	if z.ents[key] {
		return nil, true
	}
	// The closest ancestor that exists decides: its wildcard child, if any,
	// stands for name.
	for p := parentName(key); p != "" && dns.IsSubDomain(z.origin, p); p = parentName(p) {
		if wild, ok := z.names["*."+p]; ok {
			out := make([]dns.RR, len(wild))
			for i, rr := range wild {
				out[i] = dns.Copy(rr)
				out[i].Header().Name = name
			}
			return out, true
		}
		if _, ok := z.names[p]; ok || z.ents[p] {
			break
		}
	}
	return nil, false
}

// answer fills reply for q from the zone: the records, CNAMEs followed
// inside the zone, NXDOMAIN or NODATA with the SOA, and addresses of MX,
// SRV and NS targets as additional records. No delegations.
func (z *zone) answer(q dns.Question, reply *dns.Msg) {
	qname := q.Name
	if !dns.IsSubDomain(z.origin, dns.CanonicalName(qname)) || (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) {
		reply.Rcode = dns.RcodeRefused
		return
	}
	reply.Authoritative = true
	name := qname
	for hops := 0; hops < 8; hops++ {
		rrs, exists := z.find(name)
		if !exists {
			reply.Rcode = dns.RcodeNameError
			break
		}
		var match []dns.RR
		var cname dns.RR
		for _, rr := range rrs {
			t := rr.Header().Rrtype
			if t == q.Qtype || q.Qtype == dns.TypeANY {
				match = append(match, rr)
			}
			if t == dns.TypeCNAME {
				cname = rr
			}
		}
		if len(match) > 0 {
			reply.Answer = append(reply.Answer, match...)
			break
		}
		if cname == nil {
			break // NODATA
		}
		reply.Answer = append(reply.Answer, cname)
		name = cname.(*dns.CNAME).Target
		if !dns.IsSubDomain(z.origin, dns.CanonicalName(name)) {
			break // the client follows it elsewhere
		}
	}
	if len(reply.Answer) == 0 || reply.Rcode == dns.RcodeNameError {
		if z.soa != nil {
			reply.Ns = append(reply.Ns, z.soa)
		}
		return
	}
	seen := map[string]bool{}
	for _, rr := range reply.Answer {
		var target string
		switch rr := rr.(type) {
		case *dns.MX:
			target = rr.Mx
		case *dns.SRV:
			target = rr.Target
		case *dns.NS:
			target = rr.Ns
		default:
			continue
		}
		key := dns.CanonicalName(target)
		if seen[key] || !dns.IsSubDomain(z.origin, key) {
			continue
		}
		seen[key] = true
		for _, a := range z.names[key] {
			if t := a.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
				reply.Extra = append(reply.Extra, a)
			}
		}
	}
}
