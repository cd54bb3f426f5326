-- Unit checks of lib/proxy.lua and lib/cors.lua, run by proxy_test.go as
--   sockplay scripts/testdata/proxy/lib_test.lua
-- Each failed check prints a line; the last line is "N passed, M failed".

package.path = "scripts/lib/?.lua;" .. package.path
local proxy = require("proxy")
local cors = require("cors")

local passed, failed = 0, 0
local function eq(got, want, what)
  if got == want then
    passed = passed + 1
  else
    failed = failed + 1
    print(string.format("FAIL %s: got %s, want %s", what, tostring(got), tostring(want)))
  end
end

local function bytes(s)
  local b = proxy.ip_bytes(s)
  return b and table.concat(b, ".") or "nil"
end

-- Addresses.
eq(bytes("127.0.0.1"), "127.0.0.1", "ipv4")
eq(bytes("256.0.0.1"), "nil", "ipv4 out of range")
eq(bytes("::1"), "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1", "ipv6 loopback")
eq(bytes("::ffff:10.1.2.3"), "10.1.2.3", "ipv4-mapped ipv6 reads as ipv4")
eq(bytes("fe80::1%eth0"), "254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.1", "zone dropped")
eq(bytes("1:2:3:4:5:6:7:8:9"), "nil", "nine groups")
eq(bytes("1::2::3"), "nil", "two ::")
eq(bytes("example.org"), "nil", "a name is no address")

-- CIDR blocks.
local loop = assert(proxy.parse_cidrs(proxy.LOOPBACK))
eq(proxy.allowed(loop, "127.0.0.1") ~= nil, true, "127.0.0.1 in loopback")
eq(proxy.allowed(loop, "127.255.0.9") ~= nil, true, "127.255.0.9 in 127/8")
eq(proxy.allowed(loop, "::1") ~= nil, true, "::1 in loopback")
eq(proxy.allowed(loop, "::ffff:127.0.0.1") ~= nil, true, "mapped loopback")
eq(proxy.allowed(loop, "10.0.0.1"), nil, "10.0.0.1 not loopback")
eq(proxy.allowed(loop, "::2"), nil, "::2 not loopback")
local odd = assert(proxy.parse_cidrs({"192.168.0.0/23", "2001:db8::/33"}))
eq(proxy.allowed(odd, "192.168.1.200") ~= nil, true, "/23 holds .1.200")
eq(proxy.allowed(odd, "192.168.2.1"), nil, "/23 stops before .2.x")
eq(proxy.allowed(odd, "2001:db8:7fff::1") ~= nil, true, "/33 holds 7fff")
eq(proxy.allowed(odd, "2001:db8:8000::1"), nil, "/33 stops before 8000")
eq(proxy.allowed(assert(proxy.parse_cidrs({"0.0.0.0/0"})), "8.8.8.8") ~= nil, true, "/0 holds all")
eq(proxy.parse_cidr("10.0.0.0/33"), nil, "prefix too long")
eq(proxy.parse_cidr("nonsense"), nil, "not a block")

-- Fields.
local f = {"Host", "a", "Connection", "close, X-Trace", "X-Trace", "1", "Keep-Alive", "5",
           "Content-Length", "3", "Via", "1.0 other", "Accept", "*/*"}
local h = {connection = "close, X-Trace"}
local e2e = proxy.end_to_end(f, h)
eq(table.concat(e2e, "|"), "Host|a|Via|1.0 other|Accept|*/*", "hop-by-hop and Connection-named fields go")
proxy.append_field(e2e, "Via", "1.1 me")
eq(proxy.get_field(e2e, "via"), "1.0 other, 1.1 me", "Via appended")
proxy.set_field(e2e, "host", "b")
eq(table.concat(e2e, "|"), "Host|b|Via|1.0 other, 1.1 me|Accept|*/*", "set_field replaces in place")
local dup = {"A", "1", "B", "2", "a", "3"}
proxy.set_field(dup, "A", "9")
eq(table.concat(dup, "|"), "A|9|B|2", "set_field drops later duplicates")

-- Cache-Control.
local cc = proxy.cache_control('max-age=60, No-Cache, private="Set-Cookie", s-maxage = 5')
eq(cc["max-age"], "60", "max-age")
eq(cc["no-cache"], true, "no-cache, any case")
eq(cc.private, "Set-Cookie", "quoted value")
eq(cc["s-maxage"], "5", "spaces around =")
eq(proxy.seconds("60"), 60, "seconds")
eq(proxy.seconds("-1"), nil, "negative seconds")

-- Messages.
local http = require("http")
local res = proxy.read_response(http.string_reader(
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" ..
  "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), "GET")
eq(res and res.status, 200, "1xx skipped")
eq(res and res.body, "abc", "chunked body")
eq(res and res.fields[1] .. "=" .. res.fields[2] .. ";" .. res.fields[3] .. "=" .. res.fields[4],
  "Set-Cookie=a=1;Set-Cookie=b=2", "Set-Cookie lines kept apart")
local _, msg, status = proxy.read_response(http.string_reader(
  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET")
eq(status, 502, "smuggling-shaped response refused: " .. tostring(msg))
local r = http.string_reader("HTTP/1.0 200 OK\r\n\r\nuntil close")
function r:read_all() return self:rest() end -- what a socket's read_all gives at EOF
res = proxy.read_response(r, "GET")
eq(res and res.closed, true, "no framing: read until close")
eq(res and res.body, "until close", "body until close")

-- CORS rules.
local simple, reasons = cors.classify("GET", {})
eq(simple, true, "plain GET is simple")
simple, reasons = cors.classify("POST", {{"Content-Type", "text/plain;charset=UTF-8"}})
eq(simple, true, "POST text/plain is simple")
simple, reasons = cors.classify("POST", {{"Content-Type", "application/json"}})
eq(simple, false, "POST json needs a preflight")
eq(reasons[1]:find("application/json", 1, true) ~= nil, true, "the rule names the type")
simple = cors.classify("PUT", {})
eq(simple, false, "PUT needs a preflight")
simple = cors.classify("GET", {{"X-Token", "1"}})
eq(simple, false, "a custom header needs a preflight")
simple = cors.classify("GET", {{"Accept", "a(b)"}})
eq(simple, false, "an unsafe byte in Accept")
simple = cors.classify("GET", {{"Accept-Language", string.rep("a", 129)}})
eq(simple, false, "a long value")
simple = cors.classify("GET", {{"Host", "x"}, {"Sec-Fetch-Mode", "cors"}})
eq(simple, true, "forbidden headers are the browser's, not the page's")
eq(table.concat(cors.unsafe_names({{"X-B", "1"}, {"Content-Type", "application/json"}, {"x-b", "2"}, {"Accept", "x"}}), ","),
  "content-type,x-b", "Access-Control-Request-Headers: sorted, lower case, once")
eq(cors.parse_origin("HTTP://Example.org:80"), "http://example.org", "origin serialized")
eq(cors.parse_origin("http://a:8080/path"), nil, "an origin has no path")

print(string.format("%d passed, %d failed", passed, failed))
if failed > 0 then os.exit(1) end
