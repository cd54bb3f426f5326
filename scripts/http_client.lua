-- http_client.lua: HTTP/1.1 on a raw socket, shown the way curl -v shows it.
--
--   sockplay scripts/http_client.lua URL... [-X METHOD] [-H 'Name: value']...
--       [-d BODY | -d @FILE] [-I] [-o FILE] [-L] [-m SECONDS]
--
-- "*" lines say what the client does, "> " lines are the request as sent,
-- "< " lines the response head as received; the empty line that ends each
-- head shows as a bare "> " or "< ". Then the body (or its size when it is
-- binary) and the timings. Several URLs on one host share one connection,
-- as HTTP/1.1 keep-alive allows.

local args = require("args")
local http = require("http")

local USAGE = [[
usage: http_client.lua URL... [options]
  -X METHOD        the request method (default GET, or POST with -d)
  -H 'Name: value' add a request header, or replace a default one;
                   'Name:' with no value removes it
  -d BODY          send BODY (@FILE: the file's contents) as the request body
  -I               HEAD: ask for the headers only
  -o FILE          write the body to FILE instead of showing it
  -L               follow redirects (up to 10)
  -m SECONDS       give up on a connect or read that takes longer (default 30)
Exit status: 0 when a response arrived, whatever its status; 6 no such
host, 7 could not connect, 28 timed out, 1 anything else (as curl).]]

local opts = {urls = {}, headers = {}, timeout = 30}

-- usage_error prints "http_client.lua: msg" and USAGE, and exits with 2.
local function usage_error(msg) args.usage_error("http_client.lua", USAGE, msg) end

-- Each word in turn; value() takes the next word as the option's value.
-- (--help and -h print USAGE and exit.)
for a, value in args.words(arg, "http_client.lua", USAGE) do
  if a == "-X" then opts.method = value():upper()
  elseif a == "-H" then
    local h = value()
    local name, v = h:match("^([^:%s]+):%s*(.-)%s*$")
    if not name then usage_error("-H wants 'Name: value', not " .. h) end
    opts.headers[#opts.headers + 1] = {name, v}
  elseif a == "-d" then opts.data = value()
  elseif a == "-I" then opts.head_only = true
  elseif a == "-o" then opts.output = value()
  elseif a == "-L" then opts.follow = true
  elseif a == "-m" then
    opts.timeout = tonumber(value())
    if not opts.timeout or opts.timeout <= 0 then usage_error("-m needs a number of seconds > 0") end
  elseif a:sub(1, 1) == "-" then usage_error("unknown option " .. a)
  else opts.urls[#opts.urls + 1] = a end
end
if #opts.urls == 0 then usage_error("no URL given") end

if opts.data and opts.data:sub(1, 1) == "@" then
  local data, msg = fs.read(opts.data:sub(2))
  if not data then usage_error("-d " .. opts.data .. ": " .. msg) end
  opts.data = data
end

local function info(fmt, ...) print("* " .. string.format(fmt, ...)) end

-- fail ends the program the way curl does: a message, and an exit status
-- that says what kind of failure it was.
local EXIT = {EAI_NONAME = 6, EAI_NODATA = 6, EAI_AGAIN = 6, EAI_FAIL = 6,
              ECONNREFUSED = 7, EHOSTUNREACH = 7, ENETUNREACH = 7, ETIMEDOUT = 28}
local function fail(msg, code)
  io.stderr:write("http_client.lua: " .. msg .. "\n")
  os.exit(EXIT[code] or 1)
end

local function ms(seconds) return string.format("%.2f ms", seconds * 1000) end

---------------------------------------------------------------------------
-- Connections, kept open between requests to the same host and port.

local conns = {}    -- "host:port" -> {s, id, host, port}
local next_id = 0

-- connect resolves host (the "name lookup") and tries each address in
-- turn. It returns the connection and the lookup and connect times.
local function connect(host, port, t0)
  local key = host .. ":" .. port
  local c = conns[key]
  if c then
    info("Re-using existing connection #%d with host %s", c.id, host)
    return c, 0, 0
  end
  local ok, addrs, msg, code = pcall(dns.resolve, host)
  if not ok then addrs, msg, code = nil, addrs, "EAI_NONAME" end
  if not addrs then fail("Could not resolve host: " .. host .. " (" .. tostring(msg) .. ")", code) end
  local t_lookup = time.monotonic() - t0
  if addrs[1] ~= host then info("Host %s was resolved to %s", host, table.concat(addrs, ", ")) end
  local s
  for _, addr in ipairs(addrs) do
    local shown = addr:find(":") and "[" .. addr .. "]" or addr
    info("  Trying %s:%d...", shown, port)
    s, msg, code = sock.dial_tcp(addr, port, opts.timeout)
    if s then
      info("Connected to %s (%s) port %d (#%d)", host, addr, port, next_id)
      break
    end
    info("connect to %s port %d failed: %s", addr, port, msg)
  end
  if not s then fail(string.format("Failed to connect to %s port %d: %s", host, port, msg), code) end
  s:settimeout(opts.timeout)
  c = {s = s, id = next_id, host = host, port = port, key = key}
  next_id = next_id + 1
  conns[key] = c
  return c, t_lookup, time.monotonic() - t0
end

local function close(c, why)
  info("Closing connection #%d%s", c.id, why and " (" .. why .. ")" or "")
  c.s:close()
  conns[c.key] = nil
end

---------------------------------------------------------------------------
-- The request.

-- request_lines builds the request's head lines: the request line, the
-- default headers (which -H replaces), the extra ones.
local function request_lines(method, u, body)
  local defaults = {{"Host", u.authority}, {"User-Agent", "sockplay-http/0.1"}, {"Accept", "*/*"}}
  if body then
    defaults[#defaults + 1] = {"Content-Length", tostring(#body)}
    if method == "POST" then
      defaults[#defaults + 1] = {"Content-Type", "application/x-www-form-urlencoded"}
    end
  end
  local given = {}
  for _, h in ipairs(opts.headers) do given[h[1]:lower()] = true end
  local lines = {method .. " " .. u.target .. " HTTP/1.1"}
  for _, h in ipairs(defaults) do
    if not given[h[1]:lower()] then lines[#lines + 1] = h[1] .. ": " .. h[2] end
  end
  for _, h in ipairs(opts.headers) do
    if h[2] ~= "" then lines[#lines + 1] = h[1] .. ": " .. h[2] end
  end
  return lines
end

local function show_body(res)
  local body, content_type, how = res.body, res.headers["content-type"], res.how
  if opts.output then
    local ok, msg = fs.write(opts.output, body)
    if not ok then fail("cannot write " .. opts.output .. ": " .. msg, nil) end
    info("%d bytes written to %s", #body, opts.output)
  elseif http.is_binary(content_type, body) then
    info("[%d bytes of binary data (%s) not shown; -o FILE saves them]", #body, content_type or "no Content-Type")
  elseif body ~= "" then
    io.write(body)
    if body:sub(-1) ~= "\n" then io.write("\n") end
  end
  for name, value in pairs(res.trailers or {}) do info("trailer %s: %s", name, value) end
  if how then info("%d bytes of body (%s)", #body, how) else info("no body") end
end

-- exchange sends one request on c and reads the response. It returns the
-- response, or nil and why when the connection failed; fresh says
-- whether any byte of the response came (a reused connection the server
-- had closed fails before that, and is worth one retry).
local function exchange(c, method, u, body, t0, timings)
  local lines = request_lines(method, u, body)
  for _, l in ipairs(lines) do print("> " .. l) end
  print("> ")
  local data = table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
  local ok, msg = c.s:write(data)
  if not ok then return nil, "send failed: " .. msg, true end
  if body then
    if not http.is_binary(nil, body) and body ~= "" then
      io.write(body)
      if body:sub(-1) ~= "\n" then io.write("\n") end
    end
    info("upload completely sent off: %d bytes", #body)
  end

  local res
  repeat
    -- The status line, and with it the time to the first byte.
    local line, msg2, code = c.s:read_until("\n", 8192)
    if not line then
      if code == "ETIMEDOUT" then fail("Operation timed out waiting for the response", code) end
      return nil, "no response: " .. msg2, res == nil
    end
    timings.first = timings.first or time.monotonic() - t0
    line = line:gsub("\r?\n$", "")
    print("< " .. line)
    local version, status, reason = http.parse_status_line(line)
    if not version then return nil, status, false end
    local rest, why = http.read_head_rest(c.s, 65536)
    if not rest then return nil, "bad response head: " .. why, false end
    for _, l in ipairs(rest) do print("< " .. l) end
    print("< ")
    local headers, err = http.parse_headers(rest, 1)
    if not headers then return nil, err, false end
    res = {version = version, status = status, reason = reason, headers = headers}
    -- 1xx responses are interim: the real one follows.
  until status >= 200

  -- How long is the body? (RFC 9112 6.3)
  local h = res.headers
  local length, why = http.body_length(h)
  if method == "HEAD" or res.status == 204 or res.status == 304 then
    res.body = "" -- never a body (RFC 9112 6.3)
  elseif length == "chunked" then
    local sizes = {}
    local body2, trailers = http.read_chunked(c.s, nil, function(n) sizes[#sizes + 1] = n end)
    if not body2 then return nil, "bad chunked body: " .. trailers, false end
    res.trailers = trailers
    table.remove(sizes) -- the last chunk, of size 0
    res.body, res.how = body2, string.format("chunked: %d chunk%s of %s bytes, then the last chunk",
      #sizes, #sizes == 1 and "" or "s", table.concat(sizes, " + "))
  elseif type(length) == "number" then
    local body2, err = c.s:read_exact(length)
    if not body2 then return nil, "body cut short: " .. err, false end
    res.body, res.how = body2, "Content-Length"
  elseif why then
    return nil, why, false
  else
    -- No framing: the body runs until the server closes.
    local body2, err = c.s:read_all()
    if not body2 then return nil, "body cut short: " .. err, false end
    res.body, res.how, res.closed = body2, "until the server closed", true
  end
  return res
end

local REDIRECTS = {[301] = true, [302] = true, [303] = true, [307] = true, [308] = true}

local function fetch(url, method, body, redirects_left)
  local u, err = http.parse_url(url)
  if not u then fail(err, nil) end
  if u.scheme ~= "http" then fail("Protocol \"" .. u.scheme .. "\" not supported: sockplay speaks plain HTTP over TCP", nil) end
  local t0 = time.monotonic()
  local c, t_lookup, t_connect = connect(u.host, u.port, t0)
  local timings = {}
  local res, why, retry = exchange(c, method, u, body, t0, timings)
  if not res and retry and t_connect == 0 then
    -- The server closed the idle connection before our request reached it.
    close(c, why)
    info("Connection died, retrying a fresh connect")
    c, t_lookup, t_connect = connect(u.host, u.port, t0)
    res, why = exchange(c, method, u, body, t0, timings)
  end
  if not res then
    close(c, why)
    fail(why, nil)
  end
  show_body(res)
  local total = time.monotonic() - t0
  info("Timings: name lookup %s, connect %s, first byte %s, total %s", ms(t_lookup), ms(t_connect),
    ms(timings.first or total), ms(total))
  -- May the connection carry another request? (HTTP/1.1: unless the
  -- server said "Connection: close"; HTTP/1.0: only with keep-alive.)
  if http.keeps_alive(res) then
    info("Connection #%d to host %s left intact", c.id, u.host)
  else
    close(c)
  end

  local location = res.headers.location
  if opts.follow and REDIRECTS[res.status] and location then
    if redirects_left == 0 then fail("Maximum (10) redirects followed", nil) end
    local next_url = http.resolve_url(url, location)
    info("Issue another request to this URL: '%s'", next_url)
    -- 301, 302 and 303 turn a POST into a GET without a body, as browsers
    -- (and curl) do; 307 and 308 repeat the request as it was.
    if res.status == 303 or ((res.status == 301 or res.status == 302) and method == "POST") then
      method, body = method == "HEAD" and "HEAD" or "GET", nil
    end
    return fetch(next_url, method, body, redirects_left - 1)
  end
end

local method = opts.method or (opts.head_only and "HEAD") or (opts.data and "POST") or "GET"
for _, url in ipairs(opts.urls) do
  fetch(url, method, opts.data, 10)
end
for _, c in pairs(conns) do
  c.s:close()
end

--[[ Output against http_server.lua --root scripts/testdata/www (scripts/http_test.go
checks it, with the port, dates, ETags and times scrubbed):

$ sockplay scripts/http_client.lua -L http://127.0.0.1:PORT/notes.txt http://127.0.0.1:PORT/docs
*   Trying 127.0.0.1:PORT...
* Connected to 127.0.0.1 (127.0.0.1) port PORT (#0)
> GET /notes.txt HTTP/1.1
> Host: 127.0.0.1:PORT
> User-Agent: sockplay-http/0.1
> Accept: */*
> 
< HTTP/1.1 200 OK
< Date: DATE
< Server: sockplay-http/0.1
< Content-Type: text/plain; charset=utf-8
< Content-Length: 21
< Last-Modified: DATE
< ETag: "ETAG"
< 
plain text, one line
* 21 bytes of body (Content-Length)
* Timings: name lookup N ms, connect N ms, first byte N ms, total N ms
* Connection #0 to host 127.0.0.1 left intact
* Re-using existing connection #0 with host 127.0.0.1
> GET /docs HTTP/1.1
> Host: 127.0.0.1:PORT
> User-Agent: sockplay-http/0.1
> Accept: */*
> 
< HTTP/1.1 301 Moved Permanently
< Date: DATE
< Server: sockplay-http/0.1
< Content-Type: text/plain; charset=utf-8
< Location: /docs/
< Content-Length: 22
< 
301 Moved Permanently
* 22 bytes of body (Content-Length)
* Timings: name lookup N ms, connect N ms, first byte N ms, total N ms
* Connection #0 to host 127.0.0.1 left intact
* Issue another request to this URL: 'http://127.0.0.1:PORT/docs/'
* Re-using existing connection #0 with host 127.0.0.1
> GET /docs/ HTTP/1.1
> Host: 127.0.0.1:PORT
> User-Agent: sockplay-http/0.1
> Accept: */*
> 
< HTTP/1.1 200 OK
< Date: DATE
< Server: sockplay-http/0.1
< Content-Type: text/html; charset=utf-8
< Content-Length: 56
< Last-Modified: DATE
< ETag: "ETAG"
< 
<!doctype html><title>docs</title><p>the docs index</p>
* 56 bytes of body (Content-Length)
* Timings: name lookup N ms, connect N ms, first byte N ms, total N ms
* Connection #0 to host 127.0.0.1 left intact
]]
