package lua

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
	"sockplay/sock/dns"
)

// The dns module: the bindings of sock/dns. Resolve as getaddrinfo does,
// query one server as dig does, serve a zone or a Lua handler
// (dns_server.go). The queries' sockets are the calling task's, so fds(),
// the trace and Ctrl-C see them like any other.

// ResolverConfig says where the resolver reads the name-service rules
// (resolv.conf, the hosts file, the servers' port).
type ResolverConfig = dns.Config

// Resolver turns a host name into addresses of one family (ipv6 true:
// AAAA, else A), the way getaddrinfo does for a socket of that family.
type Resolver func(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error)

func openDNS(h *Host) {
	h.newModule("dns", "DNS: resolve like getaddrinfo, query like dig, serve a zone or a Lua handler", []fn{
		{"resolve", h.dnsResolve, "dns.resolve(name [, family]) -> {addr, ...} | nil, msg, code  -- the addresses getaddrinfo gives (what sock.connect tries): /etc/hosts, then resolv.conf's servers with its search list and ndots; family \"inet\" or \"inet6\" (default both, IPv4 first)"},
		{"query", h.dnsQuery, "dns.query(name, type [, {server=, port=, tcp=, timeout=, edns=, dnssec=, rd=, class=}]) -> result | nil, msg, code, result  -- one question, as dig asks it; a truncated UDP answer is asked again over TCP; printed, the result reads like dig's output"},
		{"reverse", h.dnsReverse, "dns.reverse(ip [, opts]) -> {name, ...} | nil, msg, code  -- PTR names of an address: /etc/hosts then resolv.conf's servers, or with opts (as dns.query) one server"},
		{"serve", h.dnsServe, "dns.serve{addr=\"127.0.0.1:0\", zone={...} | \"file\", handler=fn(req), origin=, log=} -> server | nil, msg, code  -- an authoritative server on UDP and TCP of one port; server.addr, server.port, server:close()"},
	})
	for kind, render := range map[string]func(*dns.Table) string{dns.KindResult: dns.DigText, dns.KindRecord: dns.RecordLine} {
		h.L.NewTypeMetatable(kind).RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
			L.Push(glua.LString(render(tableFromLua(L.CheckTable(1)))))
			return 1
		}))
	}
	h.openDNSServer()
}

// lookup resolves host for a task as getaddrinfo does: the entry point of
// every binding that takes a host name. Its questions go out on the task's
// own sockets, and a cancelled task raises.
func (h *Host) lookup(L *glua.LState, host string, fam dns.Family) ([]netip.Addr, error) {
	return h.lookupIn(L, h.taskNetns(L), host, fam)
}

// lookupIn is lookup for a socket in namespace ns: in a lab host, the
// lab's names come first, as its hosts file does for programs there.
func (h *Host) lookupIn(L *glua.LState, ns *sock.Netns, host string, fam dns.Family) ([]netip.Addr, error) {
	if addrs, ok := h.labLookup(ns, host, fam); ok {
		return addrs, nil
	}
	var addrs []netip.Addr
	var err error
	if h.res != nil { // the host's own resolver, which does not park
		h.waitWith(L, waitFor("resolve", host), func(ctx context.Context) {
			for _, f := range []dns.Family{dns.IPv4, dns.IPv6} {
				if fam&f != 0 {
					got, ferr := h.res(ctx, host, f == dns.IPv6)
					if addrs = append(addrs, got...); err == nil {
						err = ferr
					}
				}
			}
		})
		if len(addrs) > 0 {
			err = nil
		}
	} else {
		err = h.sockCall(L, waitFor("resolve", host), func(ctx context.Context) (err error) {
			addrs, err = h.resolver.LookupHost(ctx, host, fam)
			return err
		})
		return addrs, err
	}
	h.checkCancelled(L, err)
	return addrs, err
}

func checkDomainName(L *glua.LState, n int) string {
	name := L.CheckString(n)
	if err := dns.ValidName(name); err != nil {
		L.ArgError(n, err.Error())
	}
	return name
}

func checkType(L *glua.LState, n int) uint16 {
	var t uint16
	var err error
	switch v := L.Get(n).(type) {
	case glua.LNumber:
		t, err = dns.TypeNumber(float64(v))
	case glua.LString:
		t, err = dns.ParseType(string(v))
	default:
		err = fmt.Errorf("record type expected, got %s", v.Type())
	}
	if err != nil {
		L.ArgError(n, err.Error())
	}
	if t == dns.TypeAXFR || t == dns.TypeIXFR {
		L.ArgError(n, "zone transfers (AXFR, IXFR) are not supported")
	}
	return t
}

// checkQueryOpts reads dns.query's options table (argument n, nil for
// none): a mistake in it raises.
func checkQueryOpts(L *glua.LState, n int) dns.QueryOptions {
	var t *dns.Table
	switch v := L.Get(n).(type) {
	case *glua.LTable:
		t = tableFromLua(v)
	case *glua.LNilType:
	default:
		L.ArgError(n, "options table expected, got "+v.Type().String())
	}
	o, err := dns.ParseQueryOptions(t)
	if err != nil {
		L.ArgError(n, err.Error())
	}
	return o
}

// ask puts a question to the servers o names (else resolv.conf's) on the
// task's sockets.
func (h *Host) ask(L *glua.LState, o dns.QueryOptions) (*dns.Answer, error) {
	var a *dns.Answer
	q := o.Question
	if addrs, ok := h.labLookup(h.taskNetns(L), o.Host, dns.IPv4); ok && len(addrs) > 0 {
		o.Host = addrs[0].String() // {server = "name"} of a lab host
	}
	err := h.sockCall(L, waitFor("dns", dns.TypeName(q.Type)+" "+dns.Fqdn(q.Name)), func(ctx context.Context) error {
		servers, err := h.resolver.Servers(ctx, o.Host, o.Port)
		if err == nil {
			a, err = dns.Client{Table: h.table, TCP: o.TCP, Timeout: o.Timeout}.Ask(ctx, q, servers)
		}
		return err
	})
	return a, err
}

func (h *Host) dnsQuery(L *glua.LState) int {
	name := checkDomainName(L, 1)
	qtype := checkType(L, 2)
	o := checkQueryOpts(L, 3)
	if a, err := netip.ParseAddr(name); err == nil && qtype == dns.TypePTR {
		name, _ = dns.ReverseName(a.String()) // an address asks for its in-addr.arpa name
	}
	o.Question.Name, o.Question.Type = name, qtype
	a, err := h.ask(L, o)
	if err != nil {
		return pushFail(L, err)
	}
	t := tableToLua(L, a.Table())
	if err := a.Err(); err != nil {
		pushFail(L, err)
		L.Push(t)
		return 4
	}
	L.Push(t)
	return 1
}

func (h *Host) dnsResolve(L *glua.LState) int {
	host := L.CheckString(1)
	fam := dns.AnyFamily
	switch v := L.Get(2).(type) {
	case *glua.LNilType:
	case glua.LString, glua.LNumber:
		switch strings.ToLower(v.String()) {
		case "inet", "ipv4", "ip4", "4", "a":
			fam = dns.IPv4
		case "inet6", "ipv6", "ip6", "6", "aaaa":
			fam = dns.IPv6
		case "any", "unspec", "both":
		default:
			L.ArgError(2, fmt.Sprintf("family must be \"inet\", \"inet6\" or nil, not %q", v.String()))
		}
	default:
		L.ArgError(2, "family expected, got "+v.Type().String())
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil {
		if err := dns.ValidName(host); err != nil {
			L.ArgError(1, err.Error())
		}
	}
	addrs, err := h.lookup(L, host, fam)
	if err != nil {
		return pushFail(L, err)
	}
	out := L.CreateTable(len(addrs), 0)
	for _, a := range addrs {
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
	var names []string
	if L.Get(2) == glua.LNil {
		err = h.sockCall(L, waitFor("reverse", a.String()), func(ctx context.Context) (err error) {
			names, err = h.resolver.LookupAddr(ctx, a)
			return err
		})
	} else {
		o := checkQueryOpts(L, 2)
		o.Question.Name, _ = dns.ReverseName(a.Unmap().String())
		o.Question.Type = dns.TypePTR
		var ans *dns.Answer
		if ans, err = h.ask(L, o); err == nil {
			names, err = ans.PTRNames()
		}
	}
	if err != nil {
		return pushFail(L, err)
	}
	out := L.CreateTable(len(names), 0)
	for _, n := range names {
		out.Append(glua.LString(n))
	}
	L.Push(out)
	return 1
}

// Tables between Lua and sock/dns: plain values both ways, so that no
// binding spells out a message's or a record's fields.

// tableToLua builds the Lua table of a dns.Table; a table of a printable
// kind gets the metatable that prints it.
func tableToLua(L *glua.LState, t *dns.Table) *glua.LTable {
	lt := L.CreateTable(len(t.List), len(t.Fields))
	for _, v := range t.List {
		lt.Append(valueToLua(L, v))
	}
	for k, v := range t.Fields {
		lt.RawSetString(k, valueToLua(L, v))
	}
	if t.Kind != "" {
		L.SetMetatable(lt, L.GetTypeMetatable(t.Kind))
	}
	return lt
}

func valueToLua(L *glua.LState, v any) glua.LValue {
	switch v := v.(type) {
	case string:
		return glua.LString(v)
	case bool:
		return glua.LBool(v)
	case *dns.Table:
		return tableToLua(L, v)
	case float64:
		return glua.LNumber(v)
	case int:
		return glua.LNumber(v)
	case uint8:
		return glua.LNumber(v)
	case uint16:
		return glua.LNumber(v)
	case uint32:
		return glua.LNumber(v)
	}
	return glua.LNil
}

// maxTableDepth bounds how deep tableFromLua follows nested tables: a
// table that holds itself must not recurse for ever.
const maxTableDepth = 16

// tableFromLua reads a Lua table as a dns.Table.
func tableFromLua(lt *glua.LTable) *dns.Table { return readTable(lt, 0) }

func readTable(lt *glua.LTable, depth int) *dns.Table {
	t := dns.NewTable("")
	n := lt.Len()
	for i := 1; i <= n; i++ {
		t.List = append(t.List, valueFromLua(lt.RawGetInt(i), depth))
	}
	lt.ForEach(func(k, v glua.LValue) {
		switch k := k.(type) {
		case glua.LString:
			t.Fields[string(k)] = valueFromLua(v, depth)
		case glua.LNumber:
			if i := int(k); float64(i) == float64(k) && i >= 1 && i <= n {
				return
			}
			t.Other = append(t.Other, k.String())
		default:
			t.Other = append(t.Other, k.String())
		}
	})
	return t
}

func valueFromLua(v glua.LValue, depth int) any {
	switch v := v.(type) {
	case *glua.LNilType:
		return nil
	case glua.LString:
		return string(v)
	case glua.LNumber:
		return float64(v)
	case glua.LBool:
		return bool(v)
	case *glua.LTable:
		if depth >= maxTableDepth {
			return dns.Foreign("table nested too deep")
		}
		return readTable(v, depth+1)
	}
	return dns.Foreign(v.Type().String())
}
