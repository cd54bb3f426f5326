package scripts_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"sockplay/internal/scripttest"
)

// cors_server.lua and cors_check.lua: the checker asks the server what a
// browser would ask, and both say what they decided.

const pageOrigin = "http://127.0.0.1:5000"

func startCors(t *testing.T, args ...string) *scripttest.Server {
	t.Helper()
	return scripttest.Start(t, append([]string{scripttest.Script("cors_server.lua"), "--port", "0"}, args...)...)
}

func corsCheck(t *testing.T, args ...string) scripttest.Result {
	t.Helper()
	return scripttest.Run(t, "", 30*time.Second, append([]string{scripttest.Script("cors_check.lua")}, args...)...)
}

// logKind returns the server's log lines that start with kind.
func logKind(s *scripttest.Server, kind string) []string {
	var out []string
	for _, line := range strings.Split(s.Output(), "\n") {
		if strings.HasPrefix(line, kind+" ") {
			out = append(out, line)
		}
	}
	return out
}

func wantAll(t *testing.T, what, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l) {
			t.Errorf("%s lacks %q:\n%s", what, l, text)
		}
	}
}

func TestCorsCheckSimpleRequest(t *testing.T) {
	srv := startCors(t, "--allow-origin", pageOrigin, "--expose-headers", "X-Request-Id")
	r := corsCheck(t, "--origin", pageOrigin, "http://"+srv.Addr+"/api/hello")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	wantAll(t, "cors_check", r.Stdout,
		"simple request: method GET is GET, HEAD or POST, and every header is CORS-safelisted",
		"no preflight",
		"ok    Access-Control-Allow-Origin: "+pageOrigin+" is the page's origin",
		"X-Request-Id (exposed)",
		"allowed: the page can send GET from "+pageOrigin)
	if strings.Contains(r.Stdout, "OPTIONS") {
		t.Errorf("a simple request was preflighted:\n%s", r.Stdout)
	}
	// A POST of text/plain is simple too; a JSON one is not.
	r = corsCheck(t, "--origin", pageOrigin, "-d", "hi", "--preflight-only", "http://"+srv.Addr+"/api/items")
	wantAll(t, "POST text/plain", r.Stdout, "simple request:")
	r = corsCheck(t, "--origin", pageOrigin, "-d", "{}", "-H", "Content-Type: application/json", "--preflight-only", "http://"+srv.Addr+"/api/items")
	wantAll(t, "POST json", r.Stdout, "needs a preflight:", "  - Content-Type application/json is not application/x-www-form-urlencoded")

	waitUntil(t, "the SIMPLE log line", func() bool { return len(logKind(srv, "SIMPLE")) == 1 })
	if p := logKind(srv, "PREFLIGHT"); len(p) != 1 {
		t.Errorf("want only the JSON POST's preflight, got %q", p)
	}
	if s := logKind(srv, "SIMPLE")[0]; !strings.Contains(s, `"GET /api/hello HTTP/1.1" 200 origin `+pageOrigin+" origin allowed") {
		t.Errorf("log: %s", s)
	}
}

func TestCorsCheckPreflightAllowed(t *testing.T) {
	srv := startCors(t, "--allow-origin", pageOrigin, "--allow-headers", "Content-Type, X-Token", "--max-age", "600")
	r := corsCheck(t, "--origin", pageOrigin, "-X", "PUT", "-H", "Content-Type: application/json",
		"-H", "X-Token: 1", "-d", `{"v":1}`, "http://"+srv.Addr+"/api/items/3")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	wantAll(t, "cors_check", r.Stdout,
		"needs a preflight:",
		"  - method PUT is not GET, HEAD or POST",
		"  - header X-Token is not CORS-safelisted",
		"  > OPTIONS /api/items/3 HTTP/1.1",
		"  > Access-Control-Request-Method: PUT",
		"  > Access-Control-Request-Headers: content-type,x-token",
		"  < HTTP/1.1 204 No Content",
		"ok    preflight status 204 is in 200-299",
		"ok    Access-Control-Allow-Methods: GET, HEAD, POST, PUT, DELETE includes PUT",
		"ok    Access-Control-Allow-Headers: Content-Type, X-Token includes content-type",
		"ok    Access-Control-Allow-Headers: Content-Type, X-Token includes x-token",
		"info  Access-Control-Max-Age: 600",
		"  > PUT /api/items/3 HTTP/1.1",
		"  < HTTP/1.1 201 Created",
		"allowed: the page can send PUT")
	if strings.Contains(r.Stdout, "FAIL") {
		t.Errorf("a failed check:\n%s", r.Stdout)
	}
	waitUntil(t, "the ACTUAL line", func() bool { return len(logKind(srv, "ACTUAL")) == 1 })
	p := logKind(srv, "PREFLIGHT")
	if len(p) != 1 || !strings.HasSuffix(p[0], "wants PUT with content-type,x-token: allowed") {
		t.Errorf("PREFLIGHT lines: %q", p)
	}
	if a := logKind(srv, "ACTUAL")[0]; !strings.Contains(a, `"PUT /api/items/3 HTTP/1.1" 201`) ||
		!strings.Contains(a, "not simple: method PUT, Content-Type application/json, header x-token") {
		t.Errorf("ACTUAL line: %s", a)
	}
	// The item is there, for anyone.
	if got := curlMust(t, "http://"+srv.Addr+"/api/items/3"); got != `{"id":3,"type":"application/json","value":"{\"v\":1}"}`+"\n" {
		t.Errorf("GET after PUT: %s", got)
	}
}

func TestCorsCheckPreflightRefused(t *testing.T) {
	srv := startCors(t, "--allow-origin", pageOrigin, "--allow-methods", "GET, POST", "--allow-headers", "Content-Type")
	url := "http://" + srv.Addr + "/api/items/1"
	cases := []struct {
		args []string
		fail string
	}{
		{[]string{"--origin", "http://localhost:5000", "-X", "PUT"}, "FAIL  Access-Control-Allow-Origin is missing: the server did not allow origin http://localhost:5000"},
		{[]string{"--origin", pageOrigin, "-X", "PUT"}, "FAIL  Access-Control-Allow-Methods: GET, POST does not include PUT"},
		{[]string{"--origin", pageOrigin, "-X", "DELETE", "-H", "X-Other: 1"}, "FAIL  Access-Control-Allow-Headers: Content-Type does not include x-other"},
	}
	for _, tc := range cases {
		r := corsCheck(t, append(tc.args, url)...)
		if r.Code != 1 {
			t.Errorf("%v: exit %d, want 1 (blocked)\n%s%s", tc.args, r.Code, r.Stdout, r.Stderr)
		}
		wantAll(t, strings.Join(tc.args, " "), r.Stdout, tc.fail,
			"blocked: the preflight does not allow this request; the browser never sends")
		if strings.Contains(r.Stdout, "request:\n") {
			t.Errorf("the request itself was sent after a failed preflight:\n%s", r.Stdout)
		}
	}
	waitUntil(t, "three PREFLIGHT lines", func() bool { return len(logKind(srv, "PREFLIGHT")) == 3 })
	p := logKind(srv, "PREFLIGHT")
	for i, want := range []string{"refused: origin http://localhost:5000 is not allowed",
		"refused: method PUT is not in GET, POST", "refused: method DELETE is not in GET, POST; header x-other is not in Content-Type"} {
		if !strings.HasSuffix(p[i], want) {
			t.Errorf("PREFLIGHT %d: %s\nwant it to end %q", i, p[i], want)
		}
	}
	if a := logKind(srv, "ACTUAL"); len(a) != 0 {
		t.Errorf("requests sent despite the refusals: %q", a)
	}
	// A refused preflight carries no CORS headers at all.
	out := curlMust(t, "-i", "-X", "OPTIONS", "-H", "Origin: http://evil.example", "-H", "Access-Control-Request-Method: PUT", url)
	if statusOf(out) != "204" || strings.Contains(out, "Access-Control-Allow") || headerOf(out, "Vary") == "" {
		t.Errorf("refused preflight:\n%s", out)
	}
	// A simple request from another origin reaches the server, but the
	// answer has no Access-Control-Allow-Origin: the browser hides it.
	r := corsCheck(t, "--origin", "http://localhost:5000", "http://"+srv.Addr+"/api/hello")
	if r.Code != 1 {
		t.Errorf("simple request from another origin: exit %d", r.Code)
	}
	wantAll(t, "simple, other origin", r.Stdout, "blocked: the request reached the server (status 200), but the browser keeps the answer from the page")
}

func TestCorsCredentialsAndStar(t *testing.T) {
	// The server refuses to start with * and credentials together.
	r := scripttest.Run(t, "", 30*time.Second, scripttest.Script("cors_server.lua"), "--allow-origin", "*", "--allow-credentials")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--allow-origin * cannot be combined with --allow-credentials") {
		t.Errorf("* with credentials: exit %d, stderr %q", r.Code, r.Stderr)
	}

	star := startCors(t, "--allow-origin", "*", "--allow-headers", "*")
	url := "http://" + star.Addr + "/api/items/9"
	out := curlMust(t, "-i", "-H", "Origin: http://any.example", "http://"+star.Addr+"/api/hello")
	if headerOf(out, "Access-Control-Allow-Origin") != "*" || headerOf(out, "Vary") != "Origin" || headerOf(out, "Access-Control-Allow-Credentials") != "" {
		t.Errorf("* policy response:\n%s", out)
	}
	// Without credentials, * covers any origin and any header.
	c := corsCheck(t, "--origin", "http://any.example", "-X", "PUT", "-H", "X-Anything: 1", url)
	if c.Code != 0 {
		t.Errorf("* without credentials: exit %d\n%s", c.Code, c.Stdout)
	}
	wantAll(t, "* without credentials", c.Stdout, "ok    Access-Control-Allow-Headers: * allows x-anything (without credentials)")
	// With credentials, * is not enough: the browser wants the origin named.
	c = corsCheck(t, "--origin", "http://any.example", "--credentials", "-X", "PUT", url)
	if c.Code != 1 {
		t.Errorf("* with credentials: exit %d, want blocked\n%s", c.Code, c.Stdout)
	}
	wantAll(t, "* with credentials", c.Stdout,
		"FAIL  Access-Control-Allow-Origin: * does not cover a request with credentials; the server must name http://any.example", "blocked:")
	c = corsCheck(t, "--origin", "http://any.example", "--credentials", "http://"+star.Addr+"/api/hello")
	if c.Code != 1 || !strings.Contains(c.Stdout, "does not cover a request with credentials") {
		t.Errorf("simple GET with credentials against *: exit %d\n%s", c.Code, c.Stdout)
	}

	// Named origins with credentials: allowed, with Allow-Credentials: true.
	named := startCors(t, "--allow-origin", pageOrigin, "--allow-credentials")
	c = corsCheck(t, "--origin", pageOrigin, "--credentials", "-X", "DELETE", "http://"+named.Addr+"/api/items/1")
	wantAll(t, "named origin with credentials", c.Stdout,
		"ok    Access-Control-Allow-Credentials: true lets the request carry cookies")
	if c.Code != 0 {
		t.Errorf("named origin with credentials: exit %d\n%s", c.Code, c.Stdout)
	}
}

func TestCorsServerAndCheckerMistakes(t *testing.T) {
	srv := startCors(t, "--allow-origin", pageOrigin)
	for _, bad := range []string{"BROKEN\r\n\r\n", "GET /api/hello HTTP/1.1\r\n\r\n", "GET /api/hello HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"} {
		got := rawRoundTrip(t, srv.Addr, bad)
		if !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(got, `{"error":`) {
			t.Errorf("%q answered %q", bad, got)
		}
	}
	if got := curlMust(t, "http://"+srv.Addr+"/api/hello"); !strings.Contains(got, "hello from cors_server.lua") {
		t.Errorf("after bad requests: %q", got)
	}
	if log := srv.Output(); !regexp.MustCompile(`NO-ORIGIN 127\.0\.0\.1:\d+ "GET /api/hello HTTP/1\.1" 200`).MatchString(log) {
		t.Errorf("log:\n%s", log)
	}
	for _, args := range [][]string{
		{"http://x/"},                           // no origin
		{"--origin", "http://a/b", "http://x/"}, // an origin has no path
		{"--origin", pageOrigin},                // no URL
		{"--origin", pageOrigin, "--bogus", "http://x/"},
	} {
		r := corsCheck(t, args...)
		if r.Code != 2 || r.Stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, r.Code, r.Stderr)
		}
	}
	r := corsCheck(t, "--origin", pageOrigin, "http://127.0.0.1:"+freePort(t, "tcp")+"/")
	if r.Code != 3 || !strings.Contains(r.Stdout, "unknown: cannot connect") {
		t.Errorf("no server: exit %d\n%s", r.Code, r.Stdout)
	}
	if s := srv.Stderr(); s != "" {
		t.Errorf("stderr:\n%s", s)
	}
}

// The same request that a policy refuses goes through when the page calls
// a reverse proxy on its own origin: no preflight, no CORS check.
func TestCorsCheckThroughProxyOnOwnOrigin(t *testing.T) {
	api := startCors(t, "--allow-origin", pageOrigin)
	rp := scripttest.Start(t, scripttest.Script("reverse_proxy.lua"), "--port", "0", "--route", "/api/="+api.Addr)
	own := "http://" + rp.Addr
	direct := corsCheck(t, "--origin", own, "-X", "PUT", "-H", "X-Token: 1", "http://"+api.Addr+"/api/items/5")
	if direct.Code != 1 {
		t.Errorf("direct, from an origin the API does not allow: exit %d\n%s", direct.Code, direct.Stdout)
	}
	r := corsCheck(t, "--origin", own, "-X", "PUT", "-H", "X-Token: 1", "-d", "via proxy", own+"/api/items/5")
	if r.Code != 0 {
		t.Fatalf("through the proxy: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	wantAll(t, "through the proxy", r.Stdout, "same origin: the URL is on the page's own origin, so CORS does not apply",
		"  > Origin: "+own, "  < HTTP/1.1 201 Created", "allowed: a page reads its own origin's answers (status 201)")
	waitUntil(t, "the PUT in the API's log", func() bool { return len(logKind(api, "ACTUAL")) == 1 })
	if p := logKind(api, "PREFLIGHT"); len(p) != 1 {
		t.Errorf("only the direct attempt is preflighted, got %q", p)
	}
}
