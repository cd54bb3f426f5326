package scripts_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// forward_proxy.lua and reverse_proxy.lua, driven by curl as users drive
// them, in front of real http_server.lua backends.

// curlOutcome is what one curl run printed and how it ended.
type curlOutcome struct {
	out, errOut string
	code        int
}

// curlTry runs curl -sS --max-time 10 with args; a non-zero exit is returned,
// not fatal, since some tests want curl to fail.
func curlTry(t *testing.T, args ...string) curlOutcome {
	t.Helper()
	path := testpeer.Path(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-sS", "--max-time", "10", "--noproxy", ""}, args...)...)
	// Proxy settings from the environment must not reroute the tests.
	cmd.Env = append(os.Environ(), "http_proxy=", "HTTP_PROXY=", "https_proxy=", "HTTPS_PROXY=", "all_proxy=", "ALL_PROXY=")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("curl %s: no answer within 20 s", strings.Join(args, " "))
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
	}
	return curlOutcome{out: out.String(), errOut: errb.String(), code: code}
}

// curlMust is curlTry that must succeed; it returns stdout.
func curlMust(t *testing.T, args ...string) string {
	t.Helper()
	r := curlTry(t, args...)
	if r.code != 0 {
		t.Fatalf("curl %s: exit %d: %s", strings.Join(args, " "), r.code, r.errOut)
	}
	return r.out
}

// headerOf returns a header's value from curl -i output (the last response).
func headerOf(out, name string) string {
	heads := strings.Split(out, "\r\n\r\n")
	var head string
	for _, h := range heads {
		if strings.HasPrefix(h, "HTTP/") {
			head = h
		}
	}
	for _, line := range strings.Split(head, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// statusOf returns the status code of the last response in curl -i output.
func statusOf(out string) string {
	m := regexp.MustCompile(`(?m)^HTTP/1\.[01] (\d{3})`).FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// bodyOf returns what follows the last head in curl -i output.
func bodyOf(out string) string {
	i := strings.LastIndex(out, "\r\n\r\n")
	if i < 0 {
		return out
	}
	return out[i+4:]
}

// waitUntil polls cond until it holds, at most 15 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeTestFile writes a file, making its directory.
func writeTestFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// holdCGI is a CGI program that answers only once the file "release"
// exists in its directory (at most 10 s): a backend as slow as a test
// wants, without guessing durations.
const holdCGI = `#!/bin/sh
i=0
while [ ! -e release ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
printf 'Content-Type: text/plain\r\n\r\nreleased\n'
`

// startBackend starts http_server.lua on a fresh root holding who.txt (with
// the given content) and a cgi-bin with hold.sh; it returns the server
// and its cgi-bin directory.
func startBackend(t *testing.T, who string) (*scripttest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "www", "who.txt"), who, 0o644)
	writeTestFile(t, filepath.Join(dir, "cgi", "hold.sh"), holdCGI, 0o755)
	srv := scripttest.Start(t, scripttest.Script("http_server.lua"), "--root", filepath.Join(dir, "www"),
		"--cgi-bin", filepath.Join(dir, "cgi"), "--port", "0")
	return srv, filepath.Join(dir, "cgi")
}

func releaseHold(t *testing.T, cgi string) {
	writeTestFile(t, filepath.Join(cgi, "release"), "", 0o644)
}

// rawRoundTrip writes data on a fresh connection and returns everything
// that comes back until the server closes (at most 10 s).
func rawRoundTrip(t *testing.T, addr, data string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, data); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

// ---------------------------------------------------------------------------
// forward_proxy.lua

func startForward(t *testing.T, args ...string) *scripttest.Server {
	t.Helper()
	return scripttest.Start(t, append([]string{scripttest.Script("forward_proxy.lua"), "--port", "0"}, args...)...)
}

// echoBackend is http_server.lua with scripts/cgi-bin, whose echo.sh shows
// the request headers that reached it as HTTP_* variables.
func echoBackend(t *testing.T) *scripttest.Server {
	t.Helper()
	return scripttest.Start(t, scripttest.Script("http_server.lua"), "--root", filepath.Join(scripttest.Root(), "scripts", "testdata", "www"),
		"--cgi-bin", filepath.Join(scripttest.Root(), "scripts", "cgi-bin"), "--port", "0")
}

func TestForwardProxyRelaysWithViaAndKeepAlive(t *testing.T) {
	web := echoBackend(t)
	fp := startForward(t)
	px := "http://" + fp.Addr
	base := "http://" + web.Addr

	// Two URLs in one curl: one client connection, one server connection.
	out := curlMust(t, "-x", px, "-H", "Proxy-Connection: keep-alive", "-H", "X-Custom: kept",
		"-w", "\nconnects=%{num_connects}\n", base+"/notes.txt", base+"/cgi-bin/echo.sh")
	for _, want := range []string{
		"HTTP_VIA=1.1 sockplay-forward-proxy",
		"HTTP_X_FORWARDED_FOR=127.0.0.1",
		"HTTP_X_CUSTOM=kept",
		"HTTP_HOST=" + web.Addr,
		"REQUEST_URI=/cgi-bin/echo.sh", // origin form towards the server
		"connects=0",                   // the second request reused the connection
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PROXY_CONNECTION") {
		t.Errorf("Proxy-Connection, a hop-by-hop field, reached the server:\n%s", out)
	}
	if got := curlMust(t, "-x", px, "-i", base+"/notes.txt"); headerOf(got, "Via") != "1.1 sockplay-forward-proxy" || statusOf(got) != "200" {
		t.Errorf("response Via %q, status %s:\n%s", headerOf(got, "Via"), statusOf(got), got)
	}
	waitUntil(t, "two access log lines", func() bool { return strings.Count(fp.Output(), `" 200 `) >= 3 })
	log := fp.Output()
	if n := strings.Count(log, "link client fd"); n != 2 {
		t.Errorf("%d server connections for two client connections, want 2 (keep-alive):\n%s", n, log)
	}
	if !regexp.MustCompile(`127\.0\.0\.1:\d+ "GET http://127\.0\.0\.1:\d+/notes\.txt HTTP/1\.1" 200 \d+ [\d.]+ms server fd \d+`).MatchString(log) {
		t.Errorf("access log line missing:\n%s", log)
	}
}

func TestForwardProxyAnonymous(t *testing.T) {
	web := echoBackend(t)
	fp := startForward(t, "--anonymous")
	out := curlMust(t, "-x", "http://"+fp.Addr, "-A", "secret-agent", "-H", "Cookie: id=42",
		"-H", "Referer: http://me.example/", "-H", "X-Forwarded-For: 10.9.9.9", "http://"+web.Addr+"/cgi-bin/echo.sh")
	if !strings.Contains(out, "HTTP_VIA=1.1 sockplay-forward-proxy") {
		t.Errorf("Via missing:\n%s", out)
	}
	for _, leak := range []string{"HTTP_COOKIE", "HTTP_REFERER", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "10.9.9.9", "secret-agent"} {
		if strings.Contains(out, leak) {
			t.Errorf("--anonymous let %s through:\n%s", leak, out)
		}
	}
}

func TestForwardProxyBlocksHosts(t *testing.T) {
	web := echoBackend(t)
	fp := startForward(t, "--block", "localhost", "--block", "ads.example")
	px := "http://" + fp.Addr
	for _, url := range []string{"http://localhost:" + web.Port + "/notes.txt", "http://www.ads.example/", "http://ADS.example./x"} {
		r := curlTry(t, "-x", px, "-i", url)
		if statusOf(r.out) != "403" || !strings.Contains(r.out, "is blocked by this proxy") {
			t.Errorf("%s: want 403 blocked, got:\n%s", url, r.out)
		}
	}
	// CONNECT to a blocked host fails too; the same server by address does not.
	if r := curlTry(t, "-p", "-x", px, "http://localhost:"+web.Port+"/notes.txt"); r.code == 0 {
		t.Errorf("CONNECT to a blocked host succeeded: %s", r.out)
	}
	if got := curlMust(t, "-x", px, "http://127.0.0.1:"+web.Port+"/notes.txt"); !strings.Contains(got, "plain text") {
		t.Errorf("an unblocked host: %q", got)
	}
	waitUntil(t, "the log of the blocked CONNECT", func() bool { return strings.Contains(fp.Output(), `"CONNECT localhost:`) })
	if log := fp.Output(); !strings.Contains(log, `"CONNECT localhost:`+web.Port+` HTTP/1.1" 403 blocked`) {
		t.Errorf("log lacks the blocked CONNECT:\n%s", log)
	}
}

func TestForwardProxyConnectTunnel(t *testing.T) {
	web := echoBackend(t)
	fp := startForward(t)
	// curl -p: CONNECT, then HTTP inside the tunnel.
	out := curlMust(t, "-p", "-x", "http://"+fp.Addr, "http://"+web.Addr+"/cgi-bin/echo.sh")
	if !strings.Contains(out, "REQUEST_METHOD=GET") || strings.Contains(out, "HTTP_VIA") {
		t.Errorf("through a tunnel the server sees the client's request untouched, got:\n%s", out)
	}

	// A tunnel to a TCP echo server carries any bytes, both ways.
	echo := scripttest.Start(t, scripttest.Script("tcp_echo_server.lua"), "--port", "0", "--quiet")
	c, err := net.DialTimeout("tcp", fp.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", echo.Addr, echo.Addr)
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 200 ") {
		t.Fatalf("CONNECT answered %q", line)
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil || l == "\r\n" {
			break
		}
	}
	io.WriteString(c, "\x00binary\xff and text\n")
	got := make([]byte, 18)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "\x00binary\xff and text\n" {
		t.Errorf("echo through the tunnel: %q, %v", got, err)
	}
	c.(*net.TCPConn).CloseWrite()
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Errorf("after the client's end of stream: %q", rest)
	}
	waitUntil(t, "the tunnel's log line", func() bool { return strings.Contains(fp.Output(), "18 bytes up, 18 down") })
	if !regexp.MustCompile(`"CONNECT 127\.0\.0\.1:\d+ HTTP/1\.1" 200 tunnel fd \d+ <-> fd \d+: 18 bytes up, 18 down`).MatchString(fp.Output()) {
		t.Errorf("tunnel log:\n%s", fp.Output())
	}
}

func TestForwardProxyRefusals(t *testing.T) {
	web := echoBackend(t)
	fp := startForward(t)
	px := "http://" + fp.Addr
	cases := []struct {
		args       []string
		status     string
		bodyPrefix string
	}{
		// Not loopback: the proxy does not connect, whatever the address.
		{[]string{"-x", px, "http://10.255.255.1/"}, "403", "is not a destination this proxy may connect to"},
		{[]string{"-x", px, "http://192.0.2.1:81/x"}, "403", "is not a destination"},
		{[]string{"-x", px, "http://no-such-host.invalid/"}, "502", "cannot resolve"},
		{[]string{"-x", px, "http://127.0.0.1:" + freePort(t, "tcp") + "/"}, "502", "connection refused"},
		{[]string{"-x", px, "https://127.0.0.1:" + web.Port + "/", "--proxy-insecure", "--insecure"}, "", ""},
		{[]string{px + "/notes.txt"}, "400", "this is a proxy"},
	}
	for _, tc := range cases {
		r := curlTry(t, append([]string{"-i"}, tc.args...)...)
		if tc.status == "" {
			continue // https goes through CONNECT, and the TLS handshake fails: no crash is the point
		}
		if statusOf(r.out) != tc.status || !strings.Contains(r.out, tc.bodyPrefix) {
			t.Errorf("curl %s: want %s %q, got exit %d:\n%s", strings.Join(tc.args, " "), tc.status, tc.bodyPrefix, r.code, r.out)
		}
	}
	// Malformed requests get a clear answer, and the proxy serves on.
	for _, bad := range []string{"GARBAGE\r\n\r\n", "GET http://x/ HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
		"POST http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"CONNECT nonsense HTTP/1.1\r\nHost: x\r\n\r\n"} {
		if got := rawRoundTrip(t, fp.Addr, bad); !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") {
			t.Errorf("%q answered %q", bad, got)
		}
	}
	if got := curlMust(t, "-x", px, "http://"+web.Addr+"/notes.txt"); !strings.Contains(got, "plain text") {
		t.Errorf("after the bad requests: %q", got)
	}
	if s := fp.Stderr(); s != "" {
		t.Errorf("stderr:\n%s", s)
	}
}

func TestForwardProxyServesOnlyAllowedClients(t *testing.T) {
	web := echoBackend(t)
	fp := startForward(t, "--allow", "10.0.0.0/8")
	r := curlTry(t, "-i", "-x", "http://"+fp.Addr, "http://"+web.Addr+"/notes.txt")
	if statusOf(r.out) != "403" || !strings.Contains(r.out, "may not use this proxy") {
		t.Errorf("a client outside --allow got:\n%s", r.out)
	}
	bad := scripttest.Run(t, "", 30*time.Second, scripttest.Script("forward_proxy.lua"), "--allow", "10.0.0.0/40")
	if bad.Code != 2 || !strings.Contains(bad.Stderr, "prefix /40 is longer than the address") {
		t.Errorf("a bad --allow: exit %d, stderr %q", bad.Code, bad.Stderr)
	}
}

func TestForwardProxyUpstreamTimeout(t *testing.T) {
	web, cgi := startBackend(t, "slow\n")
	fp := startForward(t, "--upstream-timeout", "1")
	r := curlTry(t, "-i", "-x", "http://"+fp.Addr, "http://"+web.Addr+"/cgi-bin/hold.sh")
	releaseHold(t, cgi)
	if statusOf(r.out) != "504" || !strings.Contains(r.out, "did not answer within 1s") {
		t.Errorf("a server slower than --upstream-timeout: want 504, got:\n%s", r.out)
	}
}

// ---------------------------------------------------------------------------
// reverse_proxy.lua

func startReverse(t *testing.T, args ...string) *scripttest.Server {
	t.Helper()
	return scripttest.Start(t, append([]string{scripttest.Script("reverse_proxy.lua"), "--port", "0"}, args...)...)
}

func TestReverseProxyRoundRobinDownAndBack(t *testing.T) {
	a, _ := startBackend(t, "backend A\n")
	b, _ := startBackend(t, "backend BB\n") // another size: another ETag
	rp := startReverse(t, "--backend", a.Addr, "--backend", b.Addr, "--retry-after", "1")
	url := "http://" + rp.Addr + "/who.txt"
	get := func() string { return curlMust(t, "-H", "Cache-Control: no-store", url) }

	var seq []string
	for i := 0; i < 4; i++ {
		seq = append(seq, strings.TrimSpace(get()))
	}
	if got := strings.Join(seq, ","); got != "backend A,backend BB,backend A,backend BB" {
		t.Errorf("round robin: %s", got)
	}

	// B stops: it is marked down and its turn goes to A.
	bPort := b.Port
	b.Stop(t)
	for i := 0; i < 3; i++ {
		if got := get(); got != "backend A\n" {
			t.Errorf("with B down, request %d got %q", i, got)
		}
	}
	if log := rp.Output(); !strings.Contains(log, "backend "+b.Addr+" marked down for 1s: connection refused") {
		t.Errorf("log lacks B marked down:\n%s", log)
	}

	// B comes back on its port; after --retry-after it gets its turns again.
	root := t.TempDir()
	writeTestFile(t, filepath.Join(root, "who.txt"), "backend B again\n", 0o644)
	b2 := scripttest.Start(t, scripttest.Script("http_server.lua"), "--root", root, "--port", bPort)
	waitUntil(t, "B back in the rotation", func() bool {
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(get(), "backend B again")
	})
	if log := rp.Output(); !strings.Contains(log, "backend "+b.Addr+" is up again") {
		t.Errorf("log lacks B up again:\n%s", log)
	}

	// Everyone down: 502.
	a.Stop(t)
	b2.Stop(t)
	r := curlTry(t, "-i", "-H", "Cache-Control: no-store", url)
	if statusOf(r.out) != "502" || !strings.Contains(r.out, "no backend could answer") {
		t.Errorf("no backend up: want 502, got:\n%s", r.out)
	}
}

func TestReverseProxyLeastConn(t *testing.T) {
	a, cgiA := startBackend(t, "backend A\n")
	b, _ := startBackend(t, "backend BB\n")
	rp := startReverse(t, "--backend", a.Addr, "--backend", b.Addr, "--balance", "least-conn")
	// A long request occupies A (first in turn) ...
	var wg sync.WaitGroup
	var held curlOutcome
	wg.Add(1)
	go func() { defer wg.Done(); held = curlTry(t, "http://"+rp.Addr+"/cgi-bin/hold.sh") }()
	waitUntil(t, "the held request to reach A", func() bool { return strings.Contains(rp.Output(), "<-> backend fd") })
	// ... so every short one goes to B, the one with nothing in progress;
	// round robin would have sent the second to A.
	for i := 0; i < 3; i++ {
		if got := curlMust(t, "-H", "Cache-Control: no-store", "http://"+rp.Addr+"/who.txt"); got != "backend BB\n" {
			t.Errorf("least-conn request %d went to %q", i, got)
		}
	}
	releaseHold(t, cgiA)
	wg.Wait()
	if held.out != "released\n" {
		t.Errorf("held request: %+v", held)
	}
}

func TestReverseProxyGatewayTimeout(t *testing.T) {
	a, cgi := startBackend(t, "A\n")
	rp := startReverse(t, "--backend", a.Addr, "--backend-timeout", "1")
	r := curlTry(t, "-i", "http://"+rp.Addr+"/cgi-bin/hold.sh")
	releaseHold(t, cgi)
	if statusOf(r.out) != "504" || !strings.Contains(r.out, "did not answer within 1s") {
		t.Errorf("slow backend: want 504, got:\n%s", r.out)
	}
	// A timeout is not a refusal: the backend stays in the rotation.
	if got := curlMust(t, "http://"+rp.Addr+"/who.txt"); got != "A\n" {
		t.Errorf("after the timeout: %q", got)
	}
}

func TestReverseProxyForwardedHeadersAndMalformed(t *testing.T) {
	web := echoBackend(t)
	rp := startReverse(t, "--backend", web.Addr)
	out := curlMust(t, "-H", "X-Forwarded-For: 10.1.1.1", "-H", "Connection: X-Drop", "-H", "X-Drop: 1",
		"http://"+rp.Addr+"/cgi-bin/echo.sh")
	for _, want := range []string{"HTTP_X_FORWARDED_FOR=10.1.1.1, 127.0.0.1", "HTTP_X_FORWARDED_PROTO=http",
		"HTTP_VIA=1.1 sockplay-reverse-proxy", "HTTP_X_FORWARDED_HOST=" + rp.Addr} {
		if !strings.Contains(out, want) {
			t.Errorf("backend did not see %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "HTTP_X_DROP") {
		t.Errorf("a field named in Connection was forwarded:\n%s", out)
	}
	for _, bad := range []string{"NOT HTTP\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n"} {
		if got := rawRoundTrip(t, rp.Addr, bad); !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") {
			t.Errorf("%q answered %q", bad, got)
		}
	}
	if got := curlMust(t, "http://"+rp.Addr+"/notes.txt"); !strings.Contains(got, "plain text") {
		t.Errorf("after the bad requests: %q", got)
	}
	if s := rp.Stderr(); s != "" {
		t.Errorf("stderr:\n%s", s)
	}
}

// cacheCGI writes a CGI program that answers with the given extra header
// lines and a body that counts the times it ran: a cached answer repeats
// the count, a fresh one does not. With etag set it answers 304 to a
// request that has it.
func cacheCGI(t *testing.T, dir, name, headers, etag string) {
	t.Helper()
	script := "#!/bin/sh\n"
	if etag != "" {
		script += fmt.Sprintf("if [ \"$HTTP_IF_NONE_MATCH\" = '%s' ]; then printf 'Status: 304 Not Modified\\r\\nETag: %s\\r\\n\\r\\n'; exit 0; fi\n", etag, etag)
		headers += "ETag: " + etag + "\\r\\n"
	}
	script += fmt.Sprintf("n=$(cat %[1]s.count 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s.count\n", name)
	script += "printf 'Content-Type: text/plain\\r\\n" + headers + "\\r\\n'\n"
	script += "echo \"run $n lang=${HTTP_ACCEPT_LANGUAGE:-none}\"\n"
	writeTestFile(t, filepath.Join(dir, name), script, 0o755)
}

func TestReverseProxyCache(t *testing.T) {
	dir := t.TempDir()
	cgi := filepath.Join(dir, "cgi")
	future := time.Now().Add(time.Hour).UTC().Format(http1123)
	past := time.Now().Add(-time.Hour).UTC().Format(http1123)
	cacheCGI(t, cgi, "maxage.sh", "Cache-Control: max-age=60\\r\\n", "")
	cacheCGI(t, cgi, "aged.sh", "Cache-Control: max-age=600\\r\\nAge: 30\\r\\n", "")
	cacheCGI(t, cgi, "nostore.sh", "Cache-Control: no-store, max-age=60\\r\\n", "")
	cacheCGI(t, cgi, "private.sh", "Cache-Control: private, max-age=60\\r\\n", "")
	cacheCGI(t, cgi, "nocache.sh", "Cache-Control: no-cache\\r\\n", `"v1"`)
	cacheCGI(t, cgi, "expires.sh", "Expires: "+future+"\\r\\n", "")
	cacheCGI(t, cgi, "expired.sh", "Expires: "+past+"\\r\\n", "")
	cacheCGI(t, cgi, "vary.sh", "Cache-Control: max-age=60\\r\\nVary: Accept-Language\\r\\n", "")
	cacheCGI(t, cgi, "plain.sh", "", "")
	writeTestFile(t, filepath.Join(dir, "www", "page.txt"), "version 1\n", 0o644)
	web := scripttest.Start(t, scripttest.Script("http_server.lua"), "--root", filepath.Join(dir, "www"), "--cgi-bin", cgi, "--port", "0")
	rp := startReverse(t, "--backend", web.Addr)
	base := "http://" + rp.Addr

	type resp struct{ xcache, age, body, status string }
	get := func(path string, extra ...string) resp {
		out := curlMust(t, append([]string{"-i", base + path}, extra...)...)
		return resp{headerOf(out, "X-Cache"), headerOf(out, "Age"), bodyOf(out), statusOf(out)}
	}
	expect := func(what string, got resp, xcache, bodyText string) {
		t.Helper()
		if got.xcache != xcache || got.body != bodyText || got.age == "" {
			t.Errorf("%s: got X-Cache %q, Age %q, body %q; want %s and %q", what, got.xcache, got.age, got.body, xcache, bodyText)
		}
	}

	expect("max-age first", get("/cgi-bin/maxage.sh"), "MISS", "run 1 lang=none\n")
	expect("max-age again", get("/cgi-bin/maxage.sh"), "HIT", "run 1 lang=none\n")
	if r := get("/cgi-bin/aged.sh"); r.xcache != "MISS" || r.age != "30" {
		t.Errorf("a backend's Age passes through a miss: %+v", r)
	}
	if r := get("/cgi-bin/aged.sh"); r.xcache != "HIT" || atoiOr(r.age) < 30 || atoiOr(r.age) > 600 {
		t.Errorf("a hit counts the age the backend reported: %+v", r)
	}
	expect("no-store first", get("/cgi-bin/nostore.sh"), "MISS", "run 1 lang=none\n")
	expect("no-store again", get("/cgi-bin/nostore.sh"), "MISS", "run 2 lang=none\n")
	expect("private first", get("/cgi-bin/private.sh"), "MISS", "run 1 lang=none\n")
	expect("private again", get("/cgi-bin/private.sh"), "MISS", "run 2 lang=none\n")
	expect("Expires ahead", get("/cgi-bin/expires.sh"), "MISS", "run 1 lang=none\n")
	expect("Expires ahead again", get("/cgi-bin/expires.sh"), "HIT", "run 1 lang=none\n")
	expect("Expires past", get("/cgi-bin/expired.sh"), "MISS", "run 1 lang=none\n")
	expect("Expires past again", get("/cgi-bin/expired.sh"), "MISS", "run 2 lang=none\n")
	expect("nothing said", get("/cgi-bin/plain.sh"), "MISS", "run 1 lang=none\n")
	expect("nothing said again", get("/cgi-bin/plain.sh"), "MISS", "run 2 lang=none\n")

	// no-cache: kept, but checked each time; the 304 refreshes the copy.
	expect("no-cache first", get("/cgi-bin/nocache.sh"), "MISS", "run 1 lang=none\n")
	expect("no-cache revalidated", get("/cgi-bin/nocache.sh"), "HIT", "run 1 lang=none\n")
	waitUntil(t, "the backend's 304", func() bool { return strings.Contains(web.Output(), `"GET /cgi-bin/nocache.sh HTTP/1.1" 304`) })

	// Vary: one copy per Accept-Language.
	expect("vary en", get("/cgi-bin/vary.sh", "-H", "Accept-Language: en"), "MISS", "run 1 lang=en\n")
	expect("vary en again", get("/cgi-bin/vary.sh", "-H", "Accept-Language: en"), "HIT", "run 1 lang=en\n")
	expect("vary fr", get("/cgi-bin/vary.sh", "-H", "Accept-Language: fr"), "MISS", "run 2 lang=fr\n")
	expect("vary en third", get("/cgi-bin/vary.sh", "-H", "Accept-Language: en"), "HIT", "run 1 lang=en\n")
	expect("vary fr again", get("/cgi-bin/vary.sh", "-H", "Accept-Language: fr"), "HIT", "run 2 lang=fr\n")

	// The client's own no-store bypasses the cache; HEAD is answered from it.
	expect("request no-store", get("/cgi-bin/maxage.sh", "-H", "Cache-Control: no-store"), "MISS", "run 2 lang=none\n")
	if out := curlMust(t, "-I", base+"/cgi-bin/maxage.sh"); headerOf(out, "X-Cache") != "HIT" || headerOf(out, "Content-Length") != "16" {
		t.Errorf("HEAD from the cache:\n%s", out)
	}

	// A static file: ETag and Last-Modified but no lifetime, so every use
	// asks the backend; a 304 serves the copy, a change replaces it.
	expect("file first", get("/page.txt"), "MISS", "version 1\n")
	expect("file revalidated", get("/page.txt"), "HIT", "version 1\n")
	waitUntil(t, "the backend's 304 for page.txt", func() bool { return strings.Contains(web.Output(), `"GET /page.txt HTTP/1.1" 304`) })
	writeTestFile(t, filepath.Join(dir, "www", "page.txt"), "version two\n", 0o644)
	// http_server.lua may go on serving what it read for a moment: wait
	// until the backend itself has the new version.
	waitUntil(t, "the backend to serve the new file", func() bool {
		return curlMust(t, "http://"+web.Addr+"/page.txt") == "version two\n"
	})
	expect("file changed", get("/page.txt"), "MISS", "version two\n")
	expect("file changed, revalidated", get("/page.txt"), "HIT", "version two\n")
	// The client's conditional is answered by the cache itself.
	etag := headerOf(curlMust(t, "-i", base+"/page.txt"), "ETag")
	if r := curlTry(t, "-i", "-H", "If-None-Match: "+etag, base+"/page.txt"); statusOf(r.out) != "304" || headerOf(r.out, "X-Cache") != "HIT" {
		t.Errorf("If-None-Match with the cached ETag:\n%s", r.out)
	}
	log := rp.Output()
	for _, want := range []string{"cache MISS (stored)", "cache MISS (not stored: no-store)", "cache MISS (not stored: private)",
		"cache HIT (revalidated: 304)", "cache MISS (not stored: no freshness or validator)"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func atoiOr(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// http1123 is the date format of HTTP (http.TimeFormat, without importing net/http).
const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestReverseProxyFdsShowLinkedConnections(t *testing.T) {
	a, cgi := startBackend(t, "A\n")
	// sockplay -i: the proxy runs, and the REPL reads commands from stdin.
	cmd := exec.Command(scripttest.Binary(t), "-i", scripttest.Script("reverse_proxy.lua"), "--port", "0", "--backend", a.Addr)
	cmd.Dir = scripttest.Root()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutR, stdoutW := io.Pipe()
	cmd.Stdout, cmd.Stderr = stdoutW, stdoutW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		// .exit closes every fd and ends the tasks; at end of input alone
		// the process would live on while the proxy's tasks run.
		io.WriteString(stdin, ".exit\n")
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	go func() { cmd.Wait(); stdoutW.Close(); close(done) }()
	var mu sync.Mutex
	var out strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := stdoutR.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	text := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	waitUntil(t, "listening on", func() bool { return strings.Contains(text(), "listening on") })
	addr := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(text())[1]

	var wg sync.WaitGroup
	wg.Add(1)
	var held curlOutcome
	go func() { defer wg.Done(); held = curlTry(t, "http://"+addr+"/cgi-bin/hold.sh") }()
	waitUntil(t, "the link line", func() bool { return strings.Contains(text(), "<-> backend fd") })
	m := regexp.MustCompile(`link client fd (\d+) \((127\.0\.0\.1:\d+)\) <-> backend fd (\d+) \(` + regexp.QuoteMeta(a.Addr) + `\)`).FindStringSubmatch(text())
	if m == nil {
		t.Fatalf("no link line:\n%s", text())
	}
	clientFd, clientAddr, backendFd := m[1], m[2], m[3]
	io.WriteString(stdin, ".fds\n")
	rowRe := func(fd, peer, owner string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + fd + `\s+tcp\s+ESTABLISHED\s+.*\s` + regexp.QuoteMeta(peer) + `\s+\S+\s+task \d+ \(` + regexp.QuoteMeta(owner) + `\)`)
	}
	waitUntil(t, ".fds output", func() bool { return strings.Contains(text(), "OWNER") })
	waitUntil(t, "the backend row", func() bool { return rowRe(backendFd, a.Addr, "client fd "+clientFd).MatchString(text()) })
	if !rowRe(clientFd, clientAddr, "accept "+addr).MatchString(text()) {
		t.Errorf("the client row (fd %s, peer %s) is missing:\n%s", clientFd, clientAddr, text())
	}
	releaseHold(t, cgi)
	wg.Wait()
	if held.out != "released\n" {
		t.Errorf("held request: %+v", held)
	}
}

// The libraries' small functions (CIDR blocks, header fields,
// Cache-Control, the CORS rules) checked one by one in Lua.
func TestProxyAndCorsLibraries(t *testing.T) {
	r := scripttest.Run(t, "", 30*time.Second, filepath.Join(scripttest.Root(), "scripts", "testdata", "proxy", "lib_test.lua"))
	if r.Code != 0 || !regexp.MustCompile(`(?m)^\d+ passed, 0 failed$`).MatchString(r.Stdout) {
		t.Errorf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestProxyScriptsHelpAndMistakes(t *testing.T) {
	for _, s := range []string{"forward_proxy.lua", "reverse_proxy.lua", "cors_server.lua", "cors_check.lua"} {
		r := scripttest.Run(t, "", 30*time.Second, scripttest.Script(s), "--help")
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "usage: "+s) {
			t.Errorf("%s --help: exit %d\n%s%s", s, r.Code, r.Stdout, r.Stderr)
		}
		r = scripttest.Run(t, "", 30*time.Second, scripttest.Script(s), "--bogus")
		if r.Code != 2 || !strings.Contains(r.Stderr, "unknown option --bogus") {
			t.Errorf("%s --bogus: exit %d, stderr %q", s, r.Code, r.Stderr)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give at least one --backend HOST:PORT"},
		{[]string{"--backend", "127.0.0.1"}, "--backend wants HOST:PORT, not 127.0.0.1"},
		{[]string{"--backend", "127.0.0.1:1", "--balance", "random"}, "--balance is round-robin or least-conn, not random"},
		{[]string{"--route", "api=127.0.0.1:1"}, "--route wants /PREFIX=HOST:PORT"},
	} {
		r := scripttest.Run(t, "", 30*time.Second, append([]string{scripttest.Script("reverse_proxy.lua")}, tc.args...)...)
		if r.Code != 2 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("reverse_proxy.lua %v: exit %d, stderr %q, want %q", tc.args, r.Code, r.Stderr, tc.want)
		}
	}
}

// A backend that accepts and hangs up without an answer has failed: it is
// marked down and a request that may be repeated goes to the next one; a
// POST, which the failed backend may have acted on, gets 502 instead.
func TestReverseProxyBackendThatHangsUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			bufio.NewReader(c).ReadString('\n') // the request line, then nothing
			c.Close()
		}
	}()
	good, _ := startBackend(t, "good\n")
	rp := startReverse(t, "--backend", l.Addr().String(), "--backend", good.Addr, "--retry-after", "60")
	if got := curlMust(t, "-H", "Cache-Control: no-store", "http://"+rp.Addr+"/who.txt"); got != "good\n" {
		t.Errorf("GET after the first backend hung up: %q", got)
	}
	waitUntil(t, "the failed backend marked down", func() bool {
		return strings.Contains(rp.Output(), "backend "+l.Addr().String()+" marked down for 60s")
	})
	rp2 := startReverse(t, "--backend", l.Addr().String(), "--backend", good.Addr)
	r := curlTry(t, "-i", "-d", "x=1", "http://"+rp2.Addr+"/who.txt")
	if statusOf(r.out) != "502" || !strings.Contains(r.out, "failed") {
		t.Errorf("POST to a backend that hung up: want 502, got:\n%s", r.out)
	}
}
