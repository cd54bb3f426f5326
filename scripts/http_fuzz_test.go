package scripts_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/lua"
)

// Native fuzz tests of the parsers in scripts/lib/http.lua: requests as a
// server reads them (pipelined, with bodies), chunked bodies, CGI
// responses, URLs and dates. Whatever the bytes, a parser returns a
// result or nil and a message; it never raises, and what it returns holds
// together. go test runs the seeds; go test -fuzz FuzzHTTPRequest explores.

// httpChecks are the Lua side of the fuzz tests: each raises when a
// parser breaks its promise.
const httpChecks = `
http = require("http")

function check_request(data)
  local r = http.string_reader(data)
  for _ = 1, 8 do -- pipelined requests, one after another
    local req, msg, status = http.read_request(r, {head = 2048, body = 4096})
    if not req then
      assert(type(msg) == "string", "no message")
      assert(status == nil or (type(status) == "number" and status >= 400 and status < 600), "bad status")
      return
    end
    assert(http.is_token(req.method), "method is not a token")
    assert(req.version == "1.0" or req.version == "1.1", "version " .. tostring(req.version))
    assert(req.path == "*" or req.path:sub(1, 1) == "/", "path " .. req.path)
    for name, value in pairs(req.headers) do
      assert(name == name:lower(), "header name not lower case")
      assert(not value:find("[%z\r\n]"), "control character in a value")
    end
    local cl, te = req.headers["content-length"], req.headers["transfer-encoding"]
    assert(not (cl and te), "both framings accepted")
    if cl then assert(#req.body == tonumber(cl), "body length differs from Content-Length") end
    if not cl and not te then assert(req.body == "", "a body without framing") end
    assert(#req.body <= 4096, "body over the limit")
  end
end

function check_chunked(data)
  local body, trailers = http.read_chunked(http.string_reader(data), 4096)
  if body then
    assert(#body <= 4096, "body over the limit")
    assert(type(trailers) == "table", "no trailers table")
  else
    assert(type(trailers) == "string", "no message")
  end
end

function check_cgi(data)
  local res, err = http.parse_cgi_response(data)
  if not res then assert(type(err) == "string", "no message") return end
  assert(res.status >= 100 and res.status <= 999, "status " .. res.status)
  assert(res.body == "" or data:sub(-#res.body) == res.body, "body is not the end of the output")
  assert(#res.fields % 2 == 0, "fields not in pairs")
  local h = res.headers
  assert(h["content-type"] or h["location"] or h["status"], "no CGI field")
end

function check_url(data)
  local u, err = http.parse_url(data)
  if not u then assert(type(err) == "string", "no message") return end
  assert(u.port >= 1 and u.port <= 65535, "port")
  assert(u.target:sub(1, 1) == "/", "target " .. u.target)
  assert(u.host ~= "", "empty host")
  local dec = http.percent_decode(data)
  assert(dec == nil or type(dec) == "string")
end

function check_date(data)
  local t = http.parse_date(data)
  if t then
    local s = http.date(t)
    assert(http.parse_date(s) == t, "date " .. s .. " does not read back")
  end
end
`

// fuzzHost is a Lua host with the checks loaded and require("http")
// finding scripts/lib.
func fuzzHost(tb testing.TB) *lua.Host {
	var out bytes.Buffer
	h := lua.New(lua.Options{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out})
	tb.Cleanup(h.Close)
	h.SetScriptPath(filepath.Join(scripttest.Root(), "scripts", "http_server.lua"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.Eval(ctx, "http_checks", httpChecks); err != nil {
		tb.Fatalf("loading the checks: %s", lua.FormatError(err))
	}
	return h
}

// runCheck calls the Lua function check(data) and fails t if it raised.
func runCheck(t *testing.T, h *lua.Host, check, data string) {
	h.SetArgs("fuzz", "fuzz", []string{data})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.Eval(ctx, check, check+"(arg[1])"); err != nil {
		t.Errorf("%s(%q): %s", check, data, lua.FormatError(err))
	}
}

func FuzzHTTPRequest(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a?b=c HTTP/1.0\r\n\r\nGET /b HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\nHost: bare-lf\n\n",
		"POST /cgi-bin/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext\r\nhello\r\n0\r\nTrailer: t\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://example.org?q HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nX: 1\r\nx:  2 \t\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/2.0\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: \x00\r\n\r\n",
		"",
	} {
		f.Add(seed)
	}
	h := fuzzHost(f)
	f.Fuzz(func(t *testing.T, data string) { runCheck(t, h, "check_request", data) })
}

func FuzzHTTPChunked(f *testing.F) {
	for _, seed := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"1a;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\n\r\n",
		"5\nhello\n0\n\n",
		"fffffffff\r\n",
		"5\r\nhelloXX0\r\n\r\n",
		"0\r\n",
		"-1\r\n\r\n",
		"1001\r\n" + strings.Repeat("x", 4097) + "\r\n0\r\n\r\n",
	} {
		f.Add(seed)
	}
	h := fuzzHost(f)
	f.Fuzz(func(t *testing.T, data string) { runCheck(t, h, "check_chunked", data) })
}

func FuzzCGIResponse(f *testing.F) {
	for _, seed := range []string{
		"Content-Type: text/plain\n\nhello\n",
		"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n<p>no</p>",
		"Location: /elsewhere\n\n",
		"Status: 99 Low\n\n",
		"Status: 200\nX-A: 1\nX-A: 2\n\n",
		"no colon here\n\nbody",
		"Content-Type: text/plain",
		"\n\nbody",
		"X-Only: field\n\n",
	} {
		f.Add(seed)
	}
	h := fuzzHost(f)
	f.Fuzz(func(t *testing.T, data string) { runCheck(t, h, "check_cgi", data) })
}

func FuzzURL(f *testing.F) {
	for _, seed := range []string{
		"http://example.org/", "http://[::1]:8080/a?b#c", "localhost:80", "https://h", "http://h:0/",
		"http://h:99999/", "http://user:pw@h/", "ftp://h/", "http://", "/just/a/path", "a%zz", "%41%2f",
	} {
		f.Add(seed)
	}
	h := fuzzHost(f)
	f.Fuzz(func(t *testing.T, data string) { runCheck(t, h, "check_url", data) })
}

func FuzzHTTPDate(f *testing.F) {
	for _, seed := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
		"Thu, 01 Jan 1970 00:00:00 GMT", "Mon, 31 Feb 2000 23:59:60 GMT", "Xxx, 99 Foo 0000 00:00:00 GMT",
	} {
		f.Add(seed)
	}
	h := fuzzHost(f)
	f.Fuzz(func(t *testing.T, data string) { runCheck(t, h, "check_date", data) })
}
