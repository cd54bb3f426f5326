package scripts_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"sockplay/internal/scripttest"
	"sockplay/lua"
)

// FuzzProxyMessages feeds arbitrary bytes to what the proxies parse:
// lib/proxy.lua's request and response readers (as a client or a backend
// might send them), what a relay then does with the fields, and the CIDR,
// origin and CORS rules of lib/cors.lua. A Lua error is a bug: a proxy
// must answer malformed input with an error response, not fail.
func FuzzProxyMessages(f *testing.F) {
	for _, seed := range []string{
		"GET http://127.0.0.1:8080/a?b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
		"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nCache-Control: max-age=60, private=\"x\"\r\nVary: *\r\n\r\n",
		"HTTP/1.0 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nrest of the body",
		"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 99\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"::ffff:127.0.0.1", "10.0.0.0/8", "fe80::1%eth0/64", "http://a.example:80", "",
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	h := lua.New(lua.Options{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
	f.Cleanup(h.Close)
	lib := filepath.Join(scripttest.Root(), "scripts", "lib", "?.lua")
	setup := fmt.Sprintf(`package.path = %s .. ";" .. package.path
local http, proxy, cors = require("http"), require("proxy"), require("cors")
function check(s)
  local function reader()
    local r = http.string_reader(s)
    function r:read_all() return self:rest() end
    return r
  end
  local req, msg, status = proxy.read_request(reader(), {head = 8192, body = 65536, on_continue = function() end})
  if req then
    assert(type(req.method) == "string" and type(req.target) == "string" and type(req.body) == "string")
    local f = proxy.end_to_end(req.fields, req.headers, {expect = true})
    proxy.append_field(f, "X-Forwarded-For", "127.0.0.1")
    proxy.set_field(f, "Host", "h")
    assert(type(proxy.request_bytes(req.method, req.target, f, req.body)) == "string")
    assert(proxy.keeps_alive(req) ~= nil)
  else
    assert(type(msg) == "string", "no message")
    assert(status == nil or type(status) == "number")
  end
  for _, m in ipairs({"GET", "HEAD"}) do
    local res, why = proxy.read_response(reader(), m, 65536)
    if res then
      proxy.cache_control(res.headers["cache-control"])
      proxy.seconds(res.headers.age)
      local out = {status = res.status, fields = proxy.end_to_end(res.fields, res.headers), body = res.body}
      assert(type(proxy.response_bytes(out, m, true)) == "string")
    else
      assert(type(why) == "string", "no reason")
    end
  end
  proxy.parse_cidr(s)
  proxy.allowed(proxy.parse_cidrs(proxy.LOOPBACK), s)
  cors.parse_origin(s)
  cors.classify("GET", {{"X-Any", s}, {"Content-Type", s}, {"Accept-Language", s}, {"Range", s}})
  cors.unsafe_names({{s, s}})
  cors.list(s)
end`, luaString([]byte(lib)))
	if _, err := h.Eval(context.Background(), "setup", setup); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := h.Eval(context.Background(), "fuzz", "check("+luaString(data)+")"); err != nil {
			t.Fatalf("input %q: %v", data, err)
		}
	})
}

// luaString quotes any bytes as a Lua string literal.
func luaString(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range b {
		fmt.Fprintf(&s, "\\%03d", c)
	}
	s.WriteByte('"')
	return s.String()
}
