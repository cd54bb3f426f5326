package lua

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"sockplay/sock"
)

// Resolver turns a host name into addresses of one family (ipv6 true: AAAA,
// else A), the way getaddrinfo does for a socket of that family.
type Resolver func(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error)

// ResolverConfig says where the name-service rules are read from. The zero
// value is the system's own files. Tests point it at files of their own and
// at a DNS server on a free port, which resolv.conf cannot name.
type ResolverConfig struct {
	ResolvConf string // default /etc/resolv.conf
	Hosts      string // default /etc/hosts
	Port       int    // the port of resolv.conf's name servers; default 53
}

func (c ResolverConfig) withDefaults() ResolverConfig {
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

// SystemResolver follows the system's rules: /etc/hosts first, then the
// servers of /etc/resolv.conf with its search list and ndots.
func SystemResolver(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error) {
	return ResolverConfig{}.Lookup(ctx, host, ipv6)
}

// stubConfig is resolv.conf as the stub resolver uses it. Both files are
// read on every lookup, as glibc re-reads /etc/hosts: an edit shows at once.
type stubConfig struct {
	*dns.ClientConfig
	servers []string // host:port
	timeout time.Duration
}

func (c ResolverConfig) stub() stubConfig {
	c = c.withDefaults()
	cc, err := dns.ClientConfigFromFile(c.ResolvConf)
	if err != nil {
		// No resolv.conf means what it means to glibc: ask this machine.
		cc = &dns.ClientConfig{Ndots: 1, Timeout: 5, Attempts: 2}
	}
	sc := stubConfig{ClientConfig: cc, timeout: time.Duration(cc.Timeout) * time.Second}
	port := strconv.Itoa(c.Port)
	for _, s := range cc.Servers {
		sc.servers = append(sc.servers, net.JoinHostPort(s, port))
	}
	if len(sc.servers) == 0 {
		sc.servers = []string{net.JoinHostPort("127.0.0.1", port)}
	}
	if sc.Attempts < 1 {
		sc.Attempts = 1
	}
	if sc.timeout <= 0 {
		sc.timeout = 5 * time.Second
	}
	return sc
}

// Lookup resolves host for one family as getaddrinfo does with "hosts:
// files dns": the hosts file, then each name of the search list in ndots
// order, asking resolv.conf's servers in turn.
func (c ResolverConfig) Lookup(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error) {
	c = c.withDefaults()
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	name := strings.TrimSuffix(host, ".")
	if _, ok := dns.IsDomainName(host); !ok || name == "" || strings.ContainsAny(host, " \t\r\n") {
		return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_NONAME", Msg: fmt.Sprintf("%q is not a valid host name", host)}
	}
	v4, v6 := lookupHosts(c.Hosts, name)
	if ipv6 && len(v6) > 0 {
		return v6, nil
	}
	if !ipv6 && len(v4) > 0 {
		return v4, nil
	}
	// RFC 6761: localhost is the loopback even where the hosts file does
	// not say so, and .invalid names do not exist; neither may reach a
	// name server.
	lower := strings.ToLower(name)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		if ipv6 {
			return []netip.Addr{netip.IPv6Loopback()}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	if lower == "invalid" || strings.HasSuffix(lower, ".invalid") {
		return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_NONAME", Msg: "unknown host " + host + " (.invalid names never exist)"}
	}
	qtype := dns.TypeA
	if ipv6 {
		qtype = dns.TypeAAAA
	}
	sc := c.stub()
	var nodata, servfail bool
	for _, qname := range sc.NameList(host) {
		m, err := sc.ask(ctx, qname, qtype)
		if err != nil {
			if ctx.Err() != nil {
				return nil, sock.ErrCanceled
			}
			return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_AGAIN", Msg: fmt.Sprintf("temporary failure in name resolution for %s: %s", host, sock.Message(err))}
		}
		switch m.Rcode {
		case dns.RcodeSuccess:
			var out []netip.Addr
			for _, rr := range m.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					if a, ok := netip.AddrFromSlice(rr.A.To4()); ok && !ipv6 {
						out = append(out, a)
					}
				case *dns.AAAA:
					if a, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok && ipv6 {
						out = append(out, a)
					}
				}
			}
			if len(out) > 0 {
				return out, nil
			}
			nodata = true
		case dns.RcodeNameError:
		default: // SERVFAIL, REFUSED ... from every server: try the next name
			servfail = true
		}
	}
	family := "IPv4"
	if ipv6 {
		family = "IPv6"
	}
	switch {
	case nodata:
		return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_NODATA", Msg: fmt.Sprintf("%s has no %s address", host, family)}
	case servfail:
		return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_AGAIN", Msg: fmt.Sprintf("temporary failure in name resolution for %s (the servers answered SERVFAIL or REFUSED)", host)}
	}
	return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_NONAME", Msg: "unknown host " + host}
}

// ask puts one question to resolv.conf's servers, each in turn, attempts
// times round, as res_send does: a timeout or a SERVFAIL, REFUSED or
// NOTIMP answer moves on to the next server. It returns the last answer
// when no server gave a better one.
func (sc stubConfig) ask(ctx context.Context, qname string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(qname, qtype) // no EDNS, as glibc without "options edns0"
	var last *dns.Msg
	var lastErr error
	for range sc.Attempts {
		for _, server := range sc.servers {
			res, err := exchange(ctx, q, server, false, sc.timeout)
			if ctx.Err() != nil {
				return nil, sock.ErrCanceled
			}
			if err != nil {
				lastErr = err
				continue
			}
			switch res.msg.Rcode {
			case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNotImplemented:
				last = res.msg
				continue
			}
			return res.msg, nil
		}
	}
	if last != nil {
		return last, nil
	}
	return nil, lastErr
}

// reverseLookup is getnameinfo's part: the hosts file, then a PTR question
// to resolv.conf's servers.
func (c ResolverConfig) reverseLookup(ctx context.Context, a netip.Addr) ([]string, error) {
	c = c.withDefaults()
	if names := lookupHostsAddr(c.Hosts, a); len(names) > 0 {
		return names, nil
	}
	arpa, err := dns.ReverseAddr(a.String())
	if err != nil {
		return nil, &sock.Error{Op: "getnameinfo", Code: "EAI_NONAME", Msg: err.Error()}
	}
	m, err := c.stub().ask(ctx, arpa, dns.TypePTR)
	if err != nil {
		if ctx.Err() != nil {
			return nil, sock.ErrCanceled
		}
		return nil, &sock.Error{Op: "getnameinfo", Code: "EAI_AGAIN", Msg: fmt.Sprintf("temporary failure in name resolution for %s: %s", a, sock.Message(err))}
	}
	var names []string
	for _, rr := range m.Answer {
		if p, ok := rr.(*dns.PTR); ok {
			names = append(names, p.Ptr)
		}
	}
	switch {
	case len(names) > 0:
		return names, nil
	case m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused:
		return nil, &sock.Error{Op: "getnameinfo", Code: "EAI_AGAIN", Msg: fmt.Sprintf("temporary failure in name resolution for %s (%s)", a, dns.RcodeToString[m.Rcode])}
	}
	return nil, &sock.Error{Op: "getnameinfo", Code: "EAI_NONAME", Msg: fmt.Sprintf("no name for %s", a)}
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
				out = append(out, dns.Fqdn(n))
			}
		}
	}
	return out
}
