-- forward_proxy.lua: an HTTP forward proxy, the kind a browser or curl is
-- configured to use, on the client's side of the network.
--
--   sockplay scripts/forward_proxy.lua [--port 3128] [--block HOST]...
--       [--anonymous] [--allow CIDR]... [--allow-dest CIDR]...
--   curl -x http://127.0.0.1:3128 http://127.0.0.1:8080/       (plain HTTP)
--   curl -p -x http://127.0.0.1:3128 http://127.0.0.1:8080/    (a CONNECT tunnel)
--
-- A client that uses a proxy sends it the whole URL, the "absolute form":
--   GET http://127.0.0.1:8080/index.html HTTP/1.1
-- The proxy connects to 127.0.0.1:8080 itself, sends "GET /index.html",
-- and relays the answer. On the way it adds Via (a proxy was here) and
-- X-Forwarded-For (for whom), and drops the fields that belong to one
-- connection only. --anonymous leaves out X-Forwarded-For and removes
-- what identifies the client (Cookie, Referer, From, User-Agent ...): the
-- server sees the proxy's address and nothing else. --block HOST answers
-- 403 for a host and its subdomains: content filtering.
--
-- For HTTPS the proxy cannot read the request: the client asks
--   CONNECT example.org:443 HTTP/1.1
-- and, after "200 Connection Established", the connection is a tunnel:
-- bytes go through both ways untouched until one side closes.
--
-- Not an open proxy: it listens on 127.0.0.1, serves only clients whose
-- address is in an --allow block and connects only to addresses in an
-- --allow-dest block (both loopback unless given).

local args = require("args")
local http = require("http")
local proxy = require("proxy")
local server = require("server")

local spec = {
  usage = "forward_proxy.lua [--host H] [--port P] [options]",
  about = "HTTP forward proxy: absolute-form requests and CONNECT tunnels, with an access log.",
  options = {
    {"host", "127.0.0.1", "address to listen on"},
    {"port", 3128, "port to listen on (0: any free port)"},
    {"allow", {}, "serve clients from this CIDR block (repeatable; default loopback only)"},
    {"allow-dest", {}, "connect only to addresses in this CIDR block (repeatable; default loopback only; 0.0.0.0/0 and ::/0 for anywhere)"},
    {"block", {}, "answer 403 for this host and its subdomains (repeatable)"},
    {"anonymous", false, "no X-Forwarded-For; strip Cookie, Referer, From, User-Agent, Forwarded, X-Real-IP"},
    {"timeout", 30, "seconds a client connection may stay idle"},
    {"connect-timeout", 10, "seconds to connect to a server"},
    {"upstream-timeout", 30, "seconds a server has to answer"},
    {"tunnel-idle", 300, "seconds a CONNECT tunnel may carry nothing either way"},
    {"max-body", 16 * 1024 * 1024, "largest request or response body relayed"},
    {"max-conns", 256, "client connections at once; more get 503"},
    {"quiet", false, "no access log"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)
if #opt._ > 0 then
  io.stderr:write("forward_proxy.lua: unexpected argument " .. opt._[1] .. " (try --help)\n")
  os.exit(2)
end

local function blocks_or_exit(list, name)
  if #list == 0 then list = proxy.LOOPBACK end
  local blocks, msg = proxy.parse_cidrs(list)
  if not blocks then
    io.stderr:write("forward_proxy.lua: --" .. name .. ": " .. msg .. "\n")
    os.exit(2)
  end
  return blocks
end
local CLIENTS = blocks_or_exit(opt.allow, "allow")
local DESTS = blocks_or_exit(opt["allow-dest"], "allow-dest")

-- blocked("www.ads.example") is true with --block ads.example.
local function blocked(host) return proxy.blocked_by(opt.block, host) end

local VIA = "1.1 sockplay-forward-proxy"

-- Fields that tell the server who the client is, gone with --anonymous.
local IDENTIFYING = {
  cookie = true, referer = true, from = true, ["user-agent"] = true,
  forwarded = true, ["x-forwarded-for"] = true, ["x-real-ip"] = true,
  ["client-ip"] = true, ["x-client-ip"] = true,
}

local function log(fmt, ...)
  if not opt.quiet then print(string.format(fmt, ...)) end
end

---------------------------------------------------------------------------
-- A client connection. The task serving it is named "client fd N", so
-- the connections it opens to servers carry that name in the descriptor
-- table (fds(), or .fds in the REPL): which server connection serves which
-- client is there to read.

local function send(c, res, method, keep)
  return c:write(proxy.response_bytes(res, method, keep))
end

-- A CONNECT tunnel: two pumps, one each way, until both directions end.
-- When one side stops sending, its "write" half is shut on the other
-- side, so each end sees end of stream as it would without a proxy.
local function pump(from, to, state, dir)
  while true do
    local data, _, code = from:read(65536)
    if data then
      state.last = time.monotonic()
      state[dir] = state[dir] + #data
      if not to:write(data) then break end
    elseif code == "ETIMEDOUT" and time.monotonic() - state.last < opt["tunnel-idle"] then
      -- Quiet this way, but the other way moved: the tunnel is alive.
    else
      break
    end
  end
  to:shutdown("w")
end

local function tunnel(c, conn, req, started)
  local target = req.target
  local host, port = target:match("^%[([%x:.]+)%]:(%d+)$")
  if not host then host, port = target:match("^([^:/@]+):(%d+)$") end
  port = tonumber(port)
  if not host or not port or port < 1 or port > 65535 then
    send(c, proxy.error_response(400, "CONNECT wants host:port, not " .. target), "CONNECT", false)
    return 400
  end
  if blocked(host) then
    send(c, proxy.error_response(403, host .. " is blocked by this proxy"), "CONNECT", false)
    return 403, "blocked"
  end
  local up, err, status = proxy.dial(host, port, DESTS, opt["connect-timeout"])
  if not up then
    send(c, proxy.error_response(status, err), "CONNECT", false)
    return status, err
  end
  log("link client fd %d (%s) <-> server fd %d (%s:%d) tunnel", c.fd, conn.peer, up.fd, host, port)
  local ok = c:write("HTTP/1.1 200 Connection Established\r\nVia: " .. VIA .. "\r\n\r\n")
  if not ok then
    up:close()
    return 200, "client gone"
  end
  local tick = math.min(opt["tunnel-idle"], 5)
  c:settimeout(tick)
  up:settimeout(tick)
  local state = {last = time.monotonic(), up = 0, down = 0}
  local back = spawn{pump, up, c, state, "down", name = string.format("tunnel fd %d -> fd %d", up.fd, c.fd)}
  pump(c, up, state, "up")
  wait(back)
  up:close()
  return 200, string.format("tunnel fd %d <-> fd %d: %d bytes up, %d down, %s",
    c.fd, up.fd, state.up, state.down, proxy.ms(time.monotonic() - started))
end

-- upstream(conn, key, host, port) -> the kept connection to host:port, or
-- a new one; only one is kept, the last used (keep-alive on this side).
local function upstream(c, conn, host, port)
  local key = host:lower() .. ":" .. port
  if conn.up and conn.up_key == key then return conn.up, true end
  if conn.up then conn.up:close() end
  conn.up, conn.up_key = nil, nil
  local s, err, status = proxy.dial(host, port, DESTS, opt["connect-timeout"])
  if not s then return nil, err, status end
  s:settimeout(opt["upstream-timeout"])
  log("link client fd %d (%s) <-> server fd %d (%s:%d)", c.fd, conn.peer, s.fd, host, port)
  conn.up, conn.up_key = s, key
  return s, false
end

local function drop_upstream(conn)
  if conn.up then conn.up:close() end
  conn.up, conn.up_key = nil, nil
end

-- forward relays one absolute-form request. Returns the response to send.
local function forward(c, conn, req)
  local u, err = http.parse_url(req.target)
  if not u then return proxy.error_response(400, err) end
  if u.scheme ~= "http" then
    return proxy.error_response(501, "this proxy fetches http:// URLs; for https, CONNECT (curl -p, or any browser)")
  end
  if blocked(u.host) then return proxy.error_response(403, u.host .. " is blocked by this proxy"), "blocked" end

  local drop = opt.anonymous and IDENTIFYING or nil
  local fields = proxy.end_to_end(req.fields, req.headers, drop)
  proxy.remove_fields(fields, {expect = true})
  proxy.set_field(fields, "Host", u.authority) -- the URL's, whatever the client said
  proxy.append_field(fields, "Via", VIA)
  if not opt.anonymous then proxy.append_field(fields, "X-Forwarded-For", conn.peer_host) end
  local data = proxy.request_bytes(req.method, u.target, fields, req.body)

  for attempt = 1, 2 do
    local up, reused_or_err, status = upstream(c, conn, u.host, u.port)
    if not up then return proxy.error_response(status, reused_or_err), reused_or_err end
    local res, why, code, got
    if up:write(data) then
      res, why, code, got = proxy.read_response(up, req.method, opt["max-body"])
    else
      why, got = "write to the server failed", false
    end
    if res then
      res.length = tonumber(res.headers["content-length"])
      if not proxy.keeps_alive(res) then drop_upstream(conn) end
      local out = proxy.end_to_end(res.fields, res.headers)
      proxy.append_field(out, "Via", VIA)
      return {status = res.status, reason = res.reason, fields = out, body = res.body, length = res.length},
        string.format("server fd %d", up.fd)
    end
    drop_upstream(conn)
    -- A kept connection the server had closed before our request: once
    -- more on a fresh one. Otherwise the server failed us.
    if not (reused_or_err and not got and attempt == 1) then
      if code == 408 then
        return proxy.error_response(504, string.format("%s:%d did not answer within %gs", u.host, u.port, opt["upstream-timeout"])), why
      end
      return proxy.error_response(502, string.format("%s:%d: %s", u.host, u.port, why)), why
    end
  end
end

local function serve(c, peer_host, peer_port)
  local conn = {peer_host = peer_host, peer = string.format("%s:%d", peer_host, peer_port)}
  c:settimeout(opt.timeout)
  local limits = {head = 16384, body = opt["max-body"],
                  on_continue = function() c:write("HTTP/1.1 100 Continue\r\n\r\n") end}
  while true do
    local started = time.monotonic()
    -- (A broken request is answered and logged by next_request.)
    local req = proxy.next_request(c, limits, conn.peer, log)
    if not req then break end
    local keep = proxy.keeps_alive(req)
      and not http.has_token(req.headers["proxy-connection"], "close")
    if req.method == "CONNECT" then
      local code, note = tunnel(c, conn, req, started)
      log('%s "%s" %d %s', conn.peer, proxy.printable(req.line), code, note or "")
      break
    end
    local res, note
    if req.target:sub(1, 1) == "/" or req.target == "*" then
      res = proxy.error_response(400, "this is a proxy: send the whole URL (GET http://host:port/path), as curl -x does")
    else
      local failed
      res, note, failed = proxy.handle("forward_proxy.lua", req, forward, c, conn, req)
      if failed then
        keep = false
        drop_upstream(conn)
      end
    end
    local ok = send(c, res, req.method, keep)
    log("%s", proxy.access_line(conn.peer, req, res, started, note))
    if not ok or not keep then break end
  end
  drop_upstream(conn)
  c:close()
end

---------------------------------------------------------------------------

-- Listen, and print "listening on HOST:PORT" (or exit saying why not).
local listener, host, port = server.listen("forward_proxy.lua", opt.host, opt.port)

local active = 0

local function refuse(c, peer, status, why)
  c:settimeout(1)
  http.read_head(c, 16384) -- read the request, so that closing does not reset the reply
  c:write(proxy.response_bytes(proxy.error_response(status, why), "GET", false))
  log("%s refused: %d %s", peer, status, why)
  c:close()
end

-- The accept loop runs as a task of its own, so that with sockplay -i the
-- REPL comes up beside the running proxy (.fds, .tasks).
spawn{function()
  while true do
    local c, peer_host, peer_port = listener:accept()
    if not c then
      if peer_port == "EMFILE" or peer_port == "ENFILE" then sleep(0.1) end
    else
      local peer = string.format("%s:%d", peer_host, peer_port)
      if not proxy.allowed(CLIENTS, peer_host) then
        spawn{refuse, c, peer, 403, "your address " .. peer_host .. " may not use this proxy", name = "refuse fd " .. c.fd}
      elseif active >= opt["max-conns"] then
        spawn{refuse, c, peer, 503, "too many connections", name = "refuse fd " .. c.fd}
      else
        active = active + 1
        spawn{function()
          local ok, err = pcall(serve, c, peer_host, peer_port)
          if not ok then
            io.stderr:write("forward_proxy.lua: " .. peer .. ": " .. tostring(err) .. "\n")
            c:close()
          end
          active = active - 1
        end, name = "client fd " .. c.fd}
      end
    end
  end
end, name = "accept " .. host .. ":" .. port}
