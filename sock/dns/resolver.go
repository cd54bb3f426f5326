package dns

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"sockplay/sock"
)

// Config says where the name-service rules are read from. The zero value
// is the system's own files. Tests point it at files of their own and at a
// server on a free port, which resolv.conf cannot name.
type Config struct {
	ResolvConf string // default /etc/resolv.conf
	Hosts      string // default /etc/hosts
	Port       int    // the port of resolv.conf's name servers; default 53
}

func (c Config) withDefaults() Config {
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.Hosts == "" {
		c.Hosts = "/etc/hosts"
	}
	if c.Port == 0 {
		c.Port = 53
	}
	return c
}

// stub is resolv.conf as the stub resolver uses it. The files are read on
// every lookup, as glibc re-reads /etc/hosts: an edit shows at once.
type stub struct {
	*mdns.ClientConfig
	servers []netip.AddrPort
	timeout time.Duration
}

func (c Config) stub() stub {
	c = c.withDefaults()
	cc, err := mdns.ClientConfigFromFile(c.ResolvConf)
	if err != nil {
		// No resolv.conf means what it means to glibc: ask this machine.
		cc = &mdns.ClientConfig{Ndots: 1, Timeout: 5, Attempts: 2}
	}
	sc := stub{ClientConfig: cc, timeout: time.Duration(cc.Timeout) * time.Second}
	for _, s := range cc.Servers {
		if a, err := netip.ParseAddr(s); err == nil {
			sc.servers = append(sc.servers, netip.AddrPortFrom(a, uint16(c.Port)))
		}
	}
	if len(sc.servers) == 0 {
		sc.servers = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(c.Port))}
	}
	if sc.Attempts < 1 {
		sc.Attempts = 1
	}
	if sc.timeout <= 0 {
		sc.timeout = DefaultTimeout
	}
	return sc
}

// Family says which addresses a lookup wants.
type Family uint8

const (
	IPv4      Family = 1 << iota // A records
	IPv6                         // AAAA records
	AnyFamily = IPv4 | IPv6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "IP"
}

// Resolver is the stub resolver of the system's C library, on sockets of
// a sock.Table: the hosts file, then resolv.conf's servers with its search
// list, ndots, timeout and attempts.
type Resolver struct {
	Table  *sock.Table
	Config Config
}

// Servers are where a question goes: host (an address, or a name this
// resolver resolves), or resolv.conf's servers when host is "". port 0
// keeps resolv.conf's port, or 53.
func (r *Resolver) Servers(ctx context.Context, host string, port int) ([]netip.AddrPort, error) {
	if host == "" {
		servers := r.Config.stub().servers
		if port == 0 {
			return servers, nil
		}
		out := make([]netip.AddrPort, len(servers))
		for i, s := range servers {
			out[i] = netip.AddrPortFrom(s.Addr(), uint16(port))
		}
		return out, nil
	}
	if port == 0 {
		port = 53
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a, uint16(port))}, nil
	}
	addrs, err := r.LookupHost(ctx, host, AnyFamily)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		out[i] = netip.AddrPortFrom(a, uint16(port))
	}
	return out, nil
}

// ParseServer splits dig's @server argument: host, host:port or
// [v6]:port. port is 0 when none is given.
func ParseServer(s string) (host string, port int, err error) {
	host = s
	portText := ""
	if rest, ok := strings.CutPrefix(s, "["); ok {
		var found bool
		if host, portText, found = strings.Cut(rest, "]"); !found {
			return "", 0, fmt.Errorf("no ] in %q", s)
		}
		if portText != "" {
			if portText, found = strings.CutPrefix(portText, ":"); !found {
				return "", 0, fmt.Errorf("bad port in %q", s)
			}
		}
	} else if strings.Count(s, ":") == 1 {
		host, portText, _ = strings.Cut(s, ":")
	}
	if portText != "" {
		p, perr := strconv.Atoi(portText)
		if perr != nil || p < 1 || p > 65535 {
			return "", 0, fmt.Errorf("bad port in %q", s)
		}
		port = p
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host, port, nil
	}
	if err := ValidName(host); err != nil {
		return "", 0, err
	}
	return host, port, nil
}

func eaiError(op, code, format string, a ...any) error {
	return &sock.Error{Op: op, Code: code, Msg: fmt.Sprintf(format, a...)}
}

// LookupHost resolves host to its addresses of the families asked for, as
// getaddrinfo does with "hosts: files dns": a numeric address is itself;
// the hosts file answers for each family it has; the rest is asked of
// resolv.conf's servers, one name of the search list after the other in
// ndots order, the A and AAAA questions together. IPv4 addresses come
// first.
func (r *Resolver) LookupHost(ctx context.Context, host string, fam Family) ([]netip.Addr, error) {
	if fam&AnyFamily == 0 {
		fam = AnyFamily
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		a = a.Unmap()
		if (a.Is4() && fam&IPv4 == 0) || (a.Is6() && fam&IPv6 == 0) {
			return nil, eaiError("getaddrinfo", "EAI_ADDRFAMILY", "%s is not an address of the family asked for", host)
		}
		return []netip.Addr{a}, nil
	}
	name := strings.TrimSuffix(host, ".")
	if ValidName(host) != nil || name == "" {
		return nil, eaiError("getaddrinfo", "EAI_NONAME", "%q is not a valid host name", host)
	}
	conf := r.Config.withDefaults()
	v4, v6 := lookupHosts(conf.Hosts, name)
	// RFC 6761: localhost is the loopback even where the hosts file does
	// not say so, and .invalid names do not exist; neither may reach a
	// name server.
	lower := strings.ToLower(name)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		if len(v4) == 0 {
			v4 = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		if len(v6) == 0 {
			v6 = []netip.Addr{netip.IPv6Loopback()}
		}
	}
	var ask []uint16
	if fam&IPv4 != 0 && len(v4) == 0 {
		ask = append(ask, mdns.TypeA)
	}
	if fam&IPv6 != 0 && len(v6) == 0 {
		ask = append(ask, mdns.TypeAAAA)
	}
	var err error
	if len(ask) > 0 {
		var found []netip.Addr
		if lower == "invalid" || strings.HasSuffix(lower, ".invalid") {
			err = eaiError("getaddrinfo", "EAI_NONAME", "unknown host %s (.invalid names never exist)", host)
		} else {
			found, err = r.lookupDNS(ctx, host, fam, ask)
		}
		for _, a := range found {
			if a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
		}
	}
	var out []netip.Addr
	if fam&IPv4 != 0 {
		out = append(out, v4...)
	}
	if fam&IPv6 != 0 {
		out = append(out, v6...)
	}
	if len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// lookupDNS asks the servers for host's addresses of the given types,
// trying the names of the search list in turn; the first name with an
// address ends the search.
func (r *Resolver) lookupDNS(ctx context.Context, host string, fam Family, types []uint16) ([]netip.Addr, error) {
	sc := r.Config.stub()
	sess := newSession(r.Table)
	defer sess.close()
	var nodata, servfail bool
	for _, qname := range sc.NameList(host) {
		qs := make([]*mdns.Msg, len(types))
		for i, t := range types {
			qs[i] = new(mdns.Msg)
			qs[i].SetQuestion(qname, t) // no EDNS, as glibc without "options edns0"
		}
		answers, err := r.ask(ctx, sess, sc, qs)
		if err != nil {
			if sock.Code(err) == "ECANCELED" {
				return nil, err
			}
			return nil, eaiError("getaddrinfo", "EAI_AGAIN", "temporary failure in name resolution for %s: %s", host, sock.Message(err))
		}
		var out []netip.Addr
		for _, m := range answers {
			switch m.Rcode {
			case mdns.RcodeSuccess:
				for _, rr := range m.Answer {
					switch rr := rr.(type) {
					case *mdns.A:
						if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
							out = append(out, a)
						}
					case *mdns.AAAA:
						if a, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
							out = append(out, a)
						}
					}
				}
				nodata = true
			case mdns.RcodeNameError:
			default: // SERVFAIL, REFUSED ... from every server: try the next name
				servfail = true
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	switch {
	case nodata:
		what := fam.String() + " address"
		if fam == AnyFamily {
			what = "address"
		}
		return nil, eaiError("getaddrinfo", "EAI_NODATA", "%s has no %s", host, what)
	case servfail:
		return nil, eaiError("getaddrinfo", "EAI_AGAIN", "temporary failure in name resolution for %s (the servers answered SERVFAIL or REFUSED)", host)
	}
	return nil, eaiError("getaddrinfo", "EAI_NONAME", "unknown host %s", host)
}

// ask puts questions to resolv.conf's servers, each in turn, attempts
// times round, as res_send does: a timeout or a SERVFAIL, REFUSED or
// NOTIMP answer moves the question on to the next server. It returns an
// answer to each question (the last poor one where no server gave a
// better), or the last error when some question got none.
func (r *Resolver) ask(ctx context.Context, sess *session, sc stub, qs []*mdns.Msg) ([]*mdns.Msg, error) {
	out := make([]*mdns.Msg, len(qs))
	done := make([]bool, len(qs))
	var lastErr error
	for range sc.Attempts {
		for _, server := range sc.servers {
			var pending []*mdns.Msg
			var index []int
			for i, q := range qs {
				if !done[i] {
					pending = append(pending, q)
					index = append(index, i)
				}
			}
			if len(pending) == 0 {
				return out, nil
			}
			answers, err := sess.exchange(ctx, pending, server, false, sc.timeout)
			if ctx.Err() != nil {
				return nil, sock.ErrCanceled
			}
			if err != nil {
				lastErr = err
			}
			for j, a := range answers {
				if a == nil {
					continue
				}
				i := index[j]
				out[i] = a.Msg
				switch a.Msg.Rcode {
				case mdns.RcodeServerFailure, mdns.RcodeRefused, mdns.RcodeNotImplemented:
				default:
					done[i] = true
				}
			}
			// A new id for each question asked again: a late answer to this
			// round must not pass for the next one's.
			for i, q := range qs {
				if !done[i] {
					q.Id = mdns.Id()
				}
			}
		}
	}
	for i := range qs {
		if out[i] == nil {
			return nil, lastErr
		}
	}
	return out, nil
}

// LookupAddr is getnameinfo's part: the names the hosts file gives a,
// else the PTR records of resolv.conf's servers.
func (r *Resolver) LookupAddr(ctx context.Context, a netip.Addr) ([]string, error) {
	conf := r.Config.withDefaults()
	a = a.Unmap()
	if names := lookupHostsAddr(conf.Hosts, a); len(names) > 0 {
		return names, nil
	}
	arpa, err := mdns.ReverseAddr(a.String())
	if err != nil {
		return nil, eaiError("getnameinfo", "EAI_NONAME", "%s", err.Error())
	}
	q := new(mdns.Msg)
	q.SetQuestion(arpa, mdns.TypePTR)
	sess := newSession(r.Table)
	defer sess.close()
	answers, err := r.ask(ctx, sess, r.Config.stub(), []*mdns.Msg{q})
	if err != nil {
		if sock.Code(err) == "ECANCELED" {
			return nil, err
		}
		return nil, eaiError("getnameinfo", "EAI_AGAIN", "temporary failure in name resolution for %s: %s", a, sock.Message(err))
	}
	m := answers[0]
	var names []string
	for _, rr := range m.Answer {
		if p, ok := rr.(*mdns.PTR); ok {
			names = append(names, p.Ptr)
		}
	}
	switch {
	case len(names) > 0:
		return names, nil
	case m.Rcode == mdns.RcodeServerFailure || m.Rcode == mdns.RcodeRefused:
		return nil, eaiError("getnameinfo", "EAI_AGAIN", "temporary failure in name resolution for %s (%s)", a, rcodeName(m.Rcode))
	}
	return nil, eaiError("getnameinfo", "EAI_NONAME", "no name for %s", a)
}

// hostsEntry is one line of a hosts file: an address and its names.
type hostsEntry struct {
	addr  netip.Addr
	names []string
}

// readHosts parses a hosts file: "ADDRESS NAME [ALIAS...]" lines, # starts
// a comment, and lines whose address does not parse are skipped, as glibc
// skips them. A missing file has no entries.
func readHosts(path string) []hostsEntry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []hostsEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		a, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		out = append(out, hostsEntry{addr: a.Unmap(), names: fields[1:]})
	}
	return out
}

// lookupHosts returns the addresses the hosts file gives name (any case, a
// trailing dot ignored), in file order, by family.
func lookupHosts(path, name string) (v4, v6 []netip.Addr) {
	name = strings.TrimSuffix(name, ".")
	for _, e := range readHosts(path) {
		for _, n := range e.names {
			if !strings.EqualFold(strings.TrimSuffix(n, "."), name) {
				continue
			}
			if e.addr.Is4() {
				v4 = append(v4, e.addr)
			} else {
				v6 = append(v6, e.addr)
			}
			break
		}
	}
	return v4, v6
}

// lookupHostsAddr returns the names the hosts file gives an address, the
// canonical name of each line first.
func lookupHostsAddr(path string, a netip.Addr) []string {
	var out []string
	for _, e := range readHosts(path) {
		if e.addr.WithZone("") == a.Unmap().WithZone("") {
			for _, n := range e.names {
				out = append(out, mdns.Fqdn(n))
			}
		}
	}
	return out
}

// HostsEntry returns the hosts file's line for name, as gethostbyname
// reports it: the line's canonical name (its first) and the other names.
func (r *Resolver) HostsEntry(name string) (canonical string, aliases []string, ok bool) {
	name = strings.TrimSuffix(name, ".")
	for _, e := range readHosts(r.Config.withDefaults().Hosts) {
		for _, n := range e.names {
			if strings.EqualFold(strings.TrimSuffix(n, "."), name) {
				return e.names[0], e.names[1:], true
			}
		}
	}
	return "", nil, false
}
