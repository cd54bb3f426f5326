package dns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sockplay/internal/leakcheck"
	"sockplay/internal/testpeer"
	"sockplay/sock"
)

// The resolver and the exchange against dnsmasq, without Lua: every
// socket shows in the trace, and none is left open.

// zoneHosts is dnsmasq's data: hosts-file names, and 60 addresses for
// big.test so that its answer does not fit in 512 bytes.
func zoneHosts() string {
	var b strings.Builder
	b.WriteString("127.0.0.5 www.test\n::5 www.test\n127.0.0.1 conn.test\n127.0.0.7 x.bar.test\n")
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&b, "10.0.1.%d big.test\n", i)
	}
	return b.String()
}

func startDnsmasq(t *testing.T) netip.AddrPort {
	port := testpeer.Dnsmasq(t, zoneHosts(), "--txt-record=txt.test,hello world")
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
}

// env is a table with a recording tracer, checked for leaks at the end.
type env struct {
	t   *testing.T
	tbl *sock.Table
	ctx context.Context

	mu     sync.Mutex
	events []sock.Event
}

func newEnv(t *testing.T) *env {
	base := leakcheck.Take()
	e := &env{t: t, tbl: sock.NewTable(), ctx: sock.WithOwner(context.Background(), "tester")}
	e.tbl.SetTracer(func(ev sock.Event) {
		e.mu.Lock()
		e.events = append(e.events, ev)
		e.mu.Unlock()
	})
	t.Cleanup(func() {
		if n := e.tbl.Len(); n != 0 {
			t.Errorf("%d sockets left open in the table", n)
		}
		e.tbl.SetTracer(nil)
		e.tbl.CloseAll()
		base.Check(t, 5*time.Second)
	})
	return e
}

var (
	traceFD   = regexp.MustCompile(`\b\d+<(TCP|UDP)(v6)?>`)
	traceID   = regexp.MustCompile(`\{\d+`)
	traceSock = regexp.MustCompile(`^socket\((\w+)\) = \d+`)
)

// trace returns the calls traced so far, with fds, ids and the server's
// port made fixed words, and forgets them.
func (e *env) trace(server netip.AddrPort) []string {
	e.mu.Lock()
	evs := e.events
	e.events = nil
	e.mu.Unlock()
	var out []string
	for _, ev := range evs {
		if ev.Owner != "tester" {
			e.t.Errorf("%s: owner %q, want the caller's", ev, ev.Owner)
		}
		line := ev.String()
		line = traceFD.ReplaceAllString(line, "FD<$1$2>")
		line = traceID.ReplaceAllString(line, "{ID")
		line = traceSock.ReplaceAllString(line, "socket($1) = FD")
		line = strings.ReplaceAll(line, server.String(), "SERVER")
		out = append(out, line)
	}
	return out
}

func wantTrace(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trace:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestAskDnsmasq(t *testing.T) {
	server := startDnsmasq(t)
	e := newEnv(t)
	c := Client{Table: e.tbl, Timeout: 5 * time.Second}
	a, err := c.Ask(e.ctx, Question{Name: "www.test", Type: TypeA, RD: true}, []netip.AddrPort{server})
	if err != nil {
		t.Fatal(err)
	}
	if a.Transport != "udp" || a.TruncatedRetry || a.Server != server || len(a.Msg.Answer) != 1 || a.Err() != nil {
		t.Fatalf("answer %+v\n%s", a, a.Msg)
	}
	if addr := RecordTable(a.Msg.Answer[0]).Get("address"); addr != "127.0.0.5" {
		t.Errorf("address %v", addr)
	}
	wantTrace(t, e.trace(server),
		"socket(udp) = FD",
		"connect(FD<UDP>, SERVER) = 0",
		"sendto(FD<UDP>, {ID+ A? www.test.}, 26, SERVER) = 26",
		"recvfrom(FD<UDP>, 65535) = 42 {ID* q: A? www.test. 1/0/0 A 127.0.0.5} from SERVER",
		"close(FD<UDP>) = 0",
	)

	nx, err := c.Ask(e.ctx, Question{Name: "nope.test.", Type: TypeA, RD: true}, []netip.AddrPort{server})
	if err != nil {
		t.Fatal(err)
	}
	if code := sock.Code(nx.Err()); code != "NXDOMAIN" || !strings.Contains(sock.Message(nx.Err()), "nope.test. does not exist (NXDOMAIN from "+server.String()+")") {
		t.Errorf("NXDOMAIN: %v", nx.Err())
	}
	if tr := e.trace(server); len(tr) != 5 || !strings.Contains(tr[3], "{ID NXDomain q: A? nope.test. 0/0/0}") {
		t.Errorf("NXDOMAIN trace:\n%s", strings.Join(tr, "\n"))
	}
}

func TestTruncatedAnswerIsAskedAgainOverTCP(t *testing.T) {
	server := startDnsmasq(t)
	e := newEnv(t)
	c := Client{Table: e.tbl, Timeout: 5 * time.Second}
	a, err := c.Ask(e.ctx, Question{Name: "big.test", Type: TypeA, RD: true}, []netip.AddrPort{server})
	if err != nil {
		t.Fatal(err)
	}
	if a.Transport != "tcp" || !a.TruncatedRetry || len(a.Msg.Answer) != 60 || a.Msg.Truncated {
		t.Fatalf("answer over %s, retry %v, %d records", a.Transport, a.TruncatedRetry, len(a.Msg.Answer))
	}
	tr := e.trace(server)
	want := []string{
		"socket(udp) = FD",
		"connect(FD<UDP>, SERVER) = 0",
		"sendto(FD<UDP>, {ID+ A? big.test.}, 26, SERVER) = 26",
		"", // the truncated answer: how many records fit varies
		"socket(tcp) = FD",
		"connect(FD<TCP>, SERVER) = 0",
		"write(FD<TCP>, {ID+ A? big.test.}, 28) = 28",
		"read(FD<TCP>, 2) = 2 {length 986}",
		"read(FD<TCP>, 986) = 986 {ID* q: A? big.test. 60/0/0 A 10.0.1.",
		"close(FD<TCP>) = 0",
		"close(FD<UDP>) = 0",
	}
	if len(tr) != len(want) {
		t.Fatalf("trace:\n\t%s", strings.Join(tr, "\n\t"))
	}
	for i, w := range want {
		if !strings.HasPrefix(tr[i], w) {
			t.Errorf("trace line %d:\n\t%s\nwant it to begin\n\t%s", i+1, tr[i], w)
		}
	}
	if !regexp.MustCompile(`^recvfrom\(FD<UDP>, 65535\) = \d+ \{ID\*\| q: A\? big\.test\. \d+/0/0 A 10\.0\.1\.\d+, A [0-9.]+, A [0-9.]+, \.\.\.\} from SERVER$`).MatchString(tr[3]) {
		t.Errorf("the truncated answer: %s", tr[3])
	}

	// The same over TCP from the start.
	tc, err := Client{Table: e.tbl, TCP: true}.Ask(e.ctx, Question{Name: "big.test", Type: TypeA}, []netip.AddrPort{server})
	if err != nil || tc.TruncatedRetry || tc.Transport != "tcp" || len(tc.Msg.Answer) != 60 {
		t.Fatalf("+tcp: %v %+v", err, tc)
	}
	if tr := e.trace(server); len(tr) != 6 || tr[0] != "socket(tcp) = FD" {
		t.Errorf("+tcp trace:\n\t%s", strings.Join(tr, "\n\t"))
	}
}

// boundUDP is a UDP socket on 127.0.0.1 and a free port, outside the
// table under test.
func boundUDP(t *testing.T) (*sock.Socket, netip.AddrPort) {
	s, err := sock.NewTable().Open(context.Background(), sock.UDP)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	a, _ := s.LocalAddr()
	return s, a
}

// silentServer is a UDP socket that never reads: a server that is down
// and whose machine says nothing.
func silentServer(t *testing.T) netip.AddrPort {
	s, a := boundUDP(t)
	t.Cleanup(func() { s.Close() })
	return a
}

// closedPort is a port on 127.0.0.1 where nothing listens, for UDP or TCP.
func closedPort(t *testing.T) netip.AddrPort {
	s, a := boundUDP(t)
	s.Close()
	return a
}

func TestTimeoutAgainstADeadServer(t *testing.T) {
	dead := silentServer(t)
	e := newEnv(t)
	start := time.Now()
	_, err := Client{Table: e.tbl, Timeout: 200 * time.Millisecond}.Ask(e.ctx, Question{Name: "www.test", Type: TypeA}, []netip.AddrPort{dead})
	if sock.Code(err) != "ETIMEDOUT" || sock.Message(err) != "no answer from "+dead.String()+" over udp within 200ms" {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("gave up after %s", d)
	}
	wantTrace(t, e.trace(dead),
		"socket(udp) = FD",
		"connect(FD<UDP>, SERVER) = 0",
		"sendto(FD<UDP>, {ID A? www.test.}, 26, SERVER) = 26",
		"recvfrom(FD<UDP>, 65535) = -1 ETIMEDOUT (timed out)",
		"close(FD<UDP>) = 0",
	)

	// Nothing on the port at all: the connected socket hears the ICMP
	// error and says so at once, over UDP and over TCP.
	closed := closedPort(t)
	_, err = Client{Table: e.tbl, Timeout: 5 * time.Second}.Ask(e.ctx, Question{Name: "www.test", Type: TypeA}, []netip.AddrPort{closed})
	if sock.Code(err) != "ECONNREFUSED" || !strings.Contains(sock.Message(err), "over udp") {
		t.Errorf("UDP to a closed port: %v", err)
	}
	_, err = Client{Table: e.tbl, TCP: true}.Ask(e.ctx, Question{Name: "www.test", Type: TypeA}, []netip.AddrPort{closed})
	if sock.Code(err) != "ECONNREFUSED" || !strings.Contains(sock.Message(err), "over tcp") {
		t.Errorf("TCP to a closed port: %v", err)
	}
	e.trace(closed)
}

func TestCancelEndsAQuery(t *testing.T) {
	dead := silentServer(t)
	e := newEnv(t)
	ctx, cancel := context.WithCancel(e.ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := Client{Table: e.tbl, Timeout: 30 * time.Second}.Ask(ctx, Question{Name: "www.test", Type: TypeA}, []netip.AddrPort{dead})
	if sock.Code(err) != "ECANCELED" {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the cancel took %s", d)
	}
	e.trace(dead)
}

// writeConf writes a resolv.conf and a hosts file for the resolver.
func writeConf(t *testing.T, server netip.AddrPort, resolv, hosts string) Config {
	dir := t.TempDir()
	rc, hf := filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "hosts")
	if err := os.WriteFile(rc, []byte("nameserver "+server.Addr().String()+"\n"+resolv), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hf, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	return Config{ResolvConf: rc, Hosts: hf, Port: int(server.Port())}
}

// questions are the names a trace's sendto lines asked for.
func questions(trace []string) []string {
	var out []string
	re := regexp.MustCompile(`^sendto\(FD<UDP>, \{ID\+? (A{1,4}\? \S+)\}`)
	for _, l := range trace {
		if m := re.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

func TestResolverSearchListAndNdots(t *testing.T) {
	server := startDnsmasq(t)
	e := newEnv(t)
	r := &Resolver{Table: e.tbl, Config: writeConf(t, server, "search bar.test test\noptions ndots:2 timeout:5 attempts:1\n",
		"10.1.2.3 www.test\n")}
	lookup := func(host string, fam Family) []string {
		t.Helper()
		addrs, err := r.LookupHost(e.ctx, host, fam)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		out := make([]string, len(addrs))
		for i, a := range addrs {
			out[i] = a.String()
		}
		return out
	}
	for _, c := range []struct {
		why, host string
		fam       Family
		addrs     string
		asked     string
	}{
		{"fewer dots than ndots: the search list first, in order", "conn", IPv4, "[127.0.0.1]", "[A? conn.bar.test. A? conn.test.]"},
		{"one dot, fewer than 2: the search list first", "x.bar", IPv4, "[127.0.0.7]", "[A? x.bar.bar.test. A? x.bar.test.]"},
		{"two dots are enough: the name as it is, first", "x.bar.test", IPv4, "[127.0.0.7]", "[A? x.bar.test.]"},
		{"the hosts file for IPv4, DNS for IPv6", "www.test.", AnyFamily, "[10.1.2.3 ::5]", "[AAAA? www.test.]"},
		{"A and AAAA from one socket, as glibc sends them", "conn.test.", AnyFamily, "[127.0.0.1]", "[A? conn.test. AAAA? conn.test.]"},
	} {
		got := lookup(c.host, c.fam)
		tr := e.trace(server)
		if fmt.Sprint(got) != c.addrs || fmt.Sprint(questions(tr)) != c.asked || strings.Count(strings.Join(tr, "\n"), "socket(udp)") != 1 {
			t.Errorf("%s (%s): %v, want %s; trace:\n\t%s", c.host, c.why, got, c.addrs, strings.Join(tr, "\n\t"))
		}
	}
	// A truncated answer is fetched again over TCP, as glibc does.
	if got := lookup("big.test", IPv4); len(got) != 60 {
		t.Errorf("big.test: %d addresses", len(got))
	}
	if tr := e.trace(server); !strings.Contains(strings.Join(tr, "\n"), "socket(tcp)") {
		t.Errorf("no TCP retry:\n\t%s", strings.Join(tr, "\n\t"))
	}

	// The hosts file and localhost need no server: no socket at all.
	if got := lookup("WWW.test", IPv4); fmt.Sprint(got) != "[10.1.2.3]" {
		t.Errorf("www.test from the hosts file: %v", got)
	}
	if got := lookup("localhost", AnyFamily); fmt.Sprint(got) != "[127.0.0.1 ::1]" {
		t.Errorf("localhost: %v", got)
	}
	if tr := e.trace(server); len(tr) != 0 {
		t.Errorf("sockets for names the hosts file has:\n\t%s", strings.Join(tr, "\n\t"))
	}

	for _, c := range []struct {
		host string
		fam  Family
		code string
		msg  string
	}{
		{"nope.test", AnyFamily, "EAI_NONAME", "unknown host nope.test"},
		{"txt.test", IPv4, "EAI_NODATA", "txt.test has no IPv4 address"},
		{"txt.test", AnyFamily, "EAI_NODATA", "txt.test has no address"},
		{"outside.example", IPv4, "EAI_AGAIN", "temporary failure in name resolution for outside.example (the servers answered SERVFAIL or REFUSED)"},
		{"x.invalid", IPv4, "EAI_NONAME", "unknown host x.invalid (.invalid names never exist)"},
		{"a..b", IPv4, "EAI_NONAME", `"a..b" is not a valid host name`},
		{"127.0.0.1", IPv6, "EAI_ADDRFAMILY", "127.0.0.1 is not an address of the family asked for"},
	} {
		_, err := r.LookupHost(e.ctx, c.host, c.fam)
		if sock.Code(err) != c.code || sock.Message(err) != c.msg {
			t.Errorf("%s %v: %v (%s), want %s: %s", c.host, c.fam, err, sock.Code(err), c.code, c.msg)
		}
	}
	e.trace(server)

	names, err := r.LookupAddr(e.ctx, netip.MustParseAddr("127.0.0.5"))
	if err != nil || fmt.Sprint(names) != "[www.test.]" {
		t.Errorf("LookupAddr: %v %v", names, err)
	}
	if got := questions(e.trace(server)); len(got) != 0 {
		// the PTR question: not an address question
	}
	names, err = r.LookupAddr(e.ctx, netip.MustParseAddr("10.1.2.3"))
	if err != nil || fmt.Sprint(names) != "[www.test.]" {
		t.Errorf("LookupAddr from the hosts file: %v %v", names, err)
	}
}

func TestResolverTimesOutAndTriesAgain(t *testing.T) {
	dead := silentServer(t)
	e := newEnv(t)
	r := &Resolver{Table: e.tbl, Config: writeConf(t, dead, "options timeout:1 attempts:2\n", "")}
	_, err := r.LookupHost(e.ctx, "slow.test", IPv4)
	if sock.Code(err) != "EAI_AGAIN" || sock.Message(err) != "temporary failure in name resolution for slow.test: no answer from "+dead.String()+" over udp within 1s" {
		t.Fatalf("err = %v", err)
	}
	tr := e.trace(dead)
	if got := strings.Count(strings.Join(tr, "\n"), "= -1 ETIMEDOUT"); got != 2 {
		t.Errorf("%d timeouts, want one per attempt:\n\t%s", got, strings.Join(tr, "\n\t"))
	}
}

// countingParker counts the waits of the operations made under it.
type countingParker struct{ parks, unparks atomic.Int32 }

func (p *countingParker) Park()   { p.parks.Add(1) }
func (p *countingParker) Unpark() { p.unparks.Add(1) }

func TestWaitsGoThroughTheCallersParker(t *testing.T) {
	dead := silentServer(t)
	e := newEnv(t)
	p := &countingParker{}
	ctx := sock.WithParker(e.ctx, p)
	r := &Resolver{Table: e.tbl, Config: writeConf(t, dead, "options timeout:1 attempts:1\n", "10.1.2.3 www.test\n")}
	if _, err := r.LookupHost(ctx, "www.test", IPv4); err != nil {
		t.Fatal(err)
	}
	if p.parks.Load() != 0 {
		t.Errorf("a name in the hosts file parked %d times", p.parks.Load())
	}
	// A server that does not answer at once: the wait for it parks. (One
	// that answers before recvfrom is called needs no wait at all.)
	if _, err := r.LookupHost(ctx, "slow.test", IPv4); sock.Code(err) != "EAI_AGAIN" {
		t.Fatal(err)
	}
	if n := p.parks.Load(); n != 1 || p.unparks.Load() != 1 {
		t.Errorf("a question without an answer: %d parks, %d unparks; want one wait, ended", n, p.unparks.Load())
	}
	e.trace(dead)
}

func TestParseServer(t *testing.T) {
	for _, c := range []struct {
		in, host string
		port     int
		err      string
	}{
		{"127.0.0.1", "127.0.0.1", 0, ""},
		{"127.0.0.1:5353", "127.0.0.1", 5353, ""},
		{"[::1]:53", "::1", 53, ""},
		{"::1", "::1", 0, ""},
		{"[::1]", "::1", 0, ""},
		{"[::1]x", "", 0, "bad port"},
		{"ns.test", "ns.test", 0, ""},
		{"ns.test:54", "ns.test", 54, ""},
		{"1.2.3.4:x", "", 0, "bad port"},
		{"a..b", "", 0, "malformed domain name"},
	} {
		host, port, err := ParseServer(c.in)
		if host != c.host || port != c.port || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseServer(%q) = %q %d %v", c.in, host, port, err)
		}
	}
}

func TestHostsFileParsing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hosts")
	os.WriteFile(p, []byte(strings.Join([]string{
		"# a comment",
		"127.0.0.1   localhost",
		"::1  localhost ip6-localhost ip6-loopback",
		"192.0.2.7\tweb.example  web   # two names",
		"192.0.2.8 Web.Example.",
		"not-an-address somename",
		"fe80::1%lo linklocal",
		"   ",
		"192.0.2.9", // no name
	}, "\n")), 0o644)
	v4, v6 := lookupHosts(p, "web.example")
	if fmt.Sprint(v4) != "[192.0.2.7 192.0.2.8]" || len(v6) != 0 {
		t.Errorf("web.example: %v %v", v4, v6)
	}
	if v4, _ := lookupHosts(p, "WEB"); fmt.Sprint(v4) != "[192.0.2.7]" {
		t.Errorf("alias web: %v", v4)
	}
	if v4, v6 := lookupHosts(p, "localhost"); fmt.Sprint(v4, v6) != "[127.0.0.1] [::1]" {
		t.Errorf("localhost: %v %v", v4, v6)
	}
	if _, v6 := lookupHosts(p, "linklocal"); fmt.Sprint(v6) != "[fe80::1%lo]" {
		t.Errorf("linklocal: %v", v6)
	}
	if v4, v6 := lookupHosts(p, "somename"); len(v4)+len(v6) != 0 {
		t.Errorf("a line with a bad address counted: %v %v", v4, v6)
	}
	if got := lookupHostsAddr(p, netip.MustParseAddr("192.0.2.7")); fmt.Sprint(got) != "[web.example. web.]" {
		t.Errorf("reverse: %v", got)
	}
	if v4, v6 := lookupHosts(filepath.Join(dir, "missing"), "localhost"); len(v4)+len(v6) != 0 {
		t.Errorf("a missing file has entries: %v %v", v4, v6)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
