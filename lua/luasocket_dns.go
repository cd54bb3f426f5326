package lua

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

// socket.dns: LuaSocket's resolver functions, answered by the host's
// resolver (the hosts file, then resolv.conf's servers, as getaddrinfo).

func (h *Host) lsDNSFuncs() []fn {
	return []fn{
		{"toip", h.lsToip, "socket.dns.toip(address) -> ip, {name, alias, ip} | nil, err  -- the first IPv4 address of a name (or an address's own, once its name is found)"},
		{"tohostname", h.lsTohostname, "socket.dns.tohostname(address) -> name, {name, alias, ip} | nil, err  -- the canonical name of a name or IPv4 address"},
		{"gethostname", lsGethostname, "socket.dns.gethostname() -> name  -- this machine's host name"},
		{"getaddrinfo", h.lsGetaddrinfo, "socket.dns.getaddrinfo(name) -> {{family = \"inet\" | \"inet6\", addr = ...}, ...} | nil, err"},
		{"getnameinfo", h.lsGetnameinfo, "socket.dns.getnameinfo([host [, service]]) -> {names} [, service] | nil, err  -- the names of each of host's addresses, and the service's name"},
	}
}

// hostent is what gethostbyname and gethostbyaddr return.
type hostent struct {
	name    string
	aliases []string
	addrs   []netip.Addr
}

// hostError is how LuaSocket words a failed gethostbyname.
func hostError(err error) string {
	switch sock.Code(err) {
	case "EAI_NODATA":
		return "No address associated with name"
	case "EAI_AGAIN":
		return "Host name lookup failure"
	case "EAI_FAIL":
		return "Unknown server error"
	}
	return "host not found"
}

// lookupHostent is gethostbyaddr for an IPv4 address, gethostbyname
// (IPv4 only) for a name.
func (h *Host) lookupHostent(L *glua.LState, address string) (hostent, error) {
	if a, err := netip.ParseAddr(address); err == nil && a.Is4() {
		names, err := h.lsReverse(L, a)
		if err != nil {
			return hostent{}, err
		}
		return hostent{name: names[0], aliases: names[1:], addrs: []netip.Addr{a}}, nil
	}
	addrs, err := h.lsLookup(L, address, true, false)
	if err != nil {
		return hostent{}, err
	}
	he := hostent{name: address, addrs: addrs}
	if canon, aliases, ok := h.resolver.HostsEntry(address); ok {
		he.name, he.aliases = canon, aliases
	}
	return he, nil
}

// lsReverse finds the names of an address, without trailing dots.
func (h *Host) lsReverse(L *glua.LState, a netip.Addr) ([]string, error) {
	var names []string
	err := h.sockCall(L, waitFor("reverse", a.String()), func(ctx context.Context) (err error) {
		names, err = h.resolver.LookupAddr(ctx, a)
		return err
	})
	if err == nil && len(names) == 0 {
		err = &sock.Error{Op: "getnameinfo", Code: "EAI_NONAME", Msg: "no name for " + a.String()}
	}
	for i, n := range names {
		names[i] = strings.TrimSuffix(n, ".")
	}
	return names, err
}

func pushHostent(L *glua.LState, first string, he hostent) int {
	t := L.NewTable()
	t.RawSetString("name", glua.LString(he.name))
	aliases, ips := L.NewTable(), L.NewTable()
	for _, a := range he.aliases {
		aliases.Append(glua.LString(a))
	}
	for _, a := range he.addrs {
		ips.Append(glua.LString(a.String()))
	}
	t.RawSetString("alias", aliases)
	t.RawSetString("ip", ips)
	L.Push(glua.LString(first))
	L.Push(t)
	return 2
}

func (h *Host) lsToip(L *glua.LState) int {
	he, err := h.lookupHostent(L, L.CheckString(1))
	if err != nil {
		return pushNilErr(L, hostError(err))
	}
	return pushHostent(L, he.addrs[0].String(), he)
}

func (h *Host) lsTohostname(L *glua.LState) int {
	he, err := h.lookupHostent(L, L.CheckString(1))
	if err != nil {
		return pushNilErr(L, hostError(err))
	}
	return pushHostent(L, he.name, he)
}

func lsGethostname(L *glua.LState) int {
	name, err := os.Hostname()
	if err != nil {
		return pushNilErr(L, strerror(err))
	}
	L.Push(glua.LString(name))
	return 1
}

func (h *Host) lsGetaddrinfo(L *glua.LState) int {
	addrs, err := h.lsLookup(L, L.CheckString(1), true, true)
	if err != nil {
		return pushNilErr(L, gaiError(err))
	}
	out := L.NewTable()
	for _, a := range addrs {
		e := L.NewTable()
		if a.Is4() {
			e.RawSetString("family", glua.LString("inet"))
		} else {
			e.RawSetString("family", glua.LString("inet6"))
		}
		e.RawSetString("addr", glua.LString(a.String()))
		out.Append(e)
	}
	L.Push(out)
	return 1
}

func (h *Host) lsGetnameinfo(L *glua.LState) int {
	host, serv := L.Get(1), L.Get(2)
	if host == glua.LNil && serv == glua.LNil {
		L.RaiseError("host and serv cannot be both nil")
	}
	var service string
	if serv != glua.LNil {
		var ok bool
		if service, ok = serviceName(L.CheckString(2)); !ok {
			return pushNilErr(L, gaiError(errService))
		}
	}
	names := L.NewTable()
	if host != glua.LNil {
		addrs, err := h.lsLookup(L, L.CheckString(1), true, true)
		if err != nil {
			return pushNilErr(L, gaiError(err))
		}
		for _, a := range addrs {
			// Without NI_NAMEREQD an address with no name is its own.
			name := a.String()
			if n, err := h.lsReverse(L, a); err == nil {
				name = n[0]
			}
			names.Append(glua.LString(name))
		}
	}
	L.Push(names)
	if serv == glua.LNil {
		return 1
	}
	L.Push(glua.LString(service))
	return 2
}

// serviceName is getnameinfo's service: the /etc/services name of a TCP
// port (or of a name there), else the number. A name the file lacks is
// no service.
func serviceName(s string) (string, bool) {
	port, err := strconv.ParseUint(s, 10, 64)
	numeric := err == nil
	f, err := os.Open("/etc/services")
	if err != nil {
		return s, numeric
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		num, proto, ok := strings.Cut(fields[1], "/")
		if !ok || proto != "tcp" {
			continue
		}
		if numeric && num == strconv.FormatUint(port%65536, 10) {
			return fields[0], true
		}
		if !numeric && (fields[0] == s || slices.Contains(fields[2:], s)) {
			return fields[0], true
		}
	}
	if numeric {
		return strconv.FormatUint(port%65536, 10), true
	}
	return "", false
}
