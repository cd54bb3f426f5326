package lua

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sockplay/internal/testpeer"
	"sockplay/sock"
)

// The dns module against real peers on 127.0.0.1: dnsmasq answers
// dns.query and dns.resolve, and dig asks dns.serve.

// dnsmasq is a dnsmasq serving the test zone "test." on a free port.
type dnsmasq struct{ port int }

// dnsmasqHosts is the zone: hosts-file names, 60 addresses for big.test so
// that its answer does not fit in 512 bytes.
func dnsmasqHosts() string {
	var b strings.Builder
	b.WriteString("127.0.0.5 www.test\n::5 www.test\n127.0.0.1 conn.test\n")
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&b, "10.0.1.%d big.test\n", i)
	}
	return b.String()
}

func startDnsmasq(t *testing.T) *dnsmasq {
	return &dnsmasq{port: testpeer.Dnsmasq(t, dnsmasqHosts(),
		"--txt-record=txt.test,hello world,second part",
		"--mx-host=test,mail.test,10",
		"--srv-host=_sip._tcp.test,www.test,5060,10,5",
		"--cname=alias.test,www.test",
	)}
}

// resolverConfig points the stub resolver at this dnsmasq with the given
// hosts file lines and resolv.conf lines (a nameserver line is added).
func (d *dnsmasq) resolverConfig(t *testing.T, hostsLines, resolvLines string) ResolverConfig {
	t.Helper()
	dir := t.TempDir()
	rc := filepath.Join(dir, "resolv.conf")
	hf := filepath.Join(dir, "hosts")
	if err := os.WriteFile(rc, []byte("nameserver 127.0.0.1\noptions timeout:5 attempts:1\n"+resolvLines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hf, []byte(hostsLines), 0o644); err != nil {
		t.Fatal(err)
	}
	return ResolverConfig{ResolvConf: rc, Hosts: hf, Port: d.port}
}

// newDNSHost is newTestHost with the resolver's files and port set.
func newDNSHost(t *testing.T, cfg ResolverConfig) (*Host, *syncBuffer) {
	out := &syncBuffer{}
	h := New(Options{Stdin: strings.NewReader(""), Stdout: out, Stderr: out, DNS: cfg})
	h.withLock(func() { openExpect(h) })
	return h, out
}

// runLua runs a chunk (with expect) and reports its failures.
func runLua(t *testing.T, h *Host, out *syncBuffer, src string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vals, err := h.Eval(ctx, "test", src)
	if err != nil {
		t.Fatalf("%s\noutput:\n%s", FormatError(err), out.String())
	}
	for _, f := range h.testFailures() {
		t.Error(f)
	}
	var res []string
	for _, v := range vals {
		res = append(res, v.String())
	}
	return res
}

func TestQueryDnsmasq(t *testing.T) {
	d := startDnsmasq(t)
	base := takeBaseline()
	defer base.check(t)
	h, out := newDNSHost(t, d.resolverConfig(t, "", ""))
	defer h.Close()
	runLua(t, h, out, fmt.Sprintf(`
		local S = {server = "127.0.0.1:%d", timeout = 5}
		local function opts(extra)
		  local o = {server = S.server, timeout = S.timeout}
		  for k, v in pairs(extra or {}) do o[k] = v end
		  return o
		end
		local r = assert(dns.query("www.test", "A", S))
		expect.eq(r.rcode, "NOERROR")
		expect.eq(r.flags.qr, true)
		expect.eq(r.flags.aa, true)
		expect.eq(r.answer[1].address, "127.0.0.5")
		expect.eq(r.server, "127.0.0.1")
		expect.eq(r.port, %d)
		expect.eq(r.transport, "udp")
		expect.eq(dns.query("www.test", "AAAA", S).answer[1].address, "::5")

		-- 60 addresses do not fit in 512 bytes: TC over UDP, then TCP
		local big = assert(dns.query("big.test", "A", S))
		expect.eq(big.truncated_retry, true)
		expect.eq(big.transport, "tcp")
		expect.eq(#big.answer, 60)
		local seen = {}
		for _, a in ipairs(big.answer) do seen[a.address] = true end
		expect.ok(seen["10.0.1.1"] and seen["10.0.1.60"], "every address came")
		-- the same over TCP from the start, and over UDP with a large EDNS0 size
		local t = assert(dns.query("big.test", "A", opts{tcp = true}))
		expect.eq(t.truncated_retry, nil)
		expect.eq(#t.answer, 60)
		local e = assert(dns.query("big.test", "A", opts{edns = 4096}))
		expect.eq(e.transport, "udp")
		expect.eq(#e.answer, 60)
		expect.ok(e.edns ~= nil, "dnsmasq answers EDNS0 with EDNS0")

		local txt = assert(dns.query("txt.test", "TXT", S)).answer[1]
		expect.eq(txt.text[1], "hello world")
		expect.eq(txt.text[2], "second part")
		local mx = assert(dns.query("test", "MX", S)).answer[1]
		expect.eq(mx.preference, 10)
		expect.eq(mx.exchange, "mail.test.")
		local srv = assert(dns.query("_sip._tcp.test", "SRV", S)).answer[1]
		expect.eq(srv.port, 5060)
		expect.eq(srv.priority, 10)
		expect.eq(srv.weight, 5)
		expect.eq(srv.target, "www.test.")
		local cn = assert(dns.query("alias.test", "A", S))
		expect.eq(cn.answer[1].type, "CNAME")
		expect.eq(cn.answer[1].target, "www.test.")
		expect.eq(cn.answer[2].address, "127.0.0.5")
		-- dnsmasq answers PTR from its hosts file
		local ptr = assert(dns.query("127.0.0.5", "PTR", S))
		expect.eq(ptr.answer[1].target, "www.test.")
		local names = assert(dns.reverse("127.0.0.5", S))
		expect.eq(names[1], "www.test.")

		local no, msg, code, res = dns.query("nope.test", "A", S)
		expect.eq(no, nil)
		expect.eq(code, "NXDOMAIN")
		expect.match(msg, "nope%%.test%%. does not exist")
		expect.eq(res.rcode, "NXDOMAIN")
		-- outside test. dnsmasq has no upstream: REFUSED
		local _, _, rcode = dns.query("example.invalid", "A", S)
		expect.eq(rcode, "REFUSED")

		-- no server option: resolv.conf's servers, on the configured port
		local d = assert(dns.query("www.test", "A", {timeout = 5}))
		expect.eq(d.port, %d)
		expect.eq(d.answer[1].address, "127.0.0.5")
		expect.match(tostring(big), "^;; Truncated, retrying in TCP mode%%.\n;; %%->>HEADER<<%%- opcode: QUERY, status: NOERROR")
		expect.match(tostring(big), "ANSWER: 60,")
		expect.match(tostring(big), "\n;; SERVER: 127%%.0%%.0%%.1#%d%%(127%%.0%%.0%%.1%%) %%(TCP%%)\n")
	`, d.port, d.port, d.port, d.port))
}

func TestResolveWithDnsmasq(t *testing.T) {
	d := startDnsmasq(t)
	base := takeBaseline()
	defer base.check(t)
	// The hosts file wins over DNS for www.test; "search test" makes
	// single-label names work.
	cfg := d.resolverConfig(t, "# comment line\n10.1.2.3  www.test  www-alias.test # trailing comment\nbogus line\n", "search test\n")
	h, out := newDNSHost(t, cfg)
	defer h.Close()
	runLua(t, h, out, `
		local a = assert(dns.resolve("www.test", "inet"))
		expect.eq(#a, 1)
		expect.eq(a[1], "10.1.2.3", "/etc/hosts comes first")
		expect.eq(dns.resolve("WWW-ALIAS.test.", "inet")[1], "10.1.2.3", "any case, trailing dot")
		-- the hosts file has no IPv6 address for www.test: DNS gives one
		expect.eq(dns.resolve("www.test", "inet6")[1], "::5")
		local both = assert(dns.resolve("www.test"))
		expect.eq(both[1], "10.1.2.3")
		expect.eq(both[2], "::5")
		-- the search list: "conn" is tried as conn.test.
		expect.eq(dns.resolve("conn", "inet")[1], "127.0.0.1")
		-- a truncated answer is fetched again over TCP, as glibc does
		expect.eq(#assert(dns.resolve("big.test", "inet")), 60)
		local no, msg, code = dns.resolve("nope.test")
		expect.eq(no, nil)
		expect.eq(code, "EAI_NONAME")
		expect.match(msg, "unknown host nope.test")
		local _, _, c2 = dns.resolve("txt.test", "inet")
		expect.eq(c2, "EAI_NODATA")
		local _, _, c3 = dns.resolve("outside.example", "inet")
		expect.eq(c3, "EAI_AGAIN", "REFUSED from every server")
		-- reverse: the hosts file, then PTR from dnsmasq
		expect.eq(dns.reverse("10.1.2.3")[1], "www.test.")
		expect.eq(dns.reverse("127.0.0.5")[1], "www.test.")

		-- sock.connect resolves names the same way: conn.test is only in dnsmasq
		local l = assert(sock.listen_tcp("127.0.0.1", 0))
		local _, port = l:getsockname()
		local c = assert(sock.dial_tcp("conn.test", port, 5))
		local a = assert(l:accept())
		expect.eq(select(1, c:getpeername()), "127.0.0.1")
		c:close(); a:close(); l:close()
		local u = assert(sock.udp())
		local _, _, ucode = u:sendto("x", "nope.test", 9)
		expect.eq(ucode, "EAI_NONAME")
		u:close()
	`)
}

func TestResolveTimesOutWhereNothingAnswers(t *testing.T) {
	base := takeBaseline()
	defer base.check(t)
	// a UDP socket that never reads stands in for a dead name server
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	dir := t.TempDir()
	rc := filepath.Join(dir, "resolv.conf")
	os.WriteFile(rc, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644)
	cfg := ResolverConfig{ResolvConf: rc, Hosts: filepath.Join(dir, "none"), Port: silent.LocalAddr().(*net.UDPAddr).Port}
	h, out := newDNSHost(t, cfg)
	defer h.Close()
	start := time.Now()
	runLua(t, h, out, `
		local a, msg, code = dns.resolve("slow.test", "inet")
		expect.eq(a, nil)
		expect.eq(code, "EAI_AGAIN")
		expect.match(msg, "no answer from 127%.0%.0%.1:%d+ over udp within 1s")
		local c, _, ccode = sock.dial_tcp("slow.test", 80, 5)
		expect.eq(ccode, "EAI_AGAIN")
	`)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("two 1 s timeouts took %s", d)
	}
}

// digRun runs dig against a server and returns its output.
func digRun(t *testing.T, args ...string) string {
	t.Helper()
	dig := testpeer.Path(t, "dig")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, dig, append([]string{"+time=5", "+tries=1"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDigAgainstServe(t *testing.T) {
	testpeer.Path(t, "dig")
	base := takeBaseline()
	defer base.check(t)
	h, out := newTestHost(t)
	defer h.Close()
	res := runLua(t, h, out, `
		local zone = {origin = "example.test", "@ SOA ns1 hostmaster 1 3600 600 86400 60", "www A 127.0.0.1", "mail MX 10 www"}
		for i = 1, 200 do zone[#zone + 1] = "big A 10.0.0." .. i end
		srv = assert(dns.serve{addr = "127.0.0.1:0", zone = zone, handler = function(req)
		  if req.name == "who.example.test." then
		    return {answer = {{type = "TXT", text = req.client .. " " .. req.transport}}}
		  end
		end})
		return srv.port
	`)
	port := res[0]
	dig := func(args ...string) string { return digRun(t, append([]string{"@127.0.0.1", "-p", port}, args...)...) }

	udp := dig("www.example.test", "A")
	for _, want := range []string{"status: NOERROR", "flags: qr aa rd;", "ANSWER: 1,", "www.example.test.\t3600\tIN\tA\t127.0.0.1", "(UDP)"} {
		if !strings.Contains(udp, want) {
			t.Errorf("dig over UDP: no %q in\n%s", want, udp)
		}
	}
	tcp := dig("+tcp", "mail.example.test", "MX")
	for _, want := range []string{"status: NOERROR", "10 www.example.test.", "ADDITIONAL SECTION", "(TCP)"} {
		if !strings.Contains(tcp, want) {
			t.Errorf("dig +tcp: no %q in\n%s", want, tcp)
		}
	}
	// 200 addresses exceed dig's 1232-byte EDNS0 size: dig sees TC, retries
	// over TCP and gets them all.
	big := dig("big.example.test", "A")
	for _, want := range []string{";; Truncated, retrying in TCP mode.", "ANSWER: 200,", "(TCP)"} {
		if !strings.Contains(big, want) {
			t.Errorf("dig big answer: no %q in\n%s", want, big)
		}
	}
	// without EDNS0 the limit is 512 bytes
	if got := dig("+noedns", "+ignore", "big.example.test", "A"); !strings.Contains(got, "flags: qr aa tc rd;") {
		t.Errorf("dig +noedns +ignore: the UDP answer is not marked TC:\n%s", got)
	}
	nx := dig("nope.example.test", "A")
	if !strings.Contains(nx, "status: NXDOMAIN") || !strings.Contains(nx, "AUTHORITY: 1,") {
		t.Errorf("dig NXDOMAIN:\n%s", nx)
	}
	who := dig("+short", "who.example.test", "TXT")
	if strings.TrimSpace(who) != `"127.0.0.1 udp"` {
		t.Errorf("dig +short answered by the handler: %q", who)
	}
	if !regexp.MustCompile(`dns\.serve`).MatchString(runLua(t, h, out, `return tostring(fds())`)[0]) {
		t.Errorf("the server's sockets are not in fds()")
	}
	runLua(t, h, out, `expect.ok(srv.queries >= 7, "queries counted: " .. srv.queries); srv:close()`)
}

// The questions a script's lookups ask go out on its own sockets: in the
// trace, owned by its task, and closed by the time the call returns.
func TestLookupsInTheTrace(t *testing.T) {
	d := startDnsmasq(t)
	base := takeBaseline()
	defer base.check(t)
	h, out := newDNSHost(t, d.resolverConfig(t, "", "search test\n"))
	defer h.Close()
	var mu sync.Mutex
	var lines []string
	h.Table().SetTracer(func(e sock.Event) {
		mu.Lock()
		lines = append(lines, e.Owner+": "+e.String())
		mu.Unlock()
	})
	res := runLua(t, h, out, fmt.Sprintf(`
		local r = assert(dns.query("www.test", "A", {server = "127.0.0.1:%d"}))
		local l = assert(sock.listen_tcp("127.0.0.1", 0))
		local _, port = l:getsockname()
		local c = assert(sock.dial_tcp("conn", port))
		c:close(); l:close()
		local n = 0
		for _, e in ipairs(fds()) do n = n + 1 end
		return n
	`, d.port))
	if res[0] != "0" {
		t.Errorf("%s sockets left after the lookups", res[0])
	}
	mu.Lock()
	got := strings.Join(lines, "\n")
	mu.Unlock()
	got = regexp.MustCompile(`\{\d+`).ReplaceAllString(got, "{ID")
	got = regexp.MustCompile(`\b\d+<`).ReplaceAllString(got, "FD<")
	got = regexp.MustCompile(`\) = \d+$`).ReplaceAllString(got, ") = FD") // socket(2)'s result
	got = strings.ReplaceAll(got, fmt.Sprintf("127.0.0.1:%d", d.port), "DNSMASQ")
	want := []string{
		"task 1 (main): socket(udp)",
		"task 1 (main): connect(FD<UDP>, DNSMASQ) = 0",
		"task 1 (main): sendto(FD<UDP>, {ID+ A? www.test.}, 26, DNSMASQ) = 26",
		"task 1 (main): recvfrom(FD<UDP>, 65535) = 42 {ID* q: A? www.test. 1/0/0 A 127.0.0.5} from DNSMASQ",
		"task 1 (main): close(FD<UDP>) = 0",
		// dial_tcp: the search list makes conn conn.test., asked before the
		// socket that connects is made
		"task 1 (main): sendto(FD<UDP>, {ID+ A? conn.test.}, 27, DNSMASQ) = 27",
		"task 1 (main): recvfrom(FD<UDP>, 65535) = 43 {ID* q: A? conn.test. 1/0/0 A 127.0.0.1} from DNSMASQ",
		"task 1 (main): close(FD<UDP>) = 0\ntask 1 (main): socket(tcp)",
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("no %q in the trace:\n%s", w, got)
		}
	}
}
