-- cors_server.lua: a small JSON API with a CORS policy, to watch what a
-- browser asks before it lets a page on another origin read the answers.
--
--   sockplay scripts/cors_server.lua --port 8081 \
--       --allow-origin http://127.0.0.1:8080 --allow-methods 'GET, PUT' \
--       --allow-headers 'Content-Type, X-Token' --max-age 600
--   curl -i http://127.0.0.1:8081/api/hello -H 'Origin: http://127.0.0.1:8080'
--   curl -i -X OPTIONS http://127.0.0.1:8081/api/items/1 \
--       -H 'Origin: http://127.0.0.1:8080' -H 'Access-Control-Request-Method: PUT'
--
-- The API:
--   GET  /api/hello         a greeting
--   GET  /api/items         every item;  POST /api/items  adds one (the body)
--   GET, PUT, DELETE /api/items/N
--   ANY  /api/echo          what the request looked like: method, headers, body
-- Every response carries X-Request-Id, which a page can read only when
-- --expose-headers names it.
--
-- The log marks each request:
--   PREFLIGHT  OPTIONS with Origin and Access-Control-Request-Method: the
--              browser asking; "allowed" or "refused" and why
--   SIMPLE     a cross-origin request a browser sends without asking
--   ACTUAL     a cross-origin request a browser sends only after a preflight
--   NO-ORIGIN  no Origin header: not a cross-origin request from a browser
-- The server only states its policy; the browser enforces it. A refused
-- preflight gets 204 and no CORS headers; a simple request from a refused
-- origin is still served, without them, and the browser keeps the answer
-- from the page.

local args = require("args")
local http = require("http")
local json = require("json")
local cors = require("cors")
local server = require("server")

local spec = {
  usage = "cors_server.lua [--host H] [--port P] [--allow-origin O]... [options]",
  about = "A JSON API that answers CORS preflights and marks each request SIMPLE, PREFLIGHT or ACTUAL.",
  options = {
    {"host", "127.0.0.1", "address to listen on"},
    {"port", 8081, "port to listen on (0: any free port)"},
    {"allow-origin", {}, "an origin allowed to read responses (repeatable), or * for any"},
    {"allow-methods", "GET, HEAD, POST, PUT, DELETE", "Access-Control-Allow-Methods"},
    {"allow-headers", "Content-Type", "Access-Control-Allow-Headers (comma list; * for any)"},
    {"expose-headers", "", "Access-Control-Expose-Headers: response headers the page may read"},
    {"allow-credentials", false, "Access-Control-Allow-Credentials: true (cookies; not with --allow-origin *)"},
    {"max-age", 600, "Access-Control-Max-Age: seconds a browser may keep a preflight's answer (-1: none)"},
    {"timeout", 10, "seconds a client has to send a request"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)
if #opt._ > 0 then
  io.stderr:write("cors_server.lua: unexpected argument " .. opt._[1] .. " (try --help)\n")
  os.exit(2)
end

local function usage_error(msg)
  io.stderr:write("cors_server.lua: " .. msg .. "\n")
  os.exit(2)
end

local ANY_ORIGIN = false
local ORIGINS = {}
for _, o in ipairs(opt["allow-origin"]) do
  if o == "*" then
    ANY_ORIGIN = true
  else
    local norm, err = cors.parse_origin(o)
    if not norm then usage_error("--allow-origin: " .. err) end
    ORIGINS[norm] = true
  end
end
if ANY_ORIGIN and opt["allow-credentials"] then
  -- Browsers reject "Access-Control-Allow-Origin: *" on a request with
  -- credentials, and echoing any Origin back instead would hand every
  -- site on the web the user's cookies. List the origins.
  usage_error("--allow-origin * cannot be combined with --allow-credentials: browsers refuse * with credentials; name the origins")
end

local METHODS, METHOD_LIST = {}, cors.list(opt["allow-methods"])
for _, m in ipairs(METHOD_LIST) do METHODS[m] = true end
local HEADERS, HEADER_LIST, ANY_HEADER = {}, cors.list(opt["allow-headers"]), false
for _, h in ipairs(HEADER_LIST) do
  if h == "*" then ANY_HEADER = true else HEADERS[h:lower()] = true end
end

---------------------------------------------------------------------------
-- The policy.

-- origin_allowed(origin) -> the value for Access-Control-Allow-Origin, or nil.
local function origin_allowed(origin)
  if ORIGINS[origin] then return origin end
  if ANY_ORIGIN then return "*" end
  return nil
end

-- Headers a browser adds on its own, or that proxies on the way add: not
-- the page's doing, so they do not make a request non-simple.
local BROWSER_ADDED = {
  ["user-agent"] = true, ["cache-control"] = true, pragma = true, priority = true,
  ["x-forwarded-for"] = true, ["x-forwarded-proto"] = true, ["x-forwarded-host"] = true,
  forwarded = true, ["x-real-ip"] = true,
}

-- kind(req) -> "PREFLIGHT", "SIMPLE", "ACTUAL" or "NO-ORIGIN", and for
-- ACTUAL the rules that made it need a preflight.
local function kind(req)
  local h = req.headers
  if not h.origin then return "NO-ORIGIN" end
  if req.method == "OPTIONS" and h["access-control-request-method"] then return "PREFLIGHT" end
  local page_set = {}
  for name, value in pairs(h) do
    if not cors.forbidden(name) and not BROWSER_ADDED[name] then
      page_set[#page_set + 1] = {name, value}
    end
  end
  table.sort(page_set, function(a, b) return a[1] < b[1] end)
  local simple, _, brief = cors.classify(req.method, page_set)
  if simple then return "SIMPLE" end
  return "ACTUAL", brief
end

-- preflight answers OPTIONS + Access-Control-Request-Method. Returns the
-- response and a note for the log.
local function preflight(req)
  local h = req.headers
  local method = h["access-control-request-method"]
  local wanted = cors.list(h["access-control-request-headers"])
  local vary = {"Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
  local allow = origin_allowed(h.origin)
  if not allow then
    return {status = 204, fields = vary}, "refused: origin " .. h.origin .. " is not allowed"
  end
  local fields = {"Access-Control-Allow-Origin", allow}
  if opt["allow-credentials"] then
    fields[#fields + 1] = "Access-Control-Allow-Credentials"
    fields[#fields + 1] = "true"
  end
  fields[#fields + 1] = "Access-Control-Allow-Methods"
  fields[#fields + 1] = table.concat(METHOD_LIST, ", ")
  if #HEADER_LIST > 0 then
    fields[#fields + 1] = "Access-Control-Allow-Headers"
    fields[#fields + 1] = table.concat(HEADER_LIST, ", ")
  end
  if opt["max-age"] >= 0 then
    fields[#fields + 1] = "Access-Control-Max-Age"
    fields[#fields + 1] = tostring(math.floor(opt["max-age"]))
  end
  fields[#fields + 1] = vary[1]
  fields[#fields + 1] = vary[2]
  -- The browser does the checking; the log says what it will find.
  local problems = {}
  local any_method = METHODS["*"] and not opt["allow-credentials"]
  if not METHODS[method] and not cors.SIMPLE_METHODS[method] and not any_method then
    problems[#problems + 1] = "method " .. method .. " is not in " .. opt["allow-methods"]
  end
  for _, name in ipairs(wanted) do
    if not HEADERS[name:lower()] and not (ANY_HEADER and name:lower() ~= "authorization") then
      problems[#problems + 1] = "header " .. name .. " is not in " .. opt["allow-headers"]
    end
  end
  if #problems > 0 then
    return {status = 204, fields = fields}, "refused: " .. table.concat(problems, "; ")
  end
  return {status = 204, fields = fields}, "allowed"
end

-- cors_fields adds the headers of an actual (or simple) response.
local function cors_fields(req, fields)
  local allow = req.headers.origin and origin_allowed(req.headers.origin)
  if allow then
    fields[#fields + 1] = "Access-Control-Allow-Origin"
    fields[#fields + 1] = allow
    if opt["allow-credentials"] then
      fields[#fields + 1] = "Access-Control-Allow-Credentials"
      fields[#fields + 1] = "true"
    end
    if opt["expose-headers"] ~= "" then
      fields[#fields + 1] = "Access-Control-Expose-Headers"
      fields[#fields + 1] = opt["expose-headers"]
    end
  end
  -- The answer depends on Origin: a cache must not hand one origin's
  -- answer to another.
  fields[#fields + 1] = "Vary"
  fields[#fields + 1] = "Origin"
  return allow
end

---------------------------------------------------------------------------
-- The API.

local items, next_id = {}, 1
local function item_json(id)
  return {id = id, value = items[id].value, type = items[id].type}
end

local function reply(status, value)
  return {status = status, fields = {"Content-Type", "application/json"},
          body = json.encode(value) .. "\n"}
end

local function api(req)
  local path, m = req.path, req.method
  if path == "/" or path == "/api" or path == "/api/" then
    return reply(200, {endpoints = {"GET /api/hello", "GET, POST /api/items",
                                    "GET, PUT, DELETE /api/items/N", "ANY /api/echo"}})
  elseif path == "/api/hello" then
    if m ~= "GET" and m ~= "HEAD" then return reply(405, {error = "GET only"}) end
    return reply(200, {message = "hello from cors_server.lua", method = m})
  elseif path == "/api/echo" then
    local headers = {}
    for k, v in pairs(req.headers) do headers[k] = v end
    return reply(200, {method = m, path = req.target, headers = headers, body = req.body})
  elseif path == "/api/items" then
    if m == "GET" or m == "HEAD" then
      local list = json.array()
      for id = 1, next_id - 1 do
        if items[id] then list[#list + 1] = item_json(id) end
      end
      return reply(200, list)
    elseif m == "POST" then
      local id = next_id
      next_id = next_id + 1
      items[id] = {value = req.body, type = req.headers["content-type"] or ""}
      return reply(201, item_json(id))
    end
    return reply(405, {error = "GET or POST"})
  end
  local id = tonumber(path:match("^/api/items/(%d+)$"))
  if id then
    if m == "GET" or m == "HEAD" then
      if not items[id] then return reply(404, {error = "no item " .. id}) end
      return reply(200, item_json(id))
    elseif m == "PUT" then
      local created = items[id] == nil
      items[id] = {value = req.body, type = req.headers["content-type"] or ""}
      if id >= next_id then next_id = id + 1 end
      return reply(created and 201 or 200, item_json(id))
    elseif m == "DELETE" then
      if not items[id] then return reply(404, {error = "no item " .. id}) end
      items[id] = nil
      return reply(200, {deleted = id})
    end
    return reply(405, {error = "GET, PUT or DELETE"})
  end
  return reply(404, {error = "no such endpoint: " .. path})
end

---------------------------------------------------------------------------
-- Connections.

local request_id = 0

local function send(c, req, res, keep)
  local fields = {"Date", http.date_now(), "Server", "sockplay-cors/0.1"}
  for i = 1, #(res.fields or {}) do fields[#fields + 1] = res.fields[i] end
  local body = res.body or ""
  if res.status ~= 204 and res.status ~= 304 then
    fields[#fields + 1] = "Content-Length"
    fields[#fields + 1] = tostring(#body)
  end
  if not keep then
    fields[#fields + 1] = "Connection"
    fields[#fields + 1] = "close"
  end
  local head = http.head(http.status_line(res.status), fields)
  if (req and req.method == "HEAD") or res.status == 204 or res.status == 304 then body = "" end
  return c:write(head .. body)
end

-- printable keeps a log line on one line whatever a client sent.
local printable = http.printable

local function handle(req)
  request_id = request_id + 1
  local k, reasons = kind(req)
  local res, note
  if k == "PREFLIGHT" then
    res, note = preflight(req)
    local wanted = req.headers["access-control-request-headers"]
    note = string.format("wants %s%s: %s", printable(req.headers["access-control-request-method"]),
      wanted and " with " .. printable(wanted) or "", note)
  else
    local ok, r = pcall(api, req)
    res = ok and r or reply(500, {error = "internal error"})
    if not ok then io.stderr:write("cors_server.lua: " .. tostring(r) .. "\n") end
    local allow = cors_fields(req, res.fields)
    if k ~= "NO-ORIGIN" then
      note = allow and "origin allowed (Access-Control-Allow-Origin: " .. allow .. ")"
        or "origin not allowed: no CORS headers, the browser hides the answer"
      if reasons then note = note .. "; not simple: " .. table.concat(reasons, ", ") end
    end
  end
  res.fields[#res.fields + 1] = "X-Request-Id"
  res.fields[#res.fields + 1] = tostring(request_id)
  return res, k, note
end

local function serve(c, peer_host, peer_port)
  local peer = string.format("%s:%d", peer_host, peer_port)
  c:settimeout(opt.timeout)
  local limits = {head = 16384, body = 1024 * 1024,
                  on_continue = function() c:write("HTTP/1.1 100 Continue\r\n\r\n") end}
  while true do
    local req, msg, status, got, partial = http.read_request(c, limits)
    if not req then
      if status and got then
        send(c, partial, reply(status, {error = msg}), false)
        print(string.format('ERROR %s "%s" %d %s', peer, printable(partial and partial.line), status, msg))
      end
      break
    end
    local keep = http.keeps_alive(req) -- HTTP/1.1 unless "Connection: close"
    local res, k, note = handle(req)
    local origin = req.headers.origin and " origin " .. printable(req.headers.origin) or ""
    print(string.format('%s %s "%s" %d%s%s', k, peer, printable(req.line), res.status, origin,
      note and " " .. note or ""))
    if not send(c, req, res, keep) or not keep then break end
  end
  c:close()
end

-- Listen, print "listening on HOST:PORT", and serve each connection in a
-- task of its own ("client fd N").
local listener = server.listen("cors_server.lua", opt.host, opt.port)
server.accept_loop(listener, "cors_server.lua", serve)
