-- proxy.lua: what a program between client and server needs on top of
-- lib/http.lua. forward_proxy.lua, reverse_proxy.lua and cors_check.lua
-- use it.
--
-- A proxy reads a message from one side and writes it to the other, so it
-- must keep what it does not understand: header fields in their order and
-- spelling (http.read_request files them by lower-case name, which a server
-- needs and a relay loses), Set-Cookie lines apart. It must also drop what
-- belongs to one connection only, the hop-by-hop fields (Connection,
-- Keep-Alive, Transfer-Encoding ...), and frame the body anew for its own
-- connection. And it must not be an open door: addresses are checked
-- against CIDR lists before it serves a client or connects anywhere.

local http = require("http")

local proxy = {}

---------------------------------------------------------------------------
-- IP addresses and CIDR blocks. An address is compared as its bytes: 4 for
-- IPv4, 16 for IPv6; "10.0.0.0/8" matches the addresses whose first 8 bits
-- are those of 10.0.0.0.

local function ipv4_bytes(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local out = {tonumber(a), tonumber(b), tonumber(c), tonumber(d)}
  for _, n in ipairs(out) do
    if n > 255 then return nil end
  end
  return out
end

local function hex_groups(part)
  local groups = {}
  if part == "" then return groups end
  for g in (part .. ":"):gmatch("([^:]*):") do
    if not g:match("^%x%x?%x?%x?$") then return nil end
    groups[#groups + 1] = tonumber(g, 16)
  end
  return groups
end

local function ipv6_bytes(s)
  s = s:gsub("%%.*$", "") -- a zone: fe80::1%eth0
  local tail
  local head, v4 = s:match("^(.*:)(%d+%.%d+%.%d+%.%d+)$") -- ::ffff:1.2.3.4
  if v4 then
    tail = ipv4_bytes(v4)
    if not tail then return nil end
    s = head .. "0:0"
  end
  local groups
  local left, right = s:match("^(.-)::(.*)$")
  if left then
    local l, r = hex_groups(left), hex_groups(right)
    if not l or not r or #l + #r > 7 then return nil end
    groups = l
    for _ = 1, 8 - #l - #r do groups[#groups + 1] = 0 end
    for _, g in ipairs(r) do groups[#groups + 1] = g end
  else
    groups = hex_groups(s)
    if not groups or #groups ~= 8 then return nil end
  end
  local out = {}
  for _, g in ipairs(groups) do
    out[#out + 1] = math.floor(g / 256)
    out[#out + 1] = g % 256
  end
  if tail then
    for i = 1, 4 do out[12 + i] = tail[i] end
  end
  return out
end

-- ip_bytes("127.0.0.1") -> {127, 0, 0, 1}; an IPv4 address mapped into
-- IPv6 (::ffff:127.0.0.1, as a dual-stack listener reports its IPv4
-- peers) is read as the IPv4 address it is. nil when s is no address.
function proxy.ip_bytes(s)
  local b = ipv4_bytes(s)
  if b then return b end
  b = s:find(":") and ipv6_bytes(s)
  if not b then return nil end
  local mapped = true
  for i = 1, 10 do
    if b[i] ~= 0 then mapped = false end
  end
  if mapped and b[11] == 255 and b[12] == 255 then
    return {b[13], b[14], b[15], b[16]}
  end
  return b
end

-- parse_cidr("10.0.0.0/8") -> {text, bytes, bits}; a bare address is a
-- block of one. nil, message when it is neither.
function proxy.parse_cidr(text)
  local addr, bits = text:match("^([^/]+)/(%d+)$")
  addr = addr or text
  local bytes = proxy.ip_bytes(addr)
  if not bytes then return nil, "not an IP address or CIDR block: " .. text end
  local max = #bytes * 8
  bits = tonumber(bits) or max
  if bits > max then return nil, "prefix /" .. bits .. " is longer than the address in " .. text end
  return {text = text, bytes = bytes, bits = bits}
end

-- parse_cidrs turns a list of texts into blocks, or nil, message.
function proxy.parse_cidrs(list)
  local out = {}
  for _, text in ipairs(list) do
    local c, msg = proxy.parse_cidr(text)
    if not c then return nil, msg end
    out[#out + 1] = c
  end
  return out
end

local function in_block(c, bytes)
  if #c.bytes ~= #bytes then return false end
  local bits = c.bits
  for i = 1, #bytes do
    if bits <= 0 then return true end
    if bits >= 8 then
      if bytes[i] ~= c.bytes[i] then return false end
    else
      local span = 2 ^ (8 - bits)
      return math.floor(bytes[i] / span) == math.floor(c.bytes[i] / span)
    end
    bits = bits - 8
  end
  return true
end

-- allowed(blocks, "127.0.0.1") -> the first block holding the address, or nil.
function proxy.allowed(blocks, addr)
  local bytes = proxy.ip_bytes(addr)
  if not bytes then return nil end
  for _, c in ipairs(blocks) do
    if in_block(c, bytes) then return c end
  end
  return nil
end

proxy.LOOPBACK = {"127.0.0.0/8", "::1/128"}

-- blocked_by(list, host) -> the entry of list that host is, or is under
-- ("www.ads.example" with "ads.example"), or nil: a filtering proxy's
-- --block. Case, a trailing dot and an IPv6 literal's brackets do not count.
function proxy.blocked_by(list, host)
  host = host:lower():gsub("%.$", ""):gsub("^%[(.*)%]$", "%1")
  for _, b in ipairs(list) do
    b = b:lower():gsub("^%.", ""):gsub("%.$", "")
    if host == b or host:sub(-#b - 1) == "." .. b then return b end
  end
  return nil
end

---------------------------------------------------------------------------
-- Header fields as a relay keeps them: a flat list {name1, value1, name2,
-- value2, ...} in the order they came (http.head writes it), and beside it
-- the lower-case table of http.parse_headers for looking things up.

-- parse_fields(lines, first) -> fields, headers | nil, message
function proxy.parse_fields(lines, first)
  local fields, headers = {}, {}
  for i = first, #lines do
    local name, value = http.parse_header_line(lines[i])
    if not name then return nil, value .. ": " .. lines[i] end
    fields[#fields + 1] = name
    fields[#fields + 1] = value
    http.add_header(headers, name, value)
  end
  return fields, headers
end

-- These fields describe one connection, not the message: a proxy never
-- passes them on (RFC 9110 7.6.1). Proxy-Authorization is for this proxy,
-- Proxy-Connection is an old, never standard Connection.
proxy.HOP_BY_HOP = {
  connection = true, ["keep-alive"] = true, ["proxy-connection"] = true,
  ["proxy-authenticate"] = true, ["proxy-authorization"] = true, te = true,
  trailer = true, ["transfer-encoding"] = true, upgrade = true,
}

-- end_to_end(fields, headers, drop) -> the fields without the hop-by-hop
-- ones, those the Connection field names ("Connection: close, X-Trace"
-- makes X-Trace hop-by-hop too), Content-Length (the relay frames the
-- body itself) and those in drop (a set of lower-case names).
function proxy.end_to_end(fields, headers, drop)
  local named = {}
  for token in (headers.connection or ""):gmatch("[^,%s]+") do named[token:lower()] = true end
  local out = {}
  for i = 1, #fields, 2 do
    local key = fields[i]:lower()
    if not (proxy.HOP_BY_HOP[key] or named[key] or key == "content-length" or (drop and drop[key])) then
      out[#out + 1] = fields[i]
      out[#out + 1] = fields[i + 1]
    end
  end
  return out
end

-- set_field gives the field called name one value, where it stood first
-- (later ones go), or adds it at the end.
function proxy.set_field(fields, name, value)
  local key = name:lower()
  for i = 1, #fields, 2 do
    if fields[i]:lower() == key then
      fields[i + 1] = value
      local j = i + 2
      while j <= #fields do
        if fields[j]:lower() == key then
          table.remove(fields, j)
          table.remove(fields, j)
        else
          j = j + 2
        end
      end
      return
    end
  end
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end

-- remove_fields drops the fields whose lower-case names are in set.
function proxy.remove_fields(fields, set)
  local j = 1
  for i = 1, #fields, 2 do
    if not set[fields[i]:lower()] then
      fields[j], fields[j + 1] = fields[i], fields[i + 1]
      j = j + 2
    end
  end
  for k = #fields, j, -1 do fields[k] = nil end
end

-- get_field(fields, name) -> the values of the fields called name, joined
-- with ", " as http.add_header joins them; nil when there is none.
function proxy.get_field(fields, name)
  local key, out = name:lower(), nil
  for i = 1, #fields, 2 do
    if fields[i]:lower() == key then
      out = out and out .. ", " .. fields[i + 1] or fields[i + 1]
    end
  end
  return out
end

-- append_field adds value to a list-valued field (Via, X-Forwarded-For):
-- "a" becomes "a, value", as each proxy on the way adds itself.
function proxy.append_field(fields, name, value)
  local old = proxy.get_field(fields, name)
  proxy.set_field(fields, name, old and old .. ", " .. value or value)
end

---------------------------------------------------------------------------
-- Reading messages. A reader failure comes back as nil, message, status,
-- got_any like lib/http.lua's: status 408 means it timed out, nil that the
-- peer closed (or reset) before a byte of this message.

-- read_request(r, limits) -> {method, target, version, line, fields,
-- headers, body} | nil, message, status, got_any, partial_request.
-- limits: {head = bytes, body = bytes, on_continue = fn(req)}.
function proxy.read_request(r, limits)
  local lines, msg, status, got = http.read_head(r, limits.head or 8192)
  if not lines then return nil, msg, status, got end
  local method, target, version = http.parse_request_line(lines[1])
  if not method then return nil, target, version, true end
  local req = {line = lines[1], method = method, target = target, version = version}
  local fields, headers = proxy.parse_fields(lines, 2)
  if not fields then return nil, headers, 400, true, req end
  req.fields, req.headers = fields, headers
  if version == "1.1" and not headers.host then
    return nil, "HTTP/1.1 request without Host", 400, true, req
  end
  local length, why, why_status = http.body_length(headers)
  if why then return nil, why, why_status, true, req end
  if length and length ~= 0 and (headers.expect or ""):lower() == "100-continue" then
    if type(length) == "number" and limits.body and length > limits.body then
      return nil, "body too large", 413, true, req
    end
    if limits.on_continue then limits.on_continue(req) end
  end
  local body
  body, msg, status = http.read_body(r, headers, limits.body)
  if not body then return nil, msg, status or 400, true, req end
  req.body = body
  return req
end

-- No body, whatever the headers say (RFC 9112 6.3).
function proxy.bodiless(method, status)
  return method == "HEAD" or status < 200 or status == 204 or status == 304
end

-- read_response(r, method, max_body) -> {version, status, reason, line,
-- fields, headers, body, closed} | nil, message, status, got_any.
-- closed: the body ran until the server closed, so the connection is done.
-- Interim 1xx responses are read and skipped.
function proxy.read_response(r, method, max_body)
  local res
  repeat
    local lines, msg, status, got = http.read_head(r, 65536)
    if not lines then return nil, msg, status, got or res ~= nil end
    local version, code, reason = http.parse_status_line(lines[1])
    if not version then return nil, code, 502, true end
    local fields, headers = proxy.parse_fields(lines, 2)
    if not fields then return nil, headers, 502, true end
    res = {version = version, status = code, reason = reason, line = lines[1],
           fields = fields, headers = headers}
  until res.status >= 200
  if proxy.bodiless(method, res.status) then
    res.body = ""
    return res
  end
  local length, why = http.body_length(res.headers)
  if why then return nil, why, 502, true end
  if length == nil then
    -- Without framing the body runs until the server closes.
    local body, msg, code, partial = r:read_all()
    if not body then
      if code == "ETIMEDOUT" then return nil, "timed out in the body", 408, true end
      body = partial or ""
    end
    if max_body and #body > max_body then return nil, "response body too large", 502, true end
    res.body, res.closed = body, true
    return res
  end
  if type(length) == "number" and max_body and length > max_body then
    return nil, "response body too large", 502, true
  end
  local body, msg, status = http.read_body(r, res.headers, max_body)
  if not body then return nil, msg, status == 408 and 408 or 502, true end
  res.body = body
  return res
end

-- keeps_alive(msg): may the connection carry another message after this
-- one? (lib/http.lua's: Connection, the version, msg.closed)
proxy.keeps_alive = http.keeps_alive

---------------------------------------------------------------------------
-- Writing messages.

-- request_bytes(method, target, fields, body) -> the request, ready to
-- write, framed with Content-Length when it has a body.
function proxy.request_bytes(method, target, fields, body)
  local f = fields
  if body and (#body > 0 or method == "POST" or method == "PUT" or method == "PATCH") then
    f = {}
    for i = 1, #fields do f[i] = fields[i] end
    f[#f + 1] = "Content-Length"
    f[#f + 1] = tostring(#body)
  end
  return http.head(method .. " " .. target .. " HTTP/1.1\r\n", f) .. (body or "")
end

-- response_bytes(res, method, keep) -> the response for a client: res.fields
-- must hold no framing; Content-Length is added (for HEAD, res.length: the
-- size the GET would have), and "Connection: close" unless keep.
function proxy.response_bytes(res, method, keep)
  local f = {}
  for i = 1, #res.fields do f[i] = res.fields[i] end
  local status = res.status
  if not (status < 200 or status == 204 or status == 304) then
    local n = method == "HEAD" and res.length or #(res.body or "")
    if n then
      f[#f + 1] = "Content-Length"
      f[#f + 1] = tostring(n)
    end
  end
  if not keep then
    f[#f + 1] = "Connection"
    f[#f + 1] = "close"
  end
  local head = http.head(http.status_line(status, res.reason), f)
  if proxy.bodiless(method, status) then return head end
  return head .. (res.body or "")
end

-- error_response(status, detail [, fields]) -> a response the proxy makes
-- itself, with a short text body that says what went wrong.
function proxy.error_response(status, detail, fields)
  local f = {"Date", http.date_now(), "Content-Type", "text/plain; charset=utf-8"}
  for i = 1, #(fields or {}) do f[#f + 1] = fields[i] end
  local body = status .. " " .. (http.REASONS[status] or "Error") .. "\n" .. (detail and detail .. "\n" or "")
  return {status = status, fields = f, body = body}
end

---------------------------------------------------------------------------
-- Connecting out, only where allowed.

-- dial(host, port, blocks, timeout) -> socket, address | nil, message,
-- status. The name is resolved first and every address checked against
-- blocks, so that a name cannot smuggle the proxy to a place its numbers
-- would not be let through. status says how to answer the client: 403
-- not allowed, 502 no such host or refused, 504 timed out.
function proxy.dial(host, port, blocks, timeout)
  local name = host:gsub("^%[(.*)%]$", "%1")
  local ok, addrs, msg = pcall(dns.resolve, name)
  if not ok then addrs, msg = nil, addrs end
  if not addrs then return nil, "cannot resolve " .. name .. ": " .. tostring(msg), 502 end
  local last, last_status = nil, 502
  local tried = 0
  for _, addr in ipairs(addrs) do
    if proxy.allowed(blocks, addr) then
      tried = tried + 1
      local s, err, code = sock.dial_tcp(addr, port, timeout)
      if s then return s, addr end
      last = string.format("connect to %s port %d: %s", addr, port, err)
      last_status = code == "ETIMEDOUT" and 504 or 502
    end
  end
  if tried == 0 then
    return nil, string.format("%s (%s) is not a destination this proxy may connect to",
      name, table.concat(addrs, ", ")), 403
  end
  return nil, last, last_status
end

---------------------------------------------------------------------------
-- Cache-Control: "max-age=60, no-cache, private" -> {["max-age"] = "60",
-- ["no-cache"] = true, private = true}. Names are case-insensitive; a
-- quoted value loses its quotes.
function proxy.cache_control(value)
  local out = {}
  if not value then return out end
  for item in value:gmatch("[^,]+") do
    local name, v = item:match("^%s*([^=%s]+)%s*=%s*(.-)%s*$")
    if name then
      out[name:lower()] = v:gsub('^"(.*)"$', "%1")
    else
      name = item:match("^%s*(.-)%s*$")
      if name ~= "" then out[name:lower()] = true end
    end
  end
  return out
end

-- seconds(v) reads a delta-seconds value ("60"); nil when it is not one.
function proxy.seconds(v)
  if type(v) ~= "string" or not v:match("^%d+$") then return nil end
  return tonumber(v)
end

---------------------------------------------------------------------------
-- Serving a client connection: what forward_proxy.lua and
-- reverse_proxy.lua do alike around each request.

-- next_request(c, limits, peer, log) -> the next request from the client
-- on c (read_request's limits), or nil when the connection is done. A
-- broken request is answered with its error status (400, 408, 413 ...)
-- and logged with log(fmt, ...) first; nothing is sent when the client
-- closed or went quiet between requests.
function proxy.next_request(c, limits, peer, log)
  local req, msg, status, got, partial = proxy.read_request(c, limits)
  if not req and status and got then
    c:write(proxy.response_bytes(proxy.error_response(status, msg), partial and partial.method, false))
    log('%s "%s" %d %s', peer, proxy.printable(partial and partial.line), status, msg)
  end
  return req
end

-- internal_error(script, req, err) reports a Lua error raised while
-- handling req (a bug) on stderr and returns the 500 for the client.
function proxy.internal_error(script, req, err)
  io.stderr:write(script .. ": " .. proxy.printable(req.line) .. ": " .. tostring(err) .. "\n")
  return proxy.error_response(500, "the proxy failed on this request")
end

-- handle(script, req, fn, ...) -> res, note, failed: fn(...)'s response
-- and log note for req, or, when fn raised an error (a bug), the 500
-- internal_error makes and failed = true: the connection should close.
function proxy.handle(script, req, fn, ...)
  local ok, res, note = pcall(fn, ...)
  if not ok then return proxy.internal_error(script, req, res), nil, true end
  return res, note, false
end

---------------------------------------------------------------------------
-- Logs.

-- printable keeps a log line on one line whatever a client sent
-- (lib/http.lua's).
proxy.printable = http.printable

function proxy.ms(seconds)
  return string.format("%.1fms", seconds * 1000)
end

-- access_line(peer, req, res, started, note) -> the access log's line for
-- one request: 'PEER "REQUEST LINE" STATUS BODY-BYTES TIME [NOTE]', the
-- time counted from started (time.monotonic()).
function proxy.access_line(peer, req, res, started, note)
  return string.format('%s "%s" %d %d %s%s', peer, proxy.printable(req.line), res.status, #(res.body or ""),
    proxy.ms(time.monotonic() - started), note and " " .. note or "")
end

return proxy
