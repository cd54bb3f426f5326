-- tproxy.lua: a transparent HTTP proxy, the one a client never hears of.
-- transparent_proxy.lua runs it from the command line; the lab scripts
-- start it inside a lab's router.
--
--   local tproxy = require("tproxy")
--   local listener, host, port = tproxy.start{port = 3128, block = {"ads.example"}}
--
-- The client connects to the server's address as usual. A router on the
-- way has a NAT rule that sends TCP port 80 to the proxy's port instead
-- (nftables: tcp dport 80 redirect to :3128), and the kernel keeps the
-- address the client meant, which the proxy asks for with
-- sock.getopt(fd, "original_dst"). The proxy reads each request, may
-- refuse it by the Host it names (--block), and otherwise connects to
-- that original address itself and relays the answer, adding Via. The
-- server sees the proxy's address; the client sees the server's answer
-- and a Via header.
--
-- It connects to the original destination, not to whatever Host says:
-- a client cannot make it fetch from somewhere its packets were not going.

local proxy = require("proxy")
local server = require("server")

local tproxy = {}

tproxy.VIA = "1.1 sockplay-transparent-proxy"

-- relay sends one request to the original destination over conn.up (made
-- on the first request) and returns the response for the client, and a
-- note for the log.
local function relay(conn, req, o)
  local fields = proxy.end_to_end(req.fields, req.headers)
  proxy.remove_fields(fields, {expect = true})
  proxy.append_field(fields, "Via", tproxy.VIA)
  proxy.append_field(fields, "X-Forwarded-For", conn.peer_host)
  local data = proxy.request_bytes(req.method, req.target, fields, req.body)
  for attempt = 1, 2 do
    local reused = conn.up ~= nil
    if not conn.up then
      local up, err, code = sock.dial_tcp(conn.dst_host, conn.dst_port, o.connect_timeout)
      if not up then
        local status = code == "ETIMEDOUT" and 504 or 502
        return proxy.error_response(status, "connect to " .. conn.dst .. ": " .. err), err
      end
      up:settimeout(o.upstream_timeout)
      conn.up = up
    end
    local res, why, code, got
    if conn.up:write(data) then
      res, why, code, got = proxy.read_response(conn.up, req.method, o.max_body)
    else
      why, got = "write to the server failed", false
    end
    if res then
      res.length = tonumber(res.headers["content-length"])
      local note = string.format("server fd %d", conn.up.fd)
      if not proxy.keeps_alive(res) then
        conn.up:close()
        conn.up = nil
      end
      local out = proxy.end_to_end(res.fields, res.headers)
      proxy.append_field(out, "Via", tproxy.VIA)
      return {status = res.status, reason = res.reason, fields = out, body = res.body, length = res.length}, note
    end
    conn.up:close()
    conn.up = nil
    -- A kept connection the server had closed: once more on a new one.
    if not (reused and not got and attempt == 1) then
      return proxy.error_response(code == 408 and 504 or 502, conn.dst .. ": " .. why), why
    end
  end
end

-- serve handles one redirected client connection, request after request.
local function serve(c, peer_host, peer_port, o)
  local conn = {peer_host = peer_host, peer = string.format("%s:%d", peer_host, peer_port)}
  local dst_host, dst_port, code = sock.getopt(c, "original_dst")
  local here_host, here_port = c:getsockname()
  if dst_host == here_host and dst_port == here_port then
    -- Tracked but not rewritten: the kernel gives the address the client
    -- used, this very port.
    dst_host, code = nil, "not redirected"
  end
  if not dst_host then
    -- A client that came to the proxy's own port: nothing to be
    -- transparent for, and connecting "there" would be a loop.
    c:settimeout(1)
    local req = proxy.read_request(c, {head = 16384, body = 0})
    c:write(proxy.response_bytes(proxy.error_response(400,
      "this is a transparent proxy: it serves connections that NAT sent here, and this one came straight (" .. tostring(code) .. ")"),
      req and req.method, false))
    o.log("%s came straight to the proxy, not redirected: 400", conn.peer)
    c:close()
    return
  end
  conn.dst_host, conn.dst_port = dst_host, dst_port
  conn.dst = string.format("%s:%d", dst_host, dst_port)
  c:settimeout(o.timeout)
  local limits = {head = 16384, body = o.max_body,
                  on_continue = function() c:write("HTTP/1.1 100 Continue\r\n\r\n") end}
  while true do
    local started = time.monotonic()
    local req = proxy.next_request(c, limits, conn.peer .. " -> " .. conn.dst, o.log)
    if not req then break end
    local host = (req.headers.host or dst_host):gsub(":%d+$", ""):gsub("^%[(.*)%]$", "%1")
    local keep = proxy.keeps_alive(req)
    local res, note
    local b = proxy.blocked_by(o.block, host)
    if b then
      res, note = proxy.error_response(403, host .. " is blocked by this proxy"), "blocked (" .. b .. ")"
    else
      local failed
      res, note, failed = proxy.handle("transparent_proxy.lua", req, relay, conn, req, o)
      keep = keep and not failed
    end
    local sent = c:write(proxy.response_bytes(res, req.method, keep))
    o.log("%s", proxy.access_line(string.format("%s -> %s [%s]", conn.peer, conn.dst, host), req, res, started, note))
    if not sent or not keep then break end
  end
  if conn.up then conn.up:close() end
  c:close()
end

-- start{host = "0.0.0.0", port = 3128, block = {HOST, ...}, log = fn(fmt, ...),
-- timeout = 30, connect_timeout = 10, upstream_timeout = 30, max_body = bytes}
-- -> listener, host, port | nil, msg, code. It listens, and accepts in a
-- task of its own (server.accept_loop: closing the listener ends it);
-- every connection is served by a task named "client fd N", whose
-- connection to the original destination carries that name in fds().
function tproxy.start(o)
  o = o or {}
  local opts = {
    block = o.block or {}, timeout = o.timeout or 30, connect_timeout = o.connect_timeout or 10,
    upstream_timeout = o.upstream_timeout or 30, max_body = o.max_body or 16 * 1024 * 1024,
    log = o.log or function(fmt, ...) print(string.format(fmt, ...)) end,
  }
  local listener, msg, code = sock.listen_tcp(o.host or "0.0.0.0", o.port or 3128, 1024)
  if not listener then return nil, msg, code end
  server.accept_loop(listener, "transparent_proxy.lua", function(c, peer_host, peer_port)
    serve(c, peer_host, peer_port, opts)
  end)
  local host, port = listener:getsockname()
  return listener, host, port
end

return tproxy
