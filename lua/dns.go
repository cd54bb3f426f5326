package lua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// The dns module: resolve as getaddrinfo does, query one server as dig
// does, and serve a zone or a Lua handler (dns_server.go). miekg/dns does
// the wire format; the sockets and the waiting are ours, so that a query
// honours the task's cancellation and its answer can be shown as dig shows
// it.

const (
	dnsResultType = "dns.result"
	dnsRRType     = "dns.rr"
	dnsServerType = "dns.server"

	defaultQueryTimeout = 5 * time.Second
)

func openDNS(h *Host) {
	h.newModule("dns", "DNS: resolve like getaddrinfo, query like dig, serve a zone or a Lua handler", []fn{
		{"resolve", h.dnsResolve, "dns.resolve(name [, family]) -> {addr, ...} | nil, msg, code  -- the addresses getaddrinfo gives (what sock.connect tries): /etc/hosts, then resolv.conf's servers with its search list and ndots; family \"inet\" or \"inet6\" (default both, IPv4 first)"},
		{"query", h.dnsQuery, "dns.query(name, type [, {server=, port=, tcp=, timeout=, edns=, dnssec=, rd=, class=}]) -> result | nil, msg, code, result  -- one question, as dig asks it; a truncated UDP answer is asked again over TCP; printed, the result reads like dig's output"},
		{"reverse", h.dnsReverse, "dns.reverse(ip [, opts]) -> {name, ...} | nil, msg, code  -- PTR names of an address: /etc/hosts then resolv.conf's servers, or with opts (as dns.query) one server"},
		{"serve", h.dnsServe, "dns.serve{addr=\"127.0.0.1:0\", zone={...} | \"file\", handler=fn(req), origin=, log=} -> server | nil, msg, code  -- an authoritative server on UDP and TCP of one port; server.addr, server.port, server:close()"},
	})
	mt := h.L.NewTypeMetatable(dnsResultType)
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString(digString(L.CheckTable(1))))
		return 1
	}))
	rmt := h.L.NewTypeMetatable(dnsRRType)
	rmt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString(rrLine(L.CheckTable(1))))
		return 1
	}))
	h.openDNSServer()
}

// Argument checks. A malformed name or an unknown type is the script's
// mistake and raises.

func checkDomainName(L *glua.LState, n int) string {
	name := L.CheckString(n)
	if err := validName(name); err != nil {
		L.ArgError(n, err.Error())
	}
	return name
}

func validName(name string) error {
	if name == "" {
		return errors.New("empty domain name")
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++ // an escaped character (\ , \.) is part of its label
		case ' ', '\t', '\r', '\n':
			return fmt.Errorf("malformed domain name %q (white space must be escaped)", name)
		}
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return fmt.Errorf("malformed domain name %q (empty label, label over 63 bytes or name over 255)", name)
	}
	return nil
}

// parseType accepts a type's name in any case ("mx"), TYPEnnn, or a number.
func parseType(v glua.LValue) (uint16, error) {
	switch v := v.(type) {
	case glua.LNumber:
		if float64(v) >= 1 && float64(v) <= 65535 && float64(v) == float64(int(v)) {
			return uint16(v), nil
		}
		return 0, fmt.Errorf("record type %v out of range 1-65535", v)
	case glua.LString:
		s := strings.ToUpper(string(v))
		if t, ok := dns.StringToType[s]; ok {
			return t, nil
		}
		if rest, ok := strings.CutPrefix(s, "TYPE"); ok {
			if n, err := strconv.ParseUint(rest, 10, 16); err == nil && n > 0 {
				return uint16(n), nil
			}
		}
		return 0, fmt.Errorf("unknown record type %q (A, AAAA, CNAME, MX, NS, TXT, SOA, PTR, SRV, CAA, ANY ...)", string(v))
	}
	return 0, fmt.Errorf("record type expected, got %s", v.Type())
}

func checkType(L *glua.LState, n int) uint16 {
	t, err := parseType(L.Get(n))
	if err != nil {
		L.ArgError(n, err.Error())
	}
	if t == dns.TypeAXFR || t == dns.TypeIXFR {
		L.ArgError(n, "zone transfers (AXFR, IXFR) are not supported")
	}
	return t
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func className(c uint16) string {
	if s, ok := dns.ClassToString[c]; ok {
		return s
	}
	return "CLASS" + strconv.Itoa(int(c))
}

func rcodeName(r int) string {
	if s, ok := dns.RcodeToString[r]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(r)
}

// queryOpts are dns.query's options.
type queryOpts struct {
	server  string // host, host:port or [v6]:port; "" = resolv.conf's
	port    int
	tcp     bool
	timeout time.Duration
	edns    int // UDP size to advertise; 0 = no EDNS
	dnssec  bool
	rd      bool
	class   uint16
}

var queryOptNames = []string{"server", "port", "tcp", "timeout", "edns", "dnssec", "rd", "class"}

func checkQueryOpts(L *glua.LState, n int) queryOpts {
	o := queryOpts{timeout: defaultQueryTimeout, rd: true, class: dns.ClassINET}
	switch v := L.Get(n).(type) {
	case *glua.LNilType:
		return o
	case *glua.LTable:
		v.ForEach(func(k, val glua.LValue) {
			key, _ := k.(glua.LString)
			bad := func(want string) {
				L.ArgError(n, fmt.Sprintf("option %q: %s expected, got %s", string(key), want, val.Type()))
			}
			boolean := func() bool {
				b, ok := val.(glua.LBool)
				if !ok {
					bad("boolean")
				}
				return bool(b)
			}
			switch key {
			case "server":
				s, ok := val.(glua.LString)
				if !ok || s == "" {
					bad("host or host:port")
				}
				o.server = string(s)
			case "port":
				p, ok := val.(glua.LNumber)
				if !ok || p < 1 || p > 65535 || float64(p) != float64(int(p)) {
					bad("port 1-65535")
				}
				o.port = int(p)
			case "tcp":
				o.tcp = boolean()
			case "timeout":
				t, ok := val.(glua.LNumber)
				if !ok || t <= 0 {
					bad("positive number of seconds")
				}
				o.timeout = time.Duration(float64(t) * float64(time.Second))
			case "edns":
				switch e := val.(type) {
				case glua.LBool:
					if e {
						o.edns = 1232
					} else {
						o.edns = 0
					}
				case glua.LNumber:
					if e < 512 || e > 65535 {
						L.ArgError(n, fmt.Sprintf("option \"edns\": UDP size %v out of range 512-65535", e))
					}
					o.edns = int(e)
				default:
					bad("UDP size or boolean")
				}
			case "dnssec":
				o.dnssec = boolean()
			case "rd":
				o.rd = boolean()
			case "class":
				s, ok := val.(glua.LString)
				if !ok {
					bad("class name")
				}
				c, known := dns.StringToClass[strings.ToUpper(string(s))]
				if !known {
					L.ArgError(n, fmt.Sprintf("option \"class\": unknown class %q (IN, CH, HS, ANY)", string(s)))
				}
				o.class = c
			default:
				L.ArgError(n, fmt.Sprintf("unknown option %s (known: %s)", luaKey(k), strings.Join(queryOptNames, ", ")))
			}
		})
		if o.dnssec && o.edns == 0 {
			o.edns = 1232
		}
		return o
	default:
		L.ArgError(n, "options table expected, got "+v.Type().String())
	}
	return o
}

func luaKey(k glua.LValue) string {
	if s, ok := k.(glua.LString); ok {
		return strconv.Quote(string(s))
	}
	return k.String()
}

// queryServers lists host:port of the servers a query goes to: the
// server option (a name is resolved first), or resolv.conf's.
func (h *Host) queryServers(L *glua.LState, o queryOpts) ([]string, error) {
	if o.server == "" {
		sc := h.resolverConf.stub()
		if o.port == 0 {
			return sc.servers, nil
		}
		out := make([]string, len(sc.servers))
		for i, s := range sc.servers {
			host, _, _ := net.SplitHostPort(s)
			out[i] = net.JoinHostPort(host, strconv.Itoa(o.port))
		}
		return out, nil
	}
	host, port := o.server, 53
	if o.port != 0 {
		port = o.port
	}
	if hs, ps, err := net.SplitHostPort(o.server); err == nil {
		p, err := strconv.Atoi(ps)
		if err != nil || p < 1 || p > 65535 {
			L.ArgError(3, fmt.Sprintf("option \"server\": bad port in %q", o.server))
		}
		host, port = hs, p
	}
	host = strings.Trim(host, "[]")
	if a, err := netip.ParseAddr(host); err == nil {
		return []string{netip.AddrPortFrom(a, uint16(port)).String()}, nil
	}
	if err := validName(host); err != nil {
		L.ArgError(3, "option \"server\": "+err.Error())
	}
	addrs, err := h.resolve(L, sock.UDP, host, port)
	if err != nil && sock.Code(err) != "ECANCELED" {
		addrs, err = h.resolve(L, sock.UDP6, host, port)
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out, nil
}

// exchangeResult is one answered question.
type exchangeResult struct {
	msg            *dns.Msg
	size           int           // bytes on the wire
	rtt            time.Duration // from sending the question to the answer
	server         string        // host:port that answered
	transport      string        // "udp" or "tcp"
	truncatedRetry bool          // the UDP answer had TC set; this one came over TCP
}

// exchange asks one server, over UDP unless tcp, and asks again over TCP
// when the UDP answer comes back truncated. miekg's client neither retries
// nor falls back, so this is the resolver's and dig's job, done here.
func exchange(ctx context.Context, q *dns.Msg, server string, tcp bool, timeout time.Duration) (*exchangeResult, error) {
	network := "udp"
	if tcp {
		network = "tcp"
	}
	res, err := exchangeOnce(ctx, q, server, network, timeout)
	if err != nil || tcp || !res.msg.Truncated {
		return res, err
	}
	res, err = exchangeOnce(ctx, q, server, "tcp", timeout)
	if err != nil {
		return nil, err
	}
	res.truncatedRetry = true
	return res, nil
}

// exchangeOnce sends q over network and waits at most timeout for the
// answer with its ID; a cancelled ctx (the task killed) wakes it at once.
func exchangeOnce(parent context.Context, q *dns.Msg, server, network string, timeout time.Duration) (*exchangeResult, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, netFailure(parent, err, server, network, timeout)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// A deadline in the past wakes the read; it is set after the one above,
	// so nothing can undo it.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	co := &dns.Conn{Conn: conn, UDPSize: dns.MaxMsgSize}
	start := time.Now()
	if err := co.WriteMsg(q); err != nil {
		return nil, netFailure(parent, err, server, network, timeout)
	}
	for {
		p, err := co.ReadMsgHeader(nil)
		if err != nil {
			return nil, netFailure(parent, err, server, network, timeout)
		}
		m := new(dns.Msg)
		if err := m.Unpack(p); err != nil {
			if network == "udp" && len(p) >= 2 && (int(p[0])<<8|int(p[1])) != int(q.Id) {
				continue // garbage for an earlier question: keep waiting
			}
			return nil, &sock.Error{Op: "dns", Code: "EBADMSG", Msg: fmt.Sprintf("malformed answer from %s over %s: %v", server, network, err)}
		}
		if m.Id != q.Id {
			if network == "udp" {
				continue // a late answer to an earlier question
			}
			return nil, &sock.Error{Op: "dns", Code: "EBADMSG", Msg: fmt.Sprintf("answer from %s has ID %d, the question had %d", server, m.Id, q.Id)}
		}
		return &exchangeResult{msg: m, size: len(p), rtt: time.Since(start), server: server, transport: network}, nil
	}
}

// netFailure names what went wrong talking to a server.
func netFailure(parent context.Context, err error, server, network string, timeout time.Duration) error {
	if parent.Err() != nil {
		return sock.ErrCanceled
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &sock.Error{Op: "dns", Code: "ETIMEDOUT", Msg: fmt.Sprintf("no answer from %s over %s within %s", server, network, timeout)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &sock.Error{Op: "dns", Code: "EOF", Msg: fmt.Sprintf("%s closed the connection before answering (%s)", server, network)}
	}
	code, msg := "EIO", err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		code, msg = unix.ErrnoName(errno), errno.Error()
	}
	return &sock.Error{Op: "dns", Code: code, Msg: fmt.Sprintf("%s (%s over %s)", msg, server, network), Errno: errno}
}

// rcodeFailure is an answer whose status is not NOERROR.
func rcodeFailure(m *dns.Msg, qname, server string) error {
	code := rcodeName(m.Rcode)
	var msg string
	switch m.Rcode {
	case dns.RcodeNameError:
		msg = fmt.Sprintf("%s does not exist (NXDOMAIN from %s)", qname, server)
	case dns.RcodeServerFailure:
		msg = fmt.Sprintf("server failure (SERVFAIL from %s)", server)
	case dns.RcodeRefused:
		msg = fmt.Sprintf("query refused (REFUSED from %s)", server)
	default:
		msg = fmt.Sprintf("%s from %s", code, server)
	}
	return &sock.Error{Op: "dns", Code: code, Msg: msg}
}

func (h *Host) dnsQuery(L *glua.LState) int {
	name := checkDomainName(L, 1)
	qtype := checkType(L, 2)
	o := checkQueryOpts(L, 3)
	if qtype == dns.TypePTR {
		if a, err := netip.ParseAddr(name); err == nil {
			name, _ = dns.ReverseAddr(a.String())
		}
	}
	q := newQuestion(name, qtype, o)
	res, err := h.exchange(L, q, o)
	if err != nil {
		return pushFail(L, err)
	}
	t := resultTable(L, res)
	if res.msg.Rcode != dns.RcodeSuccess {
		pushFail(L, rcodeFailure(res.msg, q.Question[0].Name, res.server))
		L.Push(t)
		return 4
	}
	L.Push(t)
	return 1
}

func newQuestion(name string, qtype uint16, o queryOpts) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.Question[0].Qclass = o.class
	q.RecursionDesired = o.rd
	if o.edns > 0 {
		q.SetEdns0(uint16(o.edns), o.dnssec)
	}
	return q
}

// exchange asks q of the servers o names (else resolv.conf's) and returns
// the first answer.
func (h *Host) exchange(L *glua.LState, q *dns.Msg, o queryOpts) (*exchangeResult, error) {
	servers, err := h.queryServers(L, o)
	if err != nil {
		h.checkCancelled(L, err)
		return nil, err
	}
	return h.ask(L, q, servers, o)
}

// ask tries each server in turn until one answers, with the interpreter
// lock released.
func (h *Host) ask(L *glua.LState, q *dns.Msg, servers []string, o queryOpts) (*exchangeResult, error) {
	var res *exchangeResult
	var err error
	what := fmt.Sprintf("dns %s %s", typeName(q.Question[0].Qtype), q.Question[0].Name)
	h.blocking(L, what, func(ctx context.Context) {
		for _, s := range servers {
			res, err = exchange(ctx, q, s, o.tcp, o.timeout)
			if err == nil || ctx.Err() != nil {
				return
			}
		}
	})
	h.checkCancelled(L, err)
	return res, err
}

func (h *Host) dnsResolve(L *glua.LState) int {
	host := L.CheckString(1)
	want4, want6 := true, true
	switch v := L.Get(2).(type) {
	case *glua.LNilType:
	case glua.LString, glua.LNumber:
		switch strings.ToLower(v.String()) {
		case "inet", "ipv4", "ip4", "4", "a":
			want6 = false
		case "inet6", "ipv6", "ip6", "6", "aaaa":
			want4 = false
		case "any", "unspec", "both":
		default:
			L.ArgError(2, fmt.Sprintf("family must be \"inet\", \"inet6\" or nil, not %q", v.String()))
		}
	default:
		L.ArgError(2, "family expected, got "+v.Type().String())
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		a = a.Unmap()
		if (a.Is4() && !want4) || (a.Is6() && !want6) {
			return pushFail(L, &sock.Error{Op: "getaddrinfo", Code: "EAI_ADDRFAMILY", Msg: fmt.Sprintf("%s is not an address of the family asked for", host)})
		}
		out := L.NewTable()
		out.Append(glua.LString(a.String()))
		L.Push(out)
		return 1
	}
	if err := validName(host); err != nil {
		L.ArgError(1, err.Error())
	}
	var v4, v6 []netip.Addr
	var err4, err6 error
	h.blocking(L, "resolve "+host, func(ctx context.Context) {
		var wg sync.WaitGroup
		if want4 {
			wg.Go(func() { v4, err4 = h.res(ctx, host, false) })
		}
		if want6 {
			wg.Go(func() { v6, err6 = h.res(ctx, host, true) })
		}
		wg.Wait()
	})
	h.checkCancelled(L, err4)
	h.checkCancelled(L, err6)
	if len(v4)+len(v6) == 0 {
		// Of two failures, say the one that tells more: "no IPv4 address"
		// is the least of them.
		err := err4
		switch {
		case !want4:
			err = err6
		case want6 && sock.Code(err4) == "EAI_NODATA" && sock.Code(err6) == "EAI_NODATA":
			err = &sock.Error{Op: "getaddrinfo", Code: "EAI_NODATA", Msg: host + " has no address"}
		case want6 && sock.Code(err4) == "EAI_NODATA":
			err = err6
		}
		if err == nil { // a resolver that found nothing and said nothing
			err = &sock.Error{Op: "getaddrinfo", Code: "EAI_NODATA", Msg: host + " has no address"}
		}
		return pushFail(L, err)
	}
	out := L.NewTable()
	for _, a := range append(v4, v6...) {
		out.Append(glua.LString(a.String()))
	}
	L.Push(out)
	return 1
}

func (h *Host) dnsReverse(L *glua.LState) int {
	s := L.CheckString(1)
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		L.ArgError(1, fmt.Sprintf("%q is not an IPv4 or IPv6 address", s))
	}
	a = a.Unmap()
	out := L.NewTable()
	if L.Get(2) == glua.LNil {
		var names []string
		h.blocking(L, "reverse "+a.String(), func(ctx context.Context) {
			names, err = h.resolverConf.reverseLookup(ctx, a)
		})
		h.checkCancelled(L, err)
		if err != nil {
			return pushFail(L, err)
		}
		for _, n := range names {
			out.Append(glua.LString(n))
		}
		L.Push(out)
		return 1
	}
	o := checkQueryOpts(L, 2)
	arpa, _ := dns.ReverseAddr(a.String())
	q := newQuestion(arpa, dns.TypePTR, o)
	res, err := h.exchange(L, q, o)
	if err != nil {
		return pushFail(L, err)
	}
	if res.msg.Rcode != dns.RcodeSuccess {
		return pushFail(L, rcodeFailure(res.msg, arpa, res.server))
	}
	for _, rr := range res.msg.Answer {
		if p, ok := rr.(*dns.PTR); ok {
			out.Append(glua.LString(p.Ptr))
		}
	}
	if out.Len() == 0 {
		return pushFail(L, &sock.Error{Op: "dns", Code: "NODATA", Msg: fmt.Sprintf("%s has no PTR record (%s)", arpa, res.server)})
	}
	L.Push(out)
	return 1
}

// Messages as Lua tables.

// resultTable is a query's answer with where and how it came.
func resultTable(L *glua.LState, res *exchangeResult) *glua.LTable {
	t := msgToLua(L, res.msg)
	host, port, _ := net.SplitHostPort(res.server)
	t.RawSetString("server", glua.LString(host))
	if p, err := strconv.Atoi(port); err == nil {
		t.RawSetString("port", glua.LNumber(p))
	}
	t.RawSetString("transport", glua.LString(res.transport))
	t.RawSetString("rtt", glua.LNumber(res.rtt.Seconds()))
	t.RawSetString("size", glua.LNumber(res.size))
	if res.truncatedRetry {
		t.RawSetString("truncated_retry", glua.LTrue)
	}
	return t
}

// msgToLua turns a message into a table: id, opcode, rcode, flags, the
// four sections (the OPT record becomes edns, not an additional record).
func msgToLua(L *glua.LState, m *dns.Msg) *glua.LTable {
	t := L.NewTable()
	t.RawSetString("id", glua.LNumber(m.Id))
	op, ok := dns.OpcodeToString[m.Opcode]
	if !ok {
		op = "OPCODE" + strconv.Itoa(m.Opcode)
	}
	t.RawSetString("opcode", glua.LString(op))
	t.RawSetString("rcode", glua.LString(rcodeName(m.Rcode)))
	flags := L.NewTable()
	for _, f := range []struct {
		name string
		on   bool
	}{{"qr", m.Response}, {"aa", m.Authoritative}, {"tc", m.Truncated}, {"rd", m.RecursionDesired}, {"ra", m.RecursionAvailable}, {"ad", m.AuthenticatedData}, {"cd", m.CheckingDisabled}} {
		flags.RawSetString(f.name, glua.LBool(f.on))
	}
	t.RawSetString("flags", flags)
	qs := L.NewTable()
	for _, q := range m.Question {
		qt := L.NewTable()
		qt.RawSetString("name", glua.LString(q.Name))
		qt.RawSetString("type", glua.LString(typeName(q.Qtype)))
		qt.RawSetString("class", glua.LString(className(q.Qclass)))
		qs.Append(qt)
	}
	t.RawSetString("question", qs)
	section := func(rrs []dns.RR, additional bool) *glua.LTable {
		s := L.NewTable()
		for _, rr := range rrs {
			if rr == nil {
				continue
			}
			if opt, ok := rr.(*dns.OPT); ok && additional {
				if t.RawGetString("edns") == glua.LNil {
					t.RawSetString("edns", ednsToLua(L, opt))
				}
				continue
			}
			s.Append(rrToLua(L, rr))
		}
		return s
	}
	t.RawSetString("answer", section(m.Answer, false))
	t.RawSetString("authority", section(m.Ns, false))
	t.RawSetString("additional", section(m.Extra, true))
	L.SetMetatable(t, L.GetTypeMetatable(dnsResultType))
	return t
}

func ednsToLua(L *glua.LState, opt *dns.OPT) *glua.LTable {
	e := L.NewTable()
	e.RawSetString("udp_size", glua.LNumber(opt.UDPSize()))
	e.RawSetString("version", glua.LNumber(opt.Version()))
	e.RawSetString("do", glua.LBool(opt.Do()))
	if len(opt.Option) > 0 {
		opts := L.NewTable()
		for _, o := range opt.Option {
			opts.Append(glua.LString(ednsOptionString(o)))
		}
		e.RawSetString("options", opts)
	}
	return e
}

func ednsOptionString(o dns.EDNS0) string {
	name := "OPTION" + strconv.Itoa(int(o.Option()))
	switch o.(type) {
	case *dns.EDNS0_NSID:
		name = "NSID"
	case *dns.EDNS0_COOKIE:
		name = "COOKIE"
	case *dns.EDNS0_SUBNET:
		name = "CLIENT-SUBNET"
	case *dns.EDNS0_PADDING:
		name = "PADDING"
	case *dns.EDNS0_EDE:
		name = "EDE"
	}
	return name + ": " + o.String()
}

// rdataString is the presentation form of a record's data, without the
// owner, TTL, class and type in front.
func rdataString(rr dns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// rrToLua turns a record into a table: name, type, class, ttl, rdata (the
// presentation form) and the fields of its type.
func rrToLua(L *glua.LState, rr dns.RR) *glua.LTable {
	t := L.NewTable()
	hdr := rr.Header()
	t.RawSetString("name", glua.LString(hdr.Name))
	t.RawSetString("type", glua.LString(typeName(hdr.Rrtype)))
	t.RawSetString("class", glua.LString(className(hdr.Class)))
	t.RawSetString("ttl", glua.LNumber(hdr.Ttl))
	t.RawSetString("rdata", glua.LString(rdataString(rr)))
	str := func(k, v string) { t.RawSetString(k, glua.LString(v)) }
	num := func(k string, v uint64) { t.RawSetString(k, glua.LNumber(v)) }
	switch rr := rr.(type) {
	case *dns.A:
		str("address", ipString(rr.A))
	case *dns.AAAA:
		str("address", ipString(rr.AAAA))
	case *dns.CNAME:
		str("target", rr.Target)
	case *dns.NS:
		str("target", rr.Ns)
	case *dns.PTR:
		str("target", rr.Ptr)
	case *dns.DNAME:
		str("target", rr.Target)
	case *dns.MX:
		num("preference", uint64(rr.Preference))
		str("exchange", rr.Mx)
	case *dns.TXT:
		t.RawSetString("text", textToLua(L, rr.Txt))
	case *dns.SPF:
		t.RawSetString("text", textToLua(L, rr.Txt))
	case *dns.SOA:
		str("mname", rr.Ns)
		str("rname", rr.Mbox)
		num("serial", uint64(rr.Serial))
		num("refresh", uint64(rr.Refresh))
		num("retry", uint64(rr.Retry))
		num("expire", uint64(rr.Expire))
		num("minimum", uint64(rr.Minttl))
	case *dns.SRV:
		num("priority", uint64(rr.Priority))
		num("weight", uint64(rr.Weight))
		num("port", uint64(rr.Port))
		str("target", rr.Target)
	case *dns.CAA:
		num("flag", uint64(rr.Flag))
		str("tag", rr.Tag)
		str("value", rr.Value)
	case *dns.HINFO:
		str("cpu", rr.Cpu)
		str("os", rr.Os)
	case *dns.DS:
		num("key_tag", uint64(rr.KeyTag))
		num("algorithm", uint64(rr.Algorithm))
		num("digest_type", uint64(rr.DigestType))
		str("digest", rr.Digest)
	case *dns.DNSKEY:
		num("flags", uint64(rr.Flags))
		num("protocol", uint64(rr.Protocol))
		num("algorithm", uint64(rr.Algorithm))
		str("public_key", rr.PublicKey)
	case *dns.RRSIG:
		str("type_covered", typeName(rr.TypeCovered))
		num("algorithm", uint64(rr.Algorithm))
		num("labels", uint64(rr.Labels))
		num("original_ttl", uint64(rr.OrigTtl))
		num("expiration", uint64(rr.Expiration))
		num("inception", uint64(rr.Inception))
		num("key_tag", uint64(rr.KeyTag))
		str("signer", rr.SignerName)
		str("signature", rr.Signature)
	case *dns.NSEC:
		str("next", rr.NextDomain)
		types := L.NewTable()
		for _, ty := range rr.TypeBitMap {
			types.Append(glua.LString(typeName(ty)))
		}
		t.RawSetString("types", types)
	}
	L.SetMetatable(t, L.GetTypeMetatable(dnsRRType))
	return t
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

// textToLua gives the character-strings of a TXT record as the bytes they
// are: miekg keeps them escaped for the zone-file form.
func textToLua(L *glua.LState, parts []string) *glua.LTable {
	t := L.NewTable()
	for _, p := range parts {
		t.Append(glua.LString(unescapeText(p)))
	}
	return t
}

// unescapeText undoes the \X and \DDD escapes of a presentation string.
func unescapeText(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

// escapeText is what miekg's packer expects of a raw character-string:
// backslashes escaped, everything else as it is.
func escapeText(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Lua tables as records: a zone table's entries and a handler's answers.

// rrDefaults fill what a record table leaves out.
type rrDefaults struct {
	origin string // relative names are under it; "@" is it
	name   string // the owner when the table has no name
	ttl    uint32
}

// absName makes a name absolute under origin, zone-file style.
func absName(n, origin string) (string, error) {
	if n == "@" {
		return origin, nil
	}
	if err := validName(n); err != nil {
		return "", err
	}
	if dns.IsFqdn(n) {
		return n, nil
	}
	if origin == "" || origin == "." {
		return n + ".", nil
	}
	return n + "." + origin, nil
}

// typeFields are the fields of the types a table can spell out, in
// zone-file order.
var typeFields = map[uint16][]string{
	dns.TypeA:     {"address"},
	dns.TypeAAAA:  {"address"},
	dns.TypeCNAME: {"target"},
	dns.TypeNS:    {"target"},
	dns.TypePTR:   {"target"},
	dns.TypeDNAME: {"target"},
	dns.TypeMX:    {"preference", "exchange"},
	dns.TypeTXT:   {"text"},
	dns.TypeSPF:   {"text"},
	dns.TypeSOA:   {"mname", "rname", "serial", "refresh", "retry", "expire", "minimum"},
	dns.TypeSRV:   {"priority", "weight", "port", "target"},
	dns.TypeCAA:   {"flag", "tag", "value"},
	dns.TypeHINFO: {"cpu", "os"},
}

var commonFields = map[string]bool{"name": true, "type": true, "class": true, "ttl": true, "rdata": true}

// readOnlyFields are fields rrToLua writes for types that tables cannot
// spell out; a table carrying them (a record from dns.query handed back by
// a handler) is built from its rdata.
var readOnlyFields = map[string]bool{
	"key_tag": true, "algorithm": true, "digest_type": true, "digest": true, "flags": true, "protocol": true,
	"public_key": true, "type_covered": true, "labels": true, "original_ttl": true, "expiration": true,
	"inception": true, "signer": true, "signature": true, "next": true, "types": true,
}

// rrFromLua builds a record from a zone-file line or a table.
func rrFromLua(v glua.LValue, d rrDefaults) (dns.RR, error) {
	if d.origin == "" {
		d.origin = "."
	}
	switch v := v.(type) {
	case glua.LString:
		return parseRRLine(string(v), d)
	case *glua.LTable:
		return rrFromTable(v, d)
	}
	return nil, fmt.Errorf("record expected (a table or a zone-file line), got %s", v.Type())
}

// parseRRLine parses one zone-file line with origin and default TTL.
func parseRRLine(s string, d rrDefaults) (dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(s), d.origin, "")
	zp.SetDefaultTTL(d.ttl)
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("%q: %s", s, strings.TrimPrefix(err.Error(), "dns: "))
	}
	if !ok || rr == nil {
		return nil, fmt.Errorf("%q holds no record", s)
	}
	if _, more := zp.Next(); more {
		return nil, fmt.Errorf("%q holds more than one record", s)
	}
	return rr, nil
}

func rrFromTable(t *glua.LTable, d rrDefaults) (dns.RR, error) {
	var err error
	get := func(k string) glua.LValue { return t.RawGetString(k) }
	str := func(k string) (string, bool) {
		switch v := get(k).(type) {
		case glua.LString:
			return string(v), true
		case glua.LNumber:
			return v.String(), true
		case *glua.LNilType:
			return "", false
		default:
			if err == nil {
				err = fmt.Errorf("field %q: string expected, got %s", k, v.Type())
			}
			return "", false
		}
	}
	typ := get("type")
	if typ == glua.LNil {
		return nil, errors.New(`field "type" missing`)
	}
	rrtype, terr := parseType(typ)
	if terr != nil {
		return nil, fmt.Errorf("field \"type\": %v", terr)
	}
	name := d.name
	if n, ok := str("name"); ok {
		name = n
	}
	if name == "" {
		return nil, errors.New(`field "name" missing`)
	}
	owner, nerr := absName(name, d.origin)
	if nerr != nil {
		return nil, fmt.Errorf("field \"name\": %v", nerr)
	}
	class := uint16(dns.ClassINET)
	if c, ok := str("class"); ok {
		cc, known := dns.StringToClass[strings.ToUpper(c)]
		if !known {
			return nil, fmt.Errorf("field \"class\": unknown class %q", c)
		}
		class = cc
	}
	ttl := d.ttl
	switch v := get("ttl").(type) {
	case *glua.LNilType:
	case glua.LNumber:
		if v < 0 || v > 4294967295 || float64(v) != float64(int64(v)) {
			return nil, fmt.Errorf("field \"ttl\": %v out of range 0-4294967295", v)
		}
		ttl = uint32(v)
	default:
		return nil, fmt.Errorf("field \"ttl\": number expected, got %s", v.Type())
	}
	fields, typed := typeFields[rrtype]
	own := map[string]bool{}
	for _, f := range fields {
		own[f] = true
	}
	hasTyped := false
	t.ForEach(func(k, _ glua.LValue) {
		ks, _ := k.(glua.LString)
		switch key := string(ks); {
		case commonFields[key] && ks != "":
		case own[key]:
			hasTyped = true
		case !typed && readOnlyFields[key]:
			// a record from dns.query handed back: its rdata says it all
		default:
			if err == nil {
				want := "name, type, class, ttl, rdata"
				if typed {
					want += ", " + strings.Join(fields, ", ")
				}
				err = fmt.Errorf("unknown field %s for a %s record (known: %s)", luaKey(k), typeName(rrtype), want)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	hdr := dns.RR_Header{Name: owner, Rrtype: rrtype, Class: class, Ttl: ttl}
	if rdata, ok := str("rdata"); ok && (!typed || !hasTyped) {
		line := fmt.Sprintf("%s %d %s %s %s", owner, ttl, className(class), typeName(rrtype), rdata)
		return parseRRLine(line, d)
	}
	if !typed {
		return nil, fmt.Errorf("field \"rdata\" missing: a %s record is given as rdata (its zone-file form)", typeName(rrtype))
	}
	return buildRR(hdr, t, d.origin)
}

// buildRR makes a record of one of typeFields' types from its fields.
func buildRR(hdr dns.RR_Header, t *glua.LTable, origin string) (dns.RR, error) {
	var err error
	fail := func(format string, a ...any) {
		if err == nil {
			err = fmt.Errorf(format, a...)
		}
	}
	str := func(k string) string {
		switch v := t.RawGetString(k).(type) {
		case glua.LString:
			return string(v)
		case glua.LNumber:
			return v.String()
		case *glua.LNilType:
			fail("field %q missing for a %s record", k, typeName(hdr.Rrtype))
		default:
			fail("field %q: string expected, got %s", k, v.Type())
		}
		return ""
	}
	name := func(k string) string {
		s := str(k)
		if err != nil {
			return ""
		}
		n, nerr := absName(s, origin)
		if nerr != nil {
			fail("field %q: %v", k, nerr)
		}
		return n
	}
	num := func(k string, max uint64, def int64) uint64 {
		switch v := t.RawGetString(k).(type) {
		case glua.LNumber:
			if v < 0 || float64(v) > float64(max) || float64(v) != float64(int64(v)) {
				fail("field %q: %v out of range 0-%d", k, v, max)
				return 0
			}
			return uint64(v)
		case *glua.LNilType:
			if def < 0 {
				fail("field %q missing for a %s record", k, typeName(hdr.Rrtype))
				return 0
			}
			return uint64(def)
		default:
			fail("field %q: number expected, got %s", k, v.Type())
		}
		return 0
	}
	addr := func(want6 bool) net.IP {
		s := str("address")
		if err != nil {
			return nil
		}
		a, perr := netip.ParseAddr(s)
		switch {
		case perr != nil:
			fail("field \"address\": %q is not an IP address", s)
		case want6 && !a.Is6():
			fail("field \"address\": %s is not an IPv6 address (AAAA)", s)
		case !want6 && !a.Is4():
			fail("field \"address\": %s is not an IPv4 address (A)", s)
		default:
			return net.IP(a.AsSlice())
		}
		return nil
	}
	var rr dns.RR
	switch hdr.Rrtype {
	case dns.TypeA:
		rr = &dns.A{Hdr: hdr, A: addr(false)}
	case dns.TypeAAAA:
		rr = &dns.AAAA{Hdr: hdr, AAAA: addr(true)}
	case dns.TypeCNAME:
		rr = &dns.CNAME{Hdr: hdr, Target: name("target")}
	case dns.TypeNS:
		rr = &dns.NS{Hdr: hdr, Ns: name("target")}
	case dns.TypePTR:
		rr = &dns.PTR{Hdr: hdr, Ptr: name("target")}
	case dns.TypeDNAME:
		rr = &dns.DNAME{Hdr: hdr, Target: name("target")}
	case dns.TypeMX:
		rr = &dns.MX{Hdr: hdr, Preference: uint16(num("preference", 65535, -1)), Mx: name("exchange")}
	case dns.TypeTXT, dns.TypeSPF:
		parts := textFromLua(t.RawGetString("text"), fail)
		if hdr.Rrtype == dns.TypeTXT {
			rr = &dns.TXT{Hdr: hdr, Txt: parts}
		} else {
			rr = &dns.SPF{Hdr: hdr, Txt: parts}
		}
	case dns.TypeSOA:
		rr = &dns.SOA{Hdr: hdr, Ns: name("mname"), Mbox: name("rname"),
			Serial: uint32(num("serial", 1<<32-1, 1)), Refresh: uint32(num("refresh", 1<<32-1, 3600)),
			Retry: uint32(num("retry", 1<<32-1, 600)), Expire: uint32(num("expire", 1<<32-1, 86400)),
			Minttl: uint32(num("minimum", 1<<32-1, 60))}
	case dns.TypeSRV:
		rr = &dns.SRV{Hdr: hdr, Priority: uint16(num("priority", 65535, 0)), Weight: uint16(num("weight", 65535, 0)),
			Port: uint16(num("port", 65535, -1)), Target: name("target")}
	case dns.TypeCAA:
		// miekg unpacks the value as raw bytes but packs it as escaped text
		rr = &dns.CAA{Hdr: hdr, Flag: uint8(num("flag", 255, 0)), Tag: str("tag"), Value: escapeText(str("value"))}
	case dns.TypeHINFO:
		rr = &dns.HINFO{Hdr: hdr, Cpu: str("cpu"), Os: str("os")}
	default:
		return nil, fmt.Errorf("no fields known for a %s record", typeName(hdr.Rrtype))
	}
	if err != nil {
		return nil, err
	}
	return rr, nil
}

// textFromLua reads a TXT record's text: one string (cut into 255-byte
// character-strings) or a list of character-strings.
func textFromLua(v glua.LValue, fail func(string, ...any)) []string {
	var parts []string
	add := func(s string) {
		for len(s) > 255 {
			parts = append(parts, escapeText(s[:255]))
			s = s[255:]
		}
		parts = append(parts, escapeText(s))
	}
	switch v := v.(type) {
	case glua.LString:
		add(string(v))
	case *glua.LTable:
		for i := 1; i <= v.Len(); i++ {
			s, ok := v.RawGetInt(i).(glua.LString)
			if !ok {
				fail("field \"text\": item %d: string expected, got %s", i, v.RawGetInt(i).Type())
				return nil
			}
			if len(s) > 255 {
				fail("field \"text\": item %d is %d bytes; a character-string holds at most 255", i, len(s))
				return nil
			}
			parts = append(parts, escapeText(string(s)))
		}
	case *glua.LNilType:
		fail("field \"text\" missing for a TXT record")
	default:
		fail("field \"text\": string or list of strings expected, got %s", v.Type())
	}
	return parts
}

// Printing, as dig prints.

// tabCol is the column the line from lineStart has reached, with tab
// stops every 8.
func tabCol(b *strings.Builder, lineStart int) int {
	col := 0
	s := b.String()[lineStart:]
	for i := 0; i < len(s); i++ {
		if s[i] == '\t' {
			col = (col/8 + 1) * 8
		} else {
			col++
		}
	}
	return col
}

// padColumn writes tabs until the column reaches col, at least one: dig's
// layout of owner, TTL, class and type.
func padColumn(b *strings.Builder, lineStart, col int) {
	for first := true; first || tabCol(b, lineStart) < col; first = false {
		b.WriteByte('\t')
	}
}

func field(t *glua.LTable, k string) string {
	v := t.RawGetString(k)
	if v == glua.LNil {
		return ""
	}
	return v.String()
}

// rrLine is one record as dig prints it.
func rrLine(t *glua.LTable) string {
	var b strings.Builder
	b.WriteString(field(t, "name"))
	padColumn(&b, 0, 24)
	b.WriteString(field(t, "ttl"))
	padColumn(&b, 0, 32)
	class := field(t, "class")
	if class == "" {
		class = "IN"
	}
	b.WriteString(class)
	padColumn(&b, 0, 40)
	b.WriteString(field(t, "type"))
	rdata := field(t, "rdata")
	if rdata == "" {
		if rr, err := rrFromTable(t, rrDefaults{origin: ".", ttl: 0}); err == nil {
			rdata = rdataString(rr)
		}
	}
	if rdata != "" {
		padColumn(&b, 0, 48)
		b.WriteString(rdata)
	}
	return b.String()
}

// digString renders a result table as dig does.
func digString(t *glua.LTable) string {
	var b strings.Builder
	if glua.LVAsBool(t.RawGetString("truncated_retry")) {
		b.WriteString(";; Truncated, retrying in TCP mode.\n")
	}
	list := func(k string) *glua.LTable {
		if l, ok := t.RawGetString(k).(*glua.LTable); ok {
			return l
		}
		return &glua.LTable{}
	}
	edns, hasEDNS := t.RawGetString("edns").(*glua.LTable)
	fmt.Fprintf(&b, ";; ->>HEADER<<- opcode: %s, status: %s, id: %s\n", orDefault(field(t, "opcode"), "QUERY"), orDefault(field(t, "rcode"), "NOERROR"), field(t, "id"))
	var flags []string
	if ft, ok := t.RawGetString("flags").(*glua.LTable); ok {
		for _, f := range []string{"qr", "aa", "tc", "rd", "ra", "ad", "cd"} {
			if glua.LVAsBool(ft.RawGetString(f)) {
				flags = append(flags, f)
			}
		}
	}
	add := 0
	if hasEDNS {
		add = 1
	}
	fmt.Fprintf(&b, ";; flags: %s; QUERY: %d, ANSWER: %d, AUTHORITY: %d, ADDITIONAL: %d\n",
		strings.Join(flags, " "), list("question").Len(), list("answer").Len(), list("authority").Len(), list("additional").Len()+add)
	if hasEDNS {
		eflags := ""
		if glua.LVAsBool(edns.RawGetString("do")) {
			eflags = " do"
		}
		fmt.Fprintf(&b, "\n;; OPT PSEUDOSECTION:\n; EDNS: version: %s, flags:%s; udp: %s\n", orDefault(field(edns, "version"), "0"), eflags, field(edns, "udp_size"))
		if opts, ok := edns.RawGetString("options").(*glua.LTable); ok {
			for i := 1; i <= opts.Len(); i++ {
				fmt.Fprintf(&b, "; %s\n", opts.RawGetInt(i).String())
			}
		}
	} else {
		b.WriteByte('\n')
	}
	b.WriteString(";; QUESTION SECTION:\n")
	qs := list("question")
	for i := 1; i <= qs.Len(); i++ {
		q, ok := qs.RawGetInt(i).(*glua.LTable)
		if !ok {
			continue
		}
		start := b.Len()
		b.WriteString(";" + field(q, "name"))
		padColumn(&b, start, 32)
		b.WriteString(orDefault(field(q, "class"), "IN"))
		padColumn(&b, start, 40)
		b.WriteString(field(q, "type") + "\n")
	}
	for _, s := range []struct{ key, title string }{{"answer", "ANSWER"}, {"authority", "AUTHORITY"}, {"additional", "ADDITIONAL"}} {
		l := list(s.key)
		if l.Len() == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n;; %s SECTION:\n", s.title)
		for i := 1; i <= l.Len(); i++ {
			if rr, ok := l.RawGetInt(i).(*glua.LTable); ok {
				b.WriteString(rrLine(rr) + "\n")
			}
		}
	}
	if v, ok := t.RawGetString("rtt").(glua.LNumber); ok {
		fmt.Fprintf(&b, "\n;; Query time: %d msec\n", int(float64(v)*1000))
	} else {
		b.WriteByte('\n')
	}
	if server := field(t, "server"); server != "" {
		port := orDefault(field(t, "port"), "53")
		fmt.Fprintf(&b, ";; SERVER: %s#%s(%s) (%s)\n", server, port, server, strings.ToUpper(orDefault(field(t, "transport"), "udp")))
	}
	if size := field(t, "size"); size != "" {
		fmt.Fprintf(&b, ";; MSG SIZE  rcvd: %s\n", size)
	}
	return strings.TrimRight(b.String(), "\n")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
