-- cors.lua: the browser's rules for cross-origin requests (the Fetch
-- standard's CORS protocol), for cors_server.lua and cors_check.lua.
--
-- An origin is scheme://host:port. A page may read responses from its own
-- origin; from another, only when the response says so with
-- Access-Control-Allow-Origin. A "simple" request goes out at once:
--   - its method is GET, HEAD or POST,
--   - the page set no header but Accept, Accept-Language, Content-Language,
--     Content-Type (and Range, a single byte range), with short values,
--   - Content-Type, if set, is application/x-www-form-urlencoded,
--     multipart/form-data or text/plain.
-- Any other request is first asked about: the browser sends a preflight,
--   OPTIONS /path
--   Origin: http://page.example
--   Access-Control-Request-Method: PUT
--   Access-Control-Request-Headers: content-type, x-token
-- and sends the request itself only if the answer allows that origin, that
-- method and those headers (Access-Control-Allow-Origin, -Methods,
-- -Headers), remembering the answer for Access-Control-Max-Age seconds.

local cors = {}

cors.SIMPLE_METHODS = {GET = true, HEAD = true, POST = true}

cors.SIMPLE_CONTENT_TYPES = {
  ["application/x-www-form-urlencoded"] = true,
  ["multipart/form-data"] = true,
  ["text/plain"] = true,
}

-- Headers a page may never set: the browser owns them (Fetch "forbidden
-- request-header"). A request that names one in fetch() goes out without it.
cors.FORBIDDEN = {
  ["accept-charset"] = true, ["accept-encoding"] = true,
  ["access-control-request-headers"] = true, ["access-control-request-method"] = true,
  connection = true, ["content-length"] = true, cookie = true, cookie2 = true,
  date = true, dnt = true, expect = true, host = true, ["keep-alive"] = true,
  origin = true, referer = true, ["set-cookie"] = true, te = true, trailer = true,
  ["transfer-encoding"] = true, upgrade = true, via = true,
}

function cors.forbidden(name)
  name = name:lower()
  return cors.FORBIDDEN[name] or name:find("^proxy%-") ~= nil or name:find("^sec%-") ~= nil
end

-- mime("text/plain; charset=utf-8") -> "text/plain"
local function mime(value)
  return ((value or ""):match("^%s*([^;%s]+)") or ""):lower()
end

-- Bytes the standard calls CORS-unsafe in a safelisted header's value.
local UNSAFE = '[%z\1-\8\10-\31"():<>?@%[\\%]{}\127]'

-- safelisted(name, value) -> true | false, why: may a page send this
-- header in a simple request?
function cors.safelisted(name, value)
  local key = name:lower()
  if #value > 128 then return false, "header " .. name .. " has a value longer than 128 bytes" end
  if key == "accept" then
    if value:find(UNSAFE) then return false, "header Accept has a CORS-unsafe byte in its value" end
    return true
  elseif key == "accept-language" or key == "content-language" then
    if value:find("[^%w *,%-.;=]") then return false, "header " .. name .. " has a character outside 0-9A-Za-z *,-.;=" end
    return true
  elseif key == "content-type" then
    if value:find(UNSAFE) then return false, "Content-Type has a CORS-unsafe byte in its value" end
    local m = mime(value)
    if not cors.SIMPLE_CONTENT_TYPES[m] then
      return false, "Content-Type " .. m .. " is not application/x-www-form-urlencoded, multipart/form-data or text/plain"
    end
    return true
  elseif key == "range" then
    if value:match("^bytes=%d+%-%d*$") then return true end
    return false, "Range " .. value .. " is not a single byte range"
  end
  return false, "header " .. name .. " is not CORS-safelisted (only Accept, Accept-Language, Content-Language, Content-Type)"
end

-- classify(method, headers) -> simple, reasons, brief. headers is a list
-- of {name, value} the page sets. reasons lists every rule that makes the
-- request need a preflight, or (when simple) why it does not; brief names
-- the culprits in a few words ("method PUT", "header x-token").
function cors.classify(method, headers)
  local reasons, brief = {}, {}
  if not cors.SIMPLE_METHODS[method] then
    reasons[#reasons + 1] = "method " .. method .. " is not GET, HEAD or POST"
    brief[#brief + 1] = "method " .. method
  end
  for _, h in ipairs(headers) do
    if not cors.forbidden(h[1]) then
      local ok, why = cors.safelisted(h[1], h[2])
      if not ok then
        reasons[#reasons + 1] = why
        brief[#brief + 1] = h[1]:lower() == "content-type" and "Content-Type " .. mime(h[2])
          or "header " .. h[1]
      end
    end
  end
  if #reasons > 0 then return false, reasons, brief end
  return true, {"method " .. method .. " is GET, HEAD or POST, and every header is CORS-safelisted"}, {}
end

-- unsafe_names(headers) -> the lower-case, sorted, unique names of the
-- headers a preflight must ask about (Access-Control-Request-Headers).
function cors.unsafe_names(headers)
  local seen, out = {}, {}
  for _, h in ipairs(headers) do
    local key = h[1]:lower()
    if not cors.forbidden(key) and not cors.safelisted(h[1], h[2]) and not seen[key] then
      seen[key] = true
      out[#out + 1] = key
    end
  end
  table.sort(out)
  return out
end

-- list("GET, PUT ,x") -> {"GET", "PUT", "x"}: a comma-separated field.
function cors.list(value)
  local out = {}
  for item in (value or ""):gmatch("[^,]+") do
    item = item:match("^%s*(.-)%s*$")
    if item ~= "" then out[#out + 1] = item end
  end
  return out
end

-- parse_origin("http://a.example:8080") -> the origin as browsers
-- serialize it (scheme and host lower case, no default port, no path), or
-- nil, message. "null" is the origin of sandboxed and file: pages.
function cors.parse_origin(s)
  if s == "null" or s == "*" then return s end
  local scheme, host, port = s:match("^(%a[%w+.-]*)://([^/:?#]+):?(%d*)$")
  if not scheme then
    scheme, host, port = s:match("^(%a[%w+.-]*)://(%[[%x:.]+%]):?(%d*)$")
  end
  if not scheme then return nil, "not an origin (scheme://host[:port], no path): " .. s end
  scheme, host = scheme:lower(), host:lower()
  local default = ({http = "80", https = "443"})[scheme]
  if port == "" or port == default then return scheme .. "://" .. host end
  return scheme .. "://" .. host .. ":" .. port
end

-- Response headers a page can always read; others only when listed in
-- Access-Control-Expose-Headers.
cors.SAFELISTED_RESPONSE = {
  ["cache-control"] = true, ["content-language"] = true, ["content-length"] = true,
  ["content-type"] = true, expires = true, ["last-modified"] = true, pragma = true,
}

-- Chromium keeps a preflight's answer at most two hours, whatever
-- Access-Control-Max-Age says; without one, five seconds.
cors.MAX_AGE_CAP = 7200
cors.MAX_AGE_DEFAULT = 5

return cors
