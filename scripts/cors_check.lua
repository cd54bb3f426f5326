-- cors_check.lua: what would a browser do? Asks a server the way a browser
-- asks it before letting a page on another origin send a request and read
-- the answer, and says at each step what the browser decides.
--
--   sockplay scripts/cors_check.lua --origin http://127.0.0.1:8080 \
--       -X PUT -H 'Content-Type: application/json' -H 'X-Token: 1' \
--       http://127.0.0.1:8081/api/items/1
--
-- 1. Is the request simple (sent at once) or does it need a preflight? The
--    rule that decides is printed (lib/cors.lua has them all).
-- 2. If it needs one: the preflight, OPTIONS with Origin,
--    Access-Control-Request-Method and -Headers, and a check of each
--    Access-Control-Allow-* field of the answer against the request.
-- 3. The request itself (unless --preflight-only, or the preflight
--    failed), and the check of its Access-Control-Allow-Origin.
-- Each check prints a line: "ok", "FAIL" or "info", and the last line is
-- the verdict, "allowed" or "blocked". Exit status: 0 allowed, 1 blocked,
-- 2 a usage mistake, 3 the server could not be reached.

local args = require("args")
local http = require("http")
local proxy = require("proxy")
local cors = require("cors")

local spec = {
  usage = "cors_check.lua --origin ORIGIN [-X METHOD] [-H 'Name: value']... [-d BODY] URL",
  about = "Check a cross-origin request the way a browser would: simple or preflight, then each Access-Control-Allow-* answer.",
  options = {
    {"origin", "", "the page's origin, scheme://host:port (required)"},
    {"request", "", "the method (-X; default GET, or POST with -d)"},
    {"header", {}, "a header the page sets, 'Name: value' (-H, repeatable)"},
    {"data", "", "a request body (-d)"},
    {"credentials", false, "the page sends cookies (fetch credentials: 'include')"},
    {"preflight-only", false, "stop after the preflight; do not send the request itself"},
    {"max-time", 10, "seconds to wait for each answer (-m)"},
  },
}
-- curl's short options, so that a curl command line can be pasted.
local SHORT = {["-X"] = "--request", ["-H"] = "--header", ["-d"] = "--data", ["-m"] = "--max-time"}
local argv = {}
for i = 1, #arg do argv[i] = SHORT[arg[i]] or arg[i] end
local opt = args.parse(argv, spec)

local function usage_error(msg)
  io.stderr:write("cors_check.lua: " .. msg .. " (try --help)\n")
  os.exit(2)
end
if opt.origin == "" then usage_error("--origin is required: the origin of the page that makes the request") end
if #opt._ ~= 1 then usage_error("want one URL") end
local origin, oerr = cors.parse_origin(opt.origin)
if not origin or origin == "*" then usage_error("--origin: " .. (oerr or "* is not an origin")) end
local url = opt._[1]
local u, uerr = http.parse_url(url)
if not u then usage_error(uerr) end
if u.scheme ~= "http" then usage_error("only http:// URLs: sockplay speaks plain HTTP") end
local method = opt.request ~= "" and opt.request:upper() or (opt.data ~= "" and "POST" or "GET")
if not method:match("^[%w!#$%%&'*+%-.^_`|~]+$") then usage_error("bad method " .. opt.request) end
local timeout = opt["max-time"]

local failed = 0
local function check(ok, fmt, ...)
  print((ok and "ok    " or "FAIL  ") .. string.format(fmt, ...))
  if not ok then failed = failed + 1 end
  return ok
end
local function info(fmt, ...) print("info  " .. string.format(fmt, ...)) end

local function verdict(allowed, why)
  print((allowed and "allowed: " or "blocked: ") .. why)
  os.exit(allowed and 0 or 1)
end

---------------------------------------------------------------------------
-- The page's headers. Those a page may never set are left out, as the
-- browser leaves them out.

local headers = {}
for _, h in ipairs(opt.header) do
  local name, value = h:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
  if not name then usage_error("-H wants 'Name: value', not " .. h) end
  if cors.forbidden(name) then
    info("a page cannot set %s (a forbidden header name): the browser sends its own or none", name)
  else
    headers[#headers + 1] = {name, value}
  end
end
local body = opt.data ~= "" and opt.data or nil
if body and method ~= "GET" and method ~= "HEAD" then
  local has_type = false
  for _, h in ipairs(headers) do
    if h[1]:lower() == "content-type" then has_type = true end
  end
  -- fetch() with a string body and no type sends text/plain.
  if not has_type then headers[#headers + 1] = {"Content-Type", "text/plain;charset=UTF-8"} end
elseif body then
  usage_error("a " .. method .. " request cannot have a body in fetch()")
end

print(string.format("request: %s %s from origin %s%s", method, url, origin,
  opt.credentials and ", with credentials" or ""))
local same_origin = cors.parse_origin(u.scheme .. "://" .. u.authority) == origin

---------------------------------------------------------------------------
-- One exchange on a fresh connection, shown as curl -v shows it.

local function exchange(m, fields, data, label)
  print(label .. ":")
  local f = {"Host", u.authority}
  for i = 1, #fields do f[#f + 1] = fields[i] end
  f[#f + 1] = "Connection"
  f[#f + 1] = "close"
  local bytes = proxy.request_bytes(m, u.target, f, data)
  for line in bytes:match("^(.-)\r\n\r\n"):gmatch("[^\r\n]+") do print("  > " .. line) end
  local s, msg, code = sock.dial_tcp(u.host, u.port, timeout)
  if not s then
    print(string.format("unknown: cannot connect to %s:%d: %s (%s)", u.host, u.port, msg, code))
    os.exit(3)
  end
  s:settimeout(timeout)
  local res, why
  if s:write(bytes) then
    res, why = proxy.read_response(s, m, 16 * 1024 * 1024)
  else
    why = "the server closed the connection"
  end
  s:close()
  if not res then
    print("unknown: no response: " .. tostring(why))
    os.exit(3)
  end
  print("  < " .. res.line)
  for i = 1, #res.fields, 2 do print("  < " .. res.fields[i] .. ": " .. res.fields[i + 1]) end
  return res
end

-- The CORS check (Fetch standard 4.9), done on the preflight's answer and
-- on the response itself.
local function cors_check(res)
  local acao = res.headers["access-control-allow-origin"]
  if not check(acao ~= nil, "Access-Control-Allow-Origin is %s",
      acao and "present" or "missing: the server did not allow origin " .. origin) then
    return false
  end
  if acao:find(",") then
    return check(false, "Access-Control-Allow-Origin: %s holds several values; it must be one origin or *", acao)
  end
  if acao == "*" then
    if opt.credentials then
      return check(false, "Access-Control-Allow-Origin: * does not cover a request with credentials; the server must name %s", origin)
    end
    check(true, "Access-Control-Allow-Origin: * allows any origin (without credentials)")
  elseif not check(acao == origin, "Access-Control-Allow-Origin: %s %s", acao,
      acao == origin and "is the page's origin" or "is not the page's origin " .. origin) then
    return false
  end
  if opt.credentials then
    local acac = res.headers["access-control-allow-credentials"]
    return check(acac == "true", "Access-Control-Allow-Credentials: %s %s", tostring(acac),
      acac == "true" and "lets the request carry cookies" or "must be exactly true for a request with credentials")
  end
  return true
end

---------------------------------------------------------------------------
-- 1. Simple or preflight?

local simple, reasons = cors.classify(method, headers)
if same_origin then
  print("same origin: the URL is on the page's own origin, so CORS does not apply")
  local fields = {}
  for _, h in ipairs(headers) do
    fields[#fields + 1] = h[1]
    fields[#fields + 1] = h[2]
  end
  if method ~= "GET" and method ~= "HEAD" then
    -- Browsers send Origin on same-origin requests other than GET and HEAD.
    table.insert(fields, 1, origin)
    table.insert(fields, 1, "Origin")
  end
  local res = exchange(method, fields, body, "request")
  verdict(true, string.format("a page reads its own origin's answers (status %d); a proxy on the page's origin is one way around CORS", res.status))
elseif simple then
  print("simple request: " .. reasons[1])
  print("no preflight: the browser sends the request at once and checks the response")
else
  print("needs a preflight:")
  for _, r in ipairs(reasons) do print("  - " .. r) end

  -- 2. The preflight.
  local names = cors.unsafe_names(headers)
  local fields = {"Origin", origin, "Access-Control-Request-Method", method}
  if #names > 0 then
    fields[#fields + 1] = "Access-Control-Request-Headers"
    fields[#fields + 1] = table.concat(names, ",")
  end
  fields[#fields + 1] = "Accept"
  fields[#fields + 1] = "*/*"
  local res = exchange("OPTIONS", fields, nil, "preflight")
  check(res.status >= 200 and res.status < 300, "preflight status %d is %s", res.status,
    (res.status >= 200 and res.status < 300) and "in 200-299" or "not in 200-299: the browser stops here")
  local origin_ok = cors_check(res)
  if failed == 0 and origin_ok then
    local list = cors.list(res.headers["access-control-allow-methods"])
    local methods, any = {}, false
    for _, m in ipairs(list) do
      methods[m] = true
      if m == "*" then any = true end
    end
    local shown = res.headers["access-control-allow-methods"] or "(absent)"
    if methods[method] then
      check(true, "Access-Control-Allow-Methods: %s includes %s", shown, method)
    elseif any and not opt.credentials then
      check(true, "Access-Control-Allow-Methods: * allows %s (without credentials)", method)
    elseif cors.SIMPLE_METHODS[method] then
      check(true, "%s needs no listing in Access-Control-Allow-Methods (always allowed)", method)
    else
      check(false, "Access-Control-Allow-Methods: %s does not include %s%s", shown, method,
        any and " (* is only a name with credentials)" or "")
    end

    local allowed, any_header = {}, false
    for _, h in ipairs(cors.list(res.headers["access-control-allow-headers"])) do
      allowed[h:lower()] = true
      if h == "*" then any_header = true end
    end
    shown = res.headers["access-control-allow-headers"] or "(absent)"
    for _, name in ipairs(names) do
      if allowed[name] then
        check(true, "Access-Control-Allow-Headers: %s includes %s", shown, name)
      elseif any_header and not opt.credentials and name ~= "authorization" then
        check(true, "Access-Control-Allow-Headers: * allows %s (without credentials)", name)
      else
        check(false, "Access-Control-Allow-Headers: %s does not include %s", shown, name)
      end
    end

    local max_age = res.headers["access-control-max-age"]
    local secs = max_age and tonumber(max_age:match("^%s*(%d+)%s*$"))
    if secs then
      local kept = math.min(secs, cors.MAX_AGE_CAP)
      info("Access-Control-Max-Age: %s: the browser may repeat this request for %d s without a new preflight%s",
        max_age, kept, secs > kept and " (Chromium keeps answers at most " .. cors.MAX_AGE_CAP .. " s)" or "")
    else
      info("no Access-Control-Max-Age: the browser keeps the answer %d s, then asks again", cors.MAX_AGE_DEFAULT)
    end
  end
  if failed > 0 then
    verdict(false, "the preflight does not allow this request; the browser never sends " .. method .. " and the page gets a network error")
  end
  if opt["preflight-only"] then
    verdict(true, "the preflight allows " .. method .. " from " .. origin .. " (the request itself was not sent)")
  end
end

---------------------------------------------------------------------------
-- 3. The request itself.

local fields = {"Origin", origin}
for _, h in ipairs(headers) do
  fields[#fields + 1] = h[1]
  fields[#fields + 1] = h[2]
end
if opt["preflight-only"] then
  verdict(true, "a simple request needs no preflight (the request itself was not sent)")
end
local res = exchange(method, fields, body, "request")
if not cors_check(res) then
  verdict(false, "the request reached the server (status " .. res.status .. "), but the browser keeps the answer from the page")
end
local readable = {}
for i = 1, #res.fields, 2 do
  if cors.SAFELISTED_RESPONSE[res.fields[i]:lower()] then readable[#readable + 1] = res.fields[i] end
end
local exposed = cors.list(res.headers["access-control-expose-headers"])
for _, name in ipairs(exposed) do readable[#readable + 1] = name .. " (exposed)" end
info("the page can read the status, the body and the headers %s", table.concat(readable, ", "))
verdict(true, string.format("the page can send %s from %s and read the answer (status %d)", method, origin, res.status))
