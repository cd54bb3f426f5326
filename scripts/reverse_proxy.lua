-- reverse_proxy.lua: a reverse proxy on the servers' side, as Nginx or
-- HAProxy are: clients talk to it as if it were the site, and it hands
-- each request to one of several backends, keeps what it may in a cache,
-- and tells the backends who asked.
--
--   sockplay scripts/reverse_proxy.lua --port 8000 \
--       --backend 127.0.0.1:8081 --backend 127.0.0.1:8082
--   curl -i http://127.0.0.1:8000/           (X-Cache: MISS, then HIT)
--   sockplay -i scripts/reverse_proxy.lua ... then .fds or .tasks while it runs
--
-- Load balancing. Each request goes to the next backend in turn (round
-- robin), or with --balance least-conn to the one with the fewest requests
-- in progress. A backend that refuses a connection or fails is marked down
-- for --retry-after seconds and the request goes to the next one; with
-- none left the client gets 502 Bad Gateway, and 504 Gateway Timeout when
-- a backend takes longer than --backend-timeout to answer.
-- --route /api/=HOST:PORT sends the paths under /api/ to other backends
-- (repeatable, longest prefix wins), so that one origin serves a page and
-- the API it calls.
--
-- Caching (RFC 9111, a shared cache). GET responses are kept when they say
-- how long they stay fresh (Cache-Control: max-age or s-maxage, Expires)
-- or how to check them again (ETag, Last-Modified), unless Cache-Control
-- says no-store or private. A fresh copy is served without asking the
-- backend (X-Cache: HIT, Age: its age in seconds); a stale one, or one
-- marked no-cache, is checked with If-None-Match / If-Modified-Since, and
-- "304 Not Modified" makes it fresh again without sending the body. Vary
-- names the request headers the answer depends on: a copy is only served
-- to requests that agree on them.
--
-- Each client connection is served by a task named "client fd N"; the
-- backend connections it opens carry that name in the descriptor table,
-- and a "link" log line pairs them: client fd 9 <-> backend fd 12.

local args = require("args")
local http = require("http")
local proxy = require("proxy")
local server = require("server")

local spec = {
  usage = "reverse_proxy.lua --backend HOST:PORT [--backend HOST:PORT]... [options]",
  about = "Reverse proxy: load balancing, backends marked down and retried, a cache that follows Cache-Control.",
  options = {
    {"host", "127.0.0.1", "address to listen on"},
    {"port", 8000, "port to listen on (0: any free port)"},
    {"backend", {}, "a backend server (repeatable)"},
    {"route", {}, "PREFIX=HOST:PORT: paths under PREFIX go to this backend (repeatable)"},
    {"balance", "round-robin", "round-robin or least-conn"},
    {"retry-after", 10, "seconds a failed backend stays marked down"},
    {"connect-timeout", 5, "seconds to connect to a backend"},
    {"backend-timeout", 30, "seconds a backend has to answer (then 504)"},
    {"timeout", 30, "seconds a client connection may stay idle"},
    {"cache-size", 16 * 1024 * 1024, "bytes of responses kept in the cache (0: no cache)"},
    {"cache-max-object", 1024 * 1024, "largest response body cached"},
    {"max-body", 16 * 1024 * 1024, "largest request or response body relayed"},
    {"quiet", false, "no access log"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)

local function usage_error(msg)
  io.stderr:write("reverse_proxy.lua: " .. msg .. " (try --help)\n")
  os.exit(2)
end
if #opt._ > 0 then usage_error("unexpected argument " .. opt._[1]) end
if opt.balance ~= "round-robin" and opt.balance ~= "least-conn" then
  usage_error("--balance is round-robin or least-conn, not " .. opt.balance)
end
if #opt.backend == 0 and #opt.route == 0 then usage_error("give at least one --backend HOST:PORT") end

local VIA = "1.1 sockplay-reverse-proxy"

local function log(fmt, ...)
  if not opt.quiet then print(string.format(fmt, ...)) end
end

---------------------------------------------------------------------------
-- Backends and pools. A pool is the backends that serve one path prefix.

local function parse_backend(text, what)
  local host, port = text:match("^%[([%x:.]+)%]:(%d+)$")
  if not host then host, port = text:match("^([^:/]+):(%d+)$") end
  port = tonumber(port)
  if not host or not port or port < 1 or port > 65535 then
    usage_error(what .. " wants HOST:PORT, not " .. text)
  end
  return {name = text, host = host, port = port, active = 0, served = 0}
end

local pools = {} -- longest prefix first
local function add_to_pool(prefix, b)
  for _, p in ipairs(pools) do
    if p.prefix == prefix then
      p.backends[#p.backends + 1] = b
      return
    end
  end
  pools[#pools + 1] = {prefix = prefix, backends = {b}, next = 1}
end
for _, text in ipairs(opt.backend) do add_to_pool("/", parse_backend(text, "--backend")) end
for _, text in ipairs(opt.route) do
  local prefix, target = text:match("^(/[^=]*)=(.+)$")
  if not prefix then usage_error("--route wants /PREFIX=HOST:PORT, not " .. text) end
  add_to_pool(prefix, parse_backend(target, "--route"))
end
table.sort(pools, function(a, b) return #a.prefix > #b.prefix end)

local function pool_for(path)
  for _, p in ipairs(pools) do
    if path:sub(1, #p.prefix) == p.prefix then return p end
  end
  return nil
end

local function is_up(b, now)
  return not b.down_until or b.down_until <= now
end

-- pick chooses a backend of pool not yet tried for this request: the next
-- in turn, or the least busy (ties in turn). Backends marked down are
-- skipped until their --retry-after has passed; then one request tries
-- them again.
local function pick(pool, tried)
  local now = time.monotonic()
  local n = #pool.backends
  local best
  for k = 0, n - 1 do
    local i = (pool.next - 1 + k) % n + 1
    local b = pool.backends[i]
    if not tried[b] and is_up(b, now) then
      if opt.balance == "round-robin" then
        pool.next = i % n + 1
        return b
      end
      if not best or b.active < best.active then best = b end
    end
  end
  if best then
    for i, b in ipairs(pool.backends) do
      if b == best then pool.next = i % n + 1 end
    end
  end
  return best
end

local function mark_down(b, why)
  local was_up = is_up(b, time.monotonic())
  b.down_until = time.monotonic() + opt["retry-after"]
  log("backend %s marked down for %gs: %s%s", b.name, opt["retry-after"], why,
    was_up and "" or " (still)")
end

local function mark_up(b)
  if b.down_until then
    log("backend %s is up again", b.name)
    b.down_until = nil
  end
end

---------------------------------------------------------------------------
-- The cache. Entries are keyed by Host and target; each key holds the
-- variants Vary tells apart.

local cache = {}            -- key -> list of entries
local cache_bytes, cache_clock = 0, 0

local CACHEABLE_STATUS = {[200] = true, [203] = true, [204] = true, [300] = true, [301] = true,
                          [308] = true, [404] = true, [405] = true, [410] = true, [414] = true, [501] = true}

local function cache_key(req)
  return (req.headers.host or "") .. " " .. req.target
end

local function norm(v) return v and (v:gsub("%s+", " "):match("^ ?(.-) ?$")) or "" end

local function vary_names(headers)
  local names = {}
  for name in (headers.vary or ""):gmatch("[^,%s]+") do names[#names + 1] = name:lower() end
  return names
end

-- Freshness (RFC 9111 4.2): how long the response stays fresh, and how
-- old it is now.
local function lifetime(headers, date_value)
  local cc = proxy.cache_control(headers["cache-control"])
  local s = proxy.seconds(cc["s-maxage"]) or proxy.seconds(cc["max-age"])
  if s then return s end
  if headers.expires then
    local exp = http.parse_date(headers.expires)
    return exp and math.max(0, exp - date_value) or 0 -- a bad Expires means already stale
  end
  return 0 -- no heuristic freshness here: without a word from the server, check again
end

local function current_age(e, now)
  local apparent = math.max(0, e.response_time - e.date_value)
  local corrected = e.age_value + (e.response_time - e.request_time)
  return math.max(apparent, corrected) + (now - e.response_time)
end

local function fill_times(e, headers, request_time, response_time)
  e.request_time, e.response_time = request_time, response_time
  e.date_value = headers.date and http.parse_date(headers.date) or response_time
  e.age_value = proxy.seconds(headers.age) or 0
  e.lifetime = lifetime(headers, e.date_value)
  local cc = proxy.cache_control(headers["cache-control"])
  e.no_cache = cc["no-cache"] ~= nil
  e.etag = headers.etag
  e.last_modified = headers["last-modified"]
end

local function cache_remove(key, victim)
  local list = cache[key]
  if not list then return end
  for i = #list, 1, -1 do
    if not victim or list[i] == victim then
      cache_bytes = cache_bytes - list[i].size
      table.remove(list, i)
    end
  end
  if #list == 0 then cache[key] = nil end
end

-- lookup finds the variant of key that matches the request's values of
-- the headers its response named in Vary.
local function lookup(req)
  local list = cache[cache_key(req)]
  if not list then return nil end
  for _, e in ipairs(list) do
    local match = true
    for name, value in pairs(e.vary) do
      if norm(req.headers[name]) ~= value then match = false end
    end
    if match then
      cache_clock = cache_clock + 1
      e.used = cache_clock
      return e
    end
  end
  return nil
end

-- storable says whether a response to req may be kept, and if not why.
local function storable(req, res)
  if opt["cache-size"] <= 0 then return false, "cache off" end
  if req.method ~= "GET" then return false, "not GET" end
  if not CACHEABLE_STATUS[res.status] then return false, "status " .. res.status end
  local rcc = proxy.cache_control(req.headers["cache-control"])
  if rcc["no-store"] then return false, "request no-store" end
  local cc = proxy.cache_control(res.headers["cache-control"])
  if cc["no-store"] then return false, "no-store" end
  if cc.private then return false, "private" end
  if req.headers.authorization and not (cc.public or cc["s-maxage"] or cc["must-revalidate"]) then
    return false, "Authorization"
  end
  if res.headers["set-cookie"] then return false, "Set-Cookie" end
  for _, name in ipairs(vary_names(res.headers)) do
    if name == "*" then return false, "Vary: *" end
  end
  if #res.body > opt["cache-max-object"] then return false, "too large" end
  local fresh_for = lifetime(res.headers, res.headers.date and http.parse_date(res.headers.date) or os.time())
  if fresh_for <= 0 and not cc["no-cache"] and not res.headers.etag and not res.headers["last-modified"] then
    return false, "no freshness or validator"
  end
  return true
end

local function store(req, res, request_time, response_time)
  local key = cache_key(req)
  local e = {fields = res.stored_fields, status = res.status, reason = res.reason,
             body = res.body, size = #res.body + 256, vary = {}}
  for _, name in ipairs(vary_names(res.headers)) do e.vary[name] = norm(req.headers[name]) end
  fill_times(e, res.headers, request_time, response_time)
  -- A new copy replaces the variant it matches.
  local old = lookup(req)
  if old then cache_remove(key, old) end
  -- Make room: the least recently used go first.
  while cache_bytes + e.size > opt["cache-size"] do
    local victim, vkey
    for k, list in pairs(cache) do
      for _, c in ipairs(list) do
        if not victim or c.used < victim.used then victim, vkey = c, k end
      end
    end
    if not victim then break end
    cache_remove(vkey, victim)
  end
  if cache_bytes + e.size > opt["cache-size"] then return end
  cache_clock = cache_clock + 1
  e.used = cache_clock
  cache[key] = cache[key] or {}
  table.insert(cache[key], e)
  cache_bytes = cache_bytes + e.size
end

-- refresh takes what a 304 says into the stored copy (RFC 9111 4.3.4).
local function refresh(e, res, request_time, response_time)
  local fields = e.fields
  for i = 1, #res.stored_fields, 2 do
    local name = res.stored_fields[i]
    if name:lower() ~= "content-length" then proxy.set_field(fields, name, res.stored_fields[i + 1]) end
  end
  local headers = {}
  for i = 1, #fields, 2 do http.add_header(headers, fields[i], fields[i + 1]) end
  fill_times(e, headers, request_time, response_time)
end

-- client_has_it: may the client keep the copy it has? (its If-None-Match
-- or If-Modified-Since against the cached one)
local function client_has_it(req, e)
  local inm = req.headers["if-none-match"]
  if inm then
    if not e.etag then return false end
    local tag = e.etag:gsub("^W/", "")
    for t in inm:gmatch("[^,]+") do
      t = t:match("^%s*(.-)%s*$"):gsub("^W/", "")
      if t == "*" or t == tag then return true end
    end
    return false
  end
  local ims = req.headers["if-modified-since"] and http.parse_date(req.headers["if-modified-since"])
  local lm = e.last_modified and http.parse_date(e.last_modified)
  return ims ~= nil and lm ~= nil and lm <= ims
end

-- from_cache builds the response to a client from a stored copy.
local function from_cache(req, e)
  local fields = {}
  for i = 1, #e.fields do fields[i] = e.fields[i] end
  proxy.remove_fields(fields, {age = true, ["x-cache"] = true})
  fields[#fields + 1] = "Age"
  fields[#fields + 1] = tostring(math.floor(current_age(e, time.now())))
  fields[#fields + 1] = "X-Cache"
  fields[#fields + 1] = "HIT"
  proxy.append_field(fields, "Via", VIA)
  if client_has_it(req, e) then
    local keep = {}
    for i = 1, #fields, 2 do
      local n = fields[i]:lower()
      if n ~= "content-type" and n ~= "content-language" and n ~= "content-encoding" then
        keep[#keep + 1] = fields[i]
        keep[#keep + 1] = fields[i + 1]
      end
    end
    return {status = 304, fields = keep}
  end
  return {status = e.status, reason = e.reason, fields = fields, body = e.body, length = #e.body}
end

---------------------------------------------------------------------------
-- Talking to backends. A client's task keeps one connection per backend
-- it has used (keep-alive), in conn.ups.

local function backend_conn(c, conn, b)
  local s = conn.ups[b]
  if s then return s, true end
  local err, code
  s, err, code = sock.dial_tcp(b.host, b.port, opt["connect-timeout"])
  if not s then return nil, err, code end
  s:settimeout(opt["backend-timeout"])
  conn.ups[b] = s
  log("link client fd %d (%s) <-> backend fd %d (%s)", c.fd, conn.peer, s.fd, b.name)
  return s, false
end

local function drop_backend(conn, b)
  if conn.ups[b] then conn.ups[b]:close() end
  conn.ups[b] = nil
end

-- exchange sends data to b and reads the answer. It returns the response,
-- or nil and what went wrong: "connect" (refused, unreachable, no answer
-- to the handshake within --connect-timeout), "timeout" (no answer to the
-- request within --backend-timeout), "failed" (closed or broken before an
-- answer).
local function exchange(c, conn, b, method, data)
  for attempt = 1, 2 do
    local s, reused, code = backend_conn(c, conn, b)
    if not s then
      -- No handshake, refused or timed out: the request never reached b,
      -- so the next backend may have it whatever its method.
      if code == "ETIMEDOUT" then
        return nil, "connect", string.format("connect timed out after %gs", opt["connect-timeout"])
      end
      return nil, "connect", reused
    end
    b.active = b.active + 1
    local res, why, status, got
    if s:write(data) then
      res, why, status, got = proxy.read_response(s, method, opt["max-body"])
    else
      why, got = "write failed", false
    end
    b.active = b.active - 1
    if res then
      res.fd = s.fd
      if not proxy.keeps_alive(res) then drop_backend(conn, b) end
      return res
    end
    drop_backend(conn, b)
    if status == 408 then return nil, "timeout", why end
    -- A kept connection the backend had closed meanwhile: once more, fresh.
    if not (reused and not got and attempt == 1) then return nil, "failed", why end
  end
end

local IDEMPOTENT = {GET = true, HEAD = true, OPTIONS = true, PUT = true, DELETE = true}

-- forward sends the request to the pool's backends until one answers.
-- Returns the response (its fields end to end, with Via) and a note.
local function forward(c, conn, req, fields)
  local pool = pool_for(req.path)
  if not pool then return proxy.error_response(404, "no backend serves " .. req.path), "no route" end
  local data = proxy.request_bytes(req.method, req.target, fields, req.body)
  local tried, failures = {}, {}
  while true do
    local b = pick(pool, tried)
    if not b then
      local down = 0
      for _, other in ipairs(pool.backends) do
        if not tried[other] then down = down + 1 end
      end
      local detail = table.concat(failures, "; ")
      if down > 0 then
        detail = detail .. (detail ~= "" and "; " or "") .. down .. " marked down"
      end
      return proxy.error_response(502, "no backend could answer: " .. detail), "502 none up"
    end
    tried[b] = true
    local res, kind, why = exchange(c, conn, b, req.method, data)
    if res then
      mark_up(b)
      b.served = b.served + 1
      res.backend = b
      return res, string.format("backend %s fd %d", b.name, res.fd)
    end
    if kind == "timeout" then
      return proxy.error_response(504, string.format("backend %s did not answer within %gs",
        b.name, opt["backend-timeout"])), "backend " .. b.name .. " timed out"
    end
    failures[#failures + 1] = b.name .. ": " .. tostring(why)
    mark_down(b, tostring(why))
    -- The request may have reached a backend that failed after reading it:
    -- only requests that can safely be repeated go to the next one.
    if kind ~= "connect" and not IDEMPOTENT[req.method] then
      return proxy.error_response(502, "backend " .. b.name .. " failed: " .. tostring(why)), "502"
    end
  end
end

-- respond_from_backend turns a backend's response into the client's.
local function client_response(res, cache_status)
  local fields = proxy.end_to_end(res.fields, res.headers, {["x-cache"] = true})
  res.stored_fields = {}
  for i = 1, #fields do res.stored_fields[i] = fields[i] end
  proxy.remove_fields(res.stored_fields, {age = true, via = true})
  if not res.headers.age then
    fields[#fields + 1] = "Age"
    fields[#fields + 1] = "0"
  end
  fields[#fields + 1] = "X-Cache"
  fields[#fields + 1] = cache_status
  proxy.append_field(fields, "Via", VIA)
  return {status = res.status, reason = res.reason, fields = fields, body = res.body,
          length = tonumber(res.headers["content-length"])}
end

-- handle answers one request: from the cache, or through a backend.
local function handle(c, conn, req)
  local fields = proxy.end_to_end(req.fields, req.headers, {expect = true})
  proxy.append_field(fields, "X-Forwarded-For", conn.peer_host)
  proxy.set_field(fields, "X-Forwarded-Proto", "http")
  if req.headers.host then proxy.set_field(fields, "X-Forwarded-Host", req.headers.host) end
  proxy.append_field(fields, "Via", VIA)

  local m = req.method
  local rcc = proxy.cache_control(req.headers["cache-control"])
  local use_cache = opt["cache-size"] > 0 and (m == "GET" or m == "HEAD") and not rcc["no-store"]
  local e = use_cache and lookup(req)
  if e then
    local age = current_age(e, time.now())
    local reload = rcc["no-cache"] or (req.headers.pragma and http.has_token(req.headers.pragma, "no-cache"))
    local max_age = proxy.seconds(rcc["max-age"])
    local fresh = not e.no_cache and age < e.lifetime and not reload and not (max_age and age > max_age)
    if fresh then return from_cache(req, e), "cache HIT" end
    if rcc["only-if-cached"] then return proxy.error_response(504, "only-if-cached, and the copy is stale"), "cache stale" end
    if m == "GET" and (e.etag or e.last_modified) then
      -- Ask the backend whether the copy is still good.
      local cond = {}
      for i = 1, #fields do cond[i] = fields[i] end
      proxy.remove_fields(cond, {["if-none-match"] = true, ["if-modified-since"] = true})
      if e.etag then proxy.set_field(cond, "If-None-Match", e.etag) end
      if e.last_modified then proxy.set_field(cond, "If-Modified-Since", e.last_modified) end
      local t0 = time.now()
      local res, note = forward(c, conn, req, cond)
      if res.backend and res.status == 304 then
        client_response(res, "HIT")
        refresh(e, res, t0, time.now())
        return from_cache(req, e), note .. ", cache HIT (revalidated: 304)"
      end
      if not res.backend then return res, note end
      local out = client_response(res, "MISS")
      local ok, why = storable(req, res)
      if ok then
        store(req, res, t0, time.now())
      else
        cache_remove(cache_key(req), e)
      end
      return out, note .. ", cache MISS (changed" .. (ok and "" or ", not stored: " .. why) .. ")"
    end
  end
  if rcc["only-if-cached"] and use_cache then
    return proxy.error_response(504, "only-if-cached, and nothing is cached"), "cache MISS"
  end

  local t0 = time.now()
  local res, note = forward(c, conn, req, fields)
  if not res.backend then return res, note end
  local out = client_response(res, "MISS")
  if use_cache then
    local ok, why = storable(req, res)
    if ok then
      store(req, res, t0, time.now())
      note = note .. ", cache MISS (stored)"
    else
      note = note .. ", cache MISS (not stored: " .. why .. ")"
    end
  elseif m ~= "GET" and m ~= "HEAD" and res.status < 400 then
    -- A change through the proxy makes its cached copies out of date.
    cache_remove(cache_key(req))
  end
  return out, note
end

---------------------------------------------------------------------------
-- Client connections.

local function serve(c, peer_host, peer_port)
  local conn = {peer_host = peer_host, peer = string.format("%s:%d", peer_host, peer_port), ups = {}}
  c:settimeout(opt.timeout)
  local limits = {head = 16384, body = opt["max-body"],
                  on_continue = function() c:write("HTTP/1.1 100 Continue\r\n\r\n") end}
  while true do
    local started = time.monotonic()
    -- (A broken request is answered and logged by next_request.)
    local req = proxy.next_request(c, limits, conn.peer, log)
    if not req then break end
    req.path = req.target:match("^[^?#]*")
    if req.target:find("^[hH][tT][tT][pP]://") then
      req.path = req.target:match("^%a+://[^/?#]*([^?#]*)")
      if req.path == "" then req.path = "/" end
    end
    local keep = proxy.keeps_alive(req)
    local res, note
    if req.path:sub(1, 1) ~= "/" then
      res = proxy.error_response(400, "bad request target " .. req.target)
    elseif req.method == "CONNECT" then
      res = proxy.error_response(405, "a reverse proxy makes no tunnels")
    else
      local failed
      res, note, failed = proxy.handle("reverse_proxy.lua", req, handle, c, conn, req)
      keep = keep and not failed
    end
    local ok = c:write(proxy.response_bytes(res, req.method, keep))
    log("%s", proxy.access_line(conn.peer, req, res, started, note))
    if not ok or not keep then break end
  end
  for _, s in pairs(conn.ups) do s:close() end
  c:close()
end

-- Listen, and print "listening on HOST:PORT" (or exit saying why not).
local listener = server.listen("reverse_proxy.lua", opt.host, opt.port)
for _, p in ipairs(pools) do
  local names = {}
  for _, b in ipairs(p.backends) do names[#names + 1] = b.name end
  log("route %s -> %s (%s)", p.prefix, table.concat(names, ", "), opt.balance)
end

-- Accept connections, each served by serve in a task "client fd N". The
-- accept loop is a task too, so that sockplay -i brings the REPL up beside
-- the running proxy.
server.accept_loop(listener, "reverse_proxy.lua", serve)
