-- http.lua: HTTP/1.1 message parsing and writing on sockplay's sockets.
--
-- HTTP is text on a TCP connection. Every message, request or response,
-- has the same four parts:
--
--   GET /index.html HTTP/1.1\r\n        a start line: the request line, or
--   Host: example.org\r\n                  the status line "HTTP/1.1 200 OK"
--   Accept: */*\r\n                     header fields, "Name: value", one a line
--   \r\n                                an empty line: the head ends here
--   ...                                 the body, if the headers announce one
--
-- The body is framed by the headers: "Content-Length: 52" says 52 bytes
-- follow; "Transfer-Encoding: chunked" says the body comes in pieces, each
-- prefixed by its size in hex, ended by a piece of size 0. Without either a
-- request has no body, and a response runs until the server closes.
--
-- This library is used by http_client.lua and http_server.lua. Functions
-- that read take a "reader": a socket object, or http.string_reader(text),
-- anything with read_until(delim, max) and read_exact(n) as sockets have.
-- A reader's failures come back as nil, message, status: status is the
-- HTTP status a server answers the problem with (400 malformed, 408 too
-- slow, 413 and 431 too large, 501 not supported), or nil when the peer
-- just went away.

local http = {}

-- Local names for the string functions used on every request: a local is
-- found faster than a method looked up through the string's metatable.
local find, sub, byte, lower = string.find, string.sub, string.byte, string.lower

http.SERVER = "sockplay-http/0.1"

---------------------------------------------------------------------------
-- Status codes. The first digit is the class: 1xx informational (more is
-- coming), 2xx success, 3xx redirection, 4xx the client's mistake, 5xx the
-- server's failure.

http.REASONS = {
  [100] = "Continue", [101] = "Switching Protocols", [103] = "Early Hints",
  [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [206] = "Partial Content",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other",
  [304] = "Not Modified", [307] = "Temporary Redirect", [308] = "Permanent Redirect",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [408] = "Request Timeout",
  [409] = "Conflict", [411] = "Length Required", [413] = "Content Too Large",
  [414] = "URI Too Long", [415] = "Unsupported Media Type",
  [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
  [505] = "HTTP Version Not Supported",
}

-- The methods this library knows. A server answers others with 501.
http.METHODS = {
  GET = true, HEAD = true, POST = true, PUT = true, DELETE = true,
  OPTIONS = true, PATCH = true,
}

---------------------------------------------------------------------------
-- MIME types: the Content-Type header names what a body is, so that a
-- browser renders HTML, runs JavaScript, shows an image. Servers pick it
-- from the file name's extension.

http.MIME = {
  html = "text/html", htm = "text/html", css = "text/css",
  js = "text/javascript", mjs = "text/javascript", json = "application/json",
  txt = "text/plain", md = "text/markdown", csv = "text/csv",
  xml = "application/xml", svg = "image/svg+xml",
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif",
  webp = "image/webp", ico = "image/vnd.microsoft.icon", avif = "image/avif",
  pdf = "application/pdf", wasm = "application/wasm", zip = "application/zip",
  gz = "application/gzip", tar = "application/x-tar",
  mp3 = "audio/mpeg", ogg = "audio/ogg", wav = "audio/wav",
  mp4 = "video/mp4", webm = "video/webm",
  woff = "font/woff", woff2 = "font/woff2", ttf = "font/ttf", otf = "font/otf",
}

-- Text types say which character set their bytes are in.
local function is_text(mime)
  return mime:find("^text/") or mime == "application/json"
      or mime == "application/xml" or mime == "image/svg+xml"
end

-- mime_type("a/b.HTML") -> "text/html; charset=utf-8". Unknown extensions
-- get application/octet-stream: "some bytes", which browsers download.
function http.mime_type(path)
  local ext = path:match("%.([^./]+)$")
  local mime = ext and http.MIME[ext:lower()]
  if not mime then return "application/octet-stream" end
  if is_text(mime) then return mime .. "; charset=utf-8" end
  return mime
end

-- is_binary guesses whether a body is for people to read.
function http.is_binary(content_type, body)
  local mime = (content_type or ""):match("^%s*([^;%s]+)") or ""
  mime = mime:lower()
  if mime:find("^text/") or mime:find("json") or mime:find("xml")
      or mime:find("javascript") or mime == "application/x-www-form-urlencoded" then
    return false
  end
  if mime ~= "" then return true end
  -- No type: look at the bytes. NUL and most control characters mean binary.
  return body:find("[%z\1-\8\11\12\14-\31\127]") ~= nil
end

---------------------------------------------------------------------------
-- URLs: scheme://host:port/path?query. In the path, bytes that are not
-- letters, digits or a few marks travel as %XX, their value in hex.

-- percent_decode("a%20b") -> "a b"; nil, message for a bad escape.
function http.percent_decode(s)
  if s:find("%%") and (s:find("%%%X") or s:find("%%.%X") or s:find("%%.?$")) then
    return nil, "bad percent escape"
  end
  return (s:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

-- percent_encode_path keeps "/" and the unreserved characters, for links.
function http.percent_encode_path(s)
  return (s:gsub("[^%w/%-._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- parse_url("http://h:8080/p?q") -> {scheme, host, port, target, authority}.
-- target is what goes on the request line: the path and the query.
function http.parse_url(url)
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    scheme, rest = "http", url -- like curl: "localhost:8080/x" means http
  end
  scheme = scheme:lower()
  local authority, target = rest:match("^([^/?#]*)(.*)$")
  target = target:gsub("#.*$", "") -- the fragment never leaves the client
  if target == "" then target = "/" end
  if target:sub(1, 1) == "?" then target = "/" .. target end
  authority = authority:gsub("^.*@", "") -- user:password@ is not supported
  local host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$") -- [::1]:8080
  if not host then host, port = authority:match("^([^:]*):?(%d*)$") end
  if not host or host == "" then return nil, "no host in URL " .. url end
  local default = ({http = 80, https = 443})[scheme]
  port = tonumber(port) or default
  if not port then return nil, "unknown scheme " .. scheme end
  if port < 1 or port > 65535 then return nil, "bad port in URL " .. url end
  return {scheme = scheme, host = host, port = port, target = target,
          authority = http.host_header(host, port, default)}
end

-- host_header is the Host header's value: the port only when not the default.
function http.host_header(host, port, default_port)
  if host:find(":") then host = "[" .. host .. "]" end
  if port == (default_port or 80) then return host end
  return host .. ":" .. port
end

-- resolve_url turns a Location header into a full URL, relative to base.
function http.resolve_url(base, location)
  if location:find("^%a[%w+.-]*://") then return location end
  local b = assert(http.parse_url(base))
  local origin = b.scheme .. "://" .. b.authority
  if location:sub(1, 2) == "//" then return b.scheme .. ":" .. location end
  if location:sub(1, 1) == "/" then return origin .. location end
  local dir = b.target:gsub("%?.*$", ""):match("^(.*/)") or "/"
  return origin .. dir .. location
end

function http.html_escape(s)
  return (s:gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                              ['"'] = "&quot;", ["'"] = "&#39;"}))
end

---------------------------------------------------------------------------
-- Dates. HTTP dates are always GMT, in one fixed format:
--   Sun, 06 Nov 1994 08:49:37 GMT
-- Computed here by hand because they must not depend on the local time
-- zone or locale.

local DAYS = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"} -- 1970-01-01 was a Thursday
local MONTHS = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
local MONTH_NUMBER = {}
for i, m in ipairs(MONTHS) do MONTH_NUMBER[m] = i end

-- civil_from_days: days since 1970-01-01 -> year, month, day (the
-- proleptic Gregorian calendar; Howard Hinnant's algorithm).
local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return y, m, d
end

-- days_from_civil is the inverse: year, month, day -> days since 1970.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- date(seconds since 1970) -> "Sun, 06 Nov 1994 08:49:37 GMT"
function http.date(t)
  t = math.floor(t)
  local days = math.floor(t / 86400)
  local secs = t - days * 86400
  local y, m, d = civil_from_days(days)
  return string.format("%s, %02d %s %04d %02d:%02d:%02d GMT", DAYS[days % 7 + 1], d,
    MONTHS[m], y, math.floor(secs / 3600), math.floor(secs % 3600 / 60), secs % 60)
end

-- parse_date accepts the three formats HTTP/1.1 recipients must read:
--   Sun, 06 Nov 1994 08:49:37 GMT    (IMF-fixdate, the one to send)
--   Sunday, 06-Nov-94 08:49:37 GMT   (obsolete RFC 850)
--   Sun Nov  6 08:49:37 1994         (obsolete asctime)
function http.parse_date(s)
  local d, mon, y, hh, mm, ss = s:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d then
    d, mon, y, hh, mm, ss = s:match("^%a+, (%d%d)%-(%a%a%a)%-(%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    if y then
      y = tonumber(y)
      y = y < 70 and 2000 + y or 1900 + y
    end
  end
  if not d then
    mon, d, hh, mm, ss, y = s:match("^%a+ (%a%a%a) +(%d%d?) (%d%d):(%d%d):(%d%d) (%d%d%d%d)$")
  end
  local month = mon and MONTH_NUMBER[mon]
  if not month then return nil end
  d, y, hh, mm, ss = tonumber(d), tonumber(y), tonumber(hh), tonumber(mm), tonumber(ss)
  if d < 1 or d > 31 or hh > 23 or mm > 59 or ss > 60 then return nil end
  return days_from_civil(y, month, d) * 86400 + hh * 3600 + mm * 60 + ss
end

-- date_now is date(now), computed once a second: a busy server sends the
-- same Date header thousands of times.
local last_second, last_date
function http.date_now()
  local now = os.time()
  if now ~= last_second then
    last_second, last_date = now, http.date(now)
  end
  return last_date
end

---------------------------------------------------------------------------
-- Start lines and header fields.
--
-- A server parses these for every request, so they are split with plain
-- string.find and string.sub rather than Lua patterns: in gopher-lua a
-- pattern is compiled anew on every call, and costs ten times as much.

-- A token is what methods and header names are made of: letters, digits
-- and these marks; no spaces, no colons, no quotes. The answer for each
-- name seen is remembered (clients send the same few names again and
-- again), up to a limit so that a hostile client cannot fill memory.
local TOKEN_CHARS = "^[%w!#$%%&'*+%-.^_`|~]+$"
local token_memo, token_memo_size = {}, 0

local function is_token(s)
  local ok = token_memo[s]
  if ok == nil then
    ok = find(s, TOKEN_CHARS) ~= nil
    if token_memo_size < 1000 then
      token_memo[s], token_memo_size = ok, token_memo_size + 1
    end
  end
  return ok
end
http.is_token = is_token

-- strip_eol removes the line end read_until("\n") leaves: \r\n or \n.
local function strip_eol(line)
  if byte(line, -2) == 13 then return sub(line, 1, -3) end
  if byte(line, -1) == 10 then return sub(line, 1, -2) end
  return line
end
http.strip_eol = strip_eol

-- parse_request_line("GET /a?b HTTP/1.1") -> "GET", "/a?b", "1.1"
-- or nil, message, status: exactly two single spaces, the method a token,
-- the version HTTP/digit.digit. (The target is checked where it is used:
-- a server that looks up files refuses what no file name holds.)
function http.parse_request_line(line)
  local sp1 = find(line, " ", 1, true)
  local sp2 = sp1 and find(line, " ", sp1 + 1, true)
  if not sp2 or sp1 == 1 or sp2 == sp1 + 1 then
    return nil, "malformed request line", 400
  end
  local method, target, version = sub(line, 1, sp1 - 1), sub(line, sp1 + 1, sp2 - 1), sub(line, sp2 + 1)
  if not (token_memo[method] or is_token(method)) then return nil, "malformed request line", 400 end
  if version == "HTTP/1.1" then return method, target, "1.1" end
  if version == "HTTP/1.0" then return method, target, "1.0" end
  local major, minor = version:match("^HTTP/(%d)%.(%d)$") -- (a third space fails here too)
  if not major then return nil, "malformed request line", 400 end
  if major ~= "1" then
    return nil, "HTTP version " .. major .. "." .. minor .. " not supported", 505
  end
  return method, target, "1.1" -- HTTP/1.2 and up are read as 1.1, the newest we speak
end

-- parse_status_line("HTTP/1.1 404 Not Found") -> "1.1", 404, "Not Found"
function http.parse_status_line(line)
  local version, code, reason = line:match("^HTTP/(%d%.%d) (%d%d%d) ?(.*)$")
  if not version then return nil, "malformed status line: " .. line end
  return version, tonumber(code), reason
end

-- parse_header_line("Content-Type: text/html") -> "Content-Type", "text/html"
-- The name is a token right before the colon: "Host : x" has a space
-- there and must be rejected (RFC 9112 5.1), as must a line that starts
-- with a space (the obsolete folding of a long value). Spaces and tabs
-- around the value do not count.
function http.parse_header_line(line)
  local colon = find(line, ":", 1, true)
  local name = colon and sub(line, 1, colon - 1)
  if not name or not (token_memo[name] or is_token(name)) then
    return nil, "malformed header line"
  end
  local first, last = colon + 1, #line
  local b = byte(line, first)
  while b == 32 or b == 9 do first = first + 1; b = byte(line, first) end -- space, tab
  b = byte(line, last)
  while last >= first and (b == 32 or b == 9) do last = last - 1; b = byte(line, last) end
  local value = sub(line, first, last)
  if find(value, "\r", 1, true) or find(value, "\0", 1, true) then
    return nil, "control character in header " .. name
  end
  return name, value
end

-- add_header files a header under its lower-case name (names are case
-- insensitive); a repeated header joins the earlier value with ", ".
local lower_memo, lower_memo_size = {}, 0

function http.add_header(headers, name, value)
  local key = lower_memo[name]
  if not key then
    key = lower(name)
    if lower_memo_size < 1000 then
      lower_memo[name], lower_memo_size = key, lower_memo_size + 1
    end
  end
  local old = headers[key]
  if old then
    headers[key] = old .. ", " .. value
  else
    headers[key] = value
  end
end

-- has_token("keep-alive, Upgrade", "upgrade") -> true: for comma lists of
-- tokens, as Connection and Transfer-Encoding hold.
function http.has_token(value, token)
  if not value then return false end
  for item in value:gmatch("[^,]+") do
    if item:match("^%s*(.-)%s*$"):lower() == token then return true end
  end
  return false
end

-- keeps_alive(msg): may the connection carry another message after this
-- one? HTTP/1.1 says yes unless "Connection: close"; HTTP/1.0 says no
-- unless "Connection: keep-alive". msg.closed (a body that ran until the
-- peer closed) says no too.
function http.keeps_alive(msg)
  if msg.closed then return false end
  local conn = msg.headers.connection
  if msg.version == "1.0" then return http.has_token(conn, "keep-alive") end
  return not http.has_token(conn, "close")
end

---------------------------------------------------------------------------
-- Reading a message head from a reader.

-- failed maps a reader's failure (msg, code) to the status a server
-- answers it with: 408 when the peer was too slow, 431 when a line would
-- not end, 400 when the connection closed in the middle of a message, and
-- nil when it closed or reset between messages: nothing to answer then.
local function failed(msg, code, midway)
  if code == "ETIMEDOUT" then return nil, "timed out", 408 end
  if code == "ENOBUFS" then return nil, "line too long", 431 end
  if code == "EOF" and midway then
    return nil, "connection closed in the middle of a message", 400
  end
  return nil, msg, nil
end

-- read_head reads lines up to the empty line that ends a message head and
-- returns them without their line ends, at most max bytes in all (431
-- beyond). Lines end with \r\n, but a bare \n is accepted too (RFC 9112
-- 2.2), so that a person typing into nc is understood. Empty lines before
-- the start line are skipped, as RFC 9112 2.2 asks of servers.
-- The fourth result on failure tells whether any byte had arrived.
function http.read_head(r, max)
  max = max or 8192
  local lines, used = {}, 0
  while true do
    local line, msg, code, partial = r:read_until("\n", max - used + 1)
    if not line then
      local midway = used > 0 or (partial or "") ~= ""
      local _, why, status = failed(msg, code, midway)
      return nil, why, status, midway
    end
    used = used + #line
    if used > max then return nil, "head too large", 431, true end
    line = strip_eol(line)
    if line == "" then
      if #lines > 0 then return lines end
    else
      lines[#lines + 1] = line
    end
  end
end

-- parse_headers turns header lines (from index first on) into a table keyed
-- by lower-case name.
function http.parse_headers(lines, first)
  local headers = {}
  for i = first or 2, #lines do
    local name, value = http.parse_header_line(lines[i])
    if not name then return nil, value .. ": " .. lines[i] end
    http.add_header(headers, name, value)
  end
  return headers
end

---------------------------------------------------------------------------
-- Bodies.

-- read_chunked reads a chunked body:
--   5\r\n            the size of the next chunk, in hex
--   hello\r\n        that many bytes, and a line end
--   0\r\n            a chunk of size 0 ends the body,
--   \r\n             after optional trailer fields and an empty line.
-- on_chunk(size), when given, hears of each chunk as it arrives. Returns
-- the body and the trailer fields.
function http.read_chunked(r, max, on_chunk)
  local parts, total = {}, 0
  while true do
    local line, msg, code = r:read_until("\n", 1024)
    if not line then return failed(msg, code, true) end
    -- "1a;name=value": chunk extensions after ";" are allowed and ignored.
    local hex = line:match("^(%x+)[ \t]*[;\r\n]")
    if not hex or #hex > 8 then return nil, "bad chunk size line", 400 end
    local size = tonumber(hex, 16)
    if on_chunk then on_chunk(size) end
    if size == 0 then break end
    total = total + size
    if max and total > max then return nil, "body too large", 413 end
    local data
    data, msg, code = r:read_exact(size)
    if not data then return failed(msg, code, true) end
    parts[#parts + 1] = data
    local crlf = r:read_until("\n", 2)
    if crlf ~= "\r\n" and crlf ~= "\n" then return nil, "chunk not followed by a line end", 400 end
  end
  local trailer_lines, msg, status = http.read_head_rest(r, 8192)
  if not trailer_lines then return nil, msg, status or 400 end
  local trailers, err = http.parse_headers(trailer_lines, 1)
  if not trailers then return nil, err, 400 end
  return table.concat(parts), trailers
end

-- read_head_rest reads header lines up to an empty line, with no start
-- line before them (the trailer section of a chunked body).
function http.read_head_rest(r, max)
  local lines, used = {}, 0
  while true do
    local line, msg, code = r:read_until("\n", max - used + 1)
    if not line then return failed(msg, code, true) end
    used = used + #line
    if used > max then return nil, "trailers too large", 431 end
    line = strip_eol(line)
    if line == "" then return lines end
    lines[#lines + 1] = line
  end
end

-- body_length says how a message's body is framed, from its headers:
-- "chunked", a byte count, or nil (no framing header).
-- nil, message, status when the framing is broken or ambiguous.
function http.body_length(headers)
  local te, cl = headers["transfer-encoding"], headers["content-length"]
  if te then
    -- With both, a proxy and a server might disagree where the message
    -- ends (request smuggling): refuse.
    if cl then return nil, "both Transfer-Encoding and Content-Length", 400 end
    if lower(te) ~= "chunked" then return nil, "transfer coding " .. te .. " not supported", 501 end
    return "chunked"
  end
  if cl then
    if not cl:match("^%d+$") or #cl > 15 then return nil, "bad Content-Length " .. cl, 400 end
    return tonumber(cl)
  end
  return nil
end

-- read_body reads a body framed as body_length says, at most max bytes
-- (413 beyond). With no framing header the body is empty, as for requests.
function http.read_body(r, headers, max)
  local length, msg, status = http.body_length(headers)
  if msg then return nil, msg, status end
  if length == "chunked" then
    return http.read_chunked(r, max)
  end
  if not length or length == 0 then return "" end
  if max and length > max then return nil, "body too large", 413 end
  local body, err, code = r:read_exact(length)
  if not body then return failed(err, code, true) end
  return body
end

---------------------------------------------------------------------------
-- Requests, as a server reads them.

-- read_request reads one request: head and body. It returns
--   {method, target, version, path, query, headers, body, line}
-- or nil, message, status, midway, partial: status nil means the client
-- closed the connection between requests, nothing to answer; midway says
-- whether any of a request had arrived; partial is what was understood.
-- limits: {head = bytes, body = bytes, on_continue = fn(req)}; on_continue
-- is called before the body is read when the client sent "Expect:
-- 100-continue", to send the interim "100 Continue" it waits for.
--
-- A server runs this for every request, so it reads and parses the head
-- in one loop (read_head and parse_headers do the same in two steps), and
-- it may pass the table of the previous request on the connection as
-- reuse, to be filled again: for gopher-lua, building a table with ten
-- fields costs more than all the parsing.
function http.read_request(r, limits, reuse)
  local max = limits.head or 8192
  local read_until = r.read_until -- looked up once, not once a line
  local req = reuse
  if req then
    -- (path, query and target are always set again before use.)
    req.line, req.method, req.version, req.body = false, false, false, ""
    for name in pairs(req.headers) do req.headers[name] = nil end
  else
    req = {line = false, method = false, target = false, version = false,
           path = false, query = false, headers = {}, body = ""}
  end
  local headers = req.headers
  local used = 0
  while true do
    local line, msg, code, partial = read_until(r, "\n", max - used + 1)
    if not line then
      local midway = used > 0 or (partial or "") ~= ""
      local _, why, status = failed(msg, code, midway)
      return nil, why, status, midway, req.line and req
    end
    used = used + #line
    if used > max then return nil, "head too large", 431, true, req.line and req end
    -- The line without its end, \r\n or a bare \n.
    if line == "\r\n" or line == "\n" then
      line = ""
    elseif byte(line, -2) == 13 then
      line = sub(line, 1, -3)
    else
      line = sub(line, 1, -2)
    end
    if not req.line then
      -- The request line; empty lines before it are skipped (RFC 9112 2.2).
      if line ~= "" then
        req.line = line
        local method, target, version = http.parse_request_line(line)
        if not method then return nil, target, version, true, req end
        req.method, req.target, req.version = method, target, version
      end
    elseif line == "" then
      break -- the empty line: the head is complete
    else
      local name, value = http.parse_header_line(line)
      if not name then return nil, value .. ": " .. line, 400, true, req end
      http.add_header(headers, name, value)
    end
  end
  if req.version == "1.1" and not headers.host then
    return nil, "HTTP/1.1 request without Host", 400, true, req
  end

  -- The target: "/path?query" (origin form), "http://host/path?query"
  -- (absolute form, as sent to proxies), or "*" (OPTIONS of the server).
  local target, path = req.target, req.target
  if byte(target, 1) ~= 47 then -- not "/"
    -- (Written with if, not "path = find(...) and ...": gopher-lua leaves
    -- a local unchanged when such an and-expression yields nil.)
    if find(lower(target), "^https?://") then
      path = target:match("^%a+://[^/?#]*(.*)$")
      if path == "" or byte(path, 1) == 63 then path = "/" .. path end -- "?q" -> "/?q"
      if byte(path, 1) ~= 47 then return nil, "bad request target " .. target, 400, true, req end
    elseif target == "*" and req.method == "OPTIONS" then
      path = "*"
    else
      return nil, "bad request target " .. target, 400, true, req
    end
  end
  local q = find(path, "?", 1, true)
  if q then
    req.path, req.query = sub(path, 1, q - 1), sub(path, q + 1)
  else
    req.path, req.query = path, ""
  end

  -- The body, if the headers announce one.
  if headers["content-length"] or headers["transfer-encoding"] then
    local length, msg, status = http.body_length(headers)
    if msg then return nil, msg, status, true, req end
    -- A client may ask before it sends a large body: "Expect: 100-continue".
    if length ~= 0 and headers.expect and lower(headers.expect) == "100-continue" and limits.on_continue then
      if length ~= "chunked" and limits.body and length > limits.body then
        return nil, "body too large", 413, true, req
      end
      limits.on_continue(req)
    end
    req.body, msg, status = http.read_body(r, headers, limits.body)
    if not req.body then return nil, msg, status or 400, true, req end
  end
  return req
end

---------------------------------------------------------------------------
-- Writing.

-- status_line(404) -> "HTTP/1.1 404 Not Found\r\n"
function http.status_line(code, reason)
  return "HTTP/1.1 " .. code .. " " .. (reason or http.REASONS[code] or "Unknown") .. "\r\n"
end

-- head(start_line, {name1, value1, name2, value2, ...}) -> the head, ready
-- to write: the start line, "Name: value" lines, the empty line. Headers
-- are a flat list so that their order is kept and writing them is cheap.
function http.head(start_line, fields)
  local out = {start_line}
  for i = 1, #fields, 2 do
    out[#out + 1] = fields[i] .. ": " .. fields[i + 1] .. "\r\n"
  end
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

-- chunk("hello") -> "5\r\nhello\r\n"; the body's end is http.LAST_CHUNK.
function http.chunk(data)
  return string.format("%x\r\n", #data) .. data .. "\r\n"
end
http.LAST_CHUNK = "0\r\n\r\n"

---------------------------------------------------------------------------
-- Logs.

-- printable keeps a log line on one line whatever a client sent: at most
-- 200 bytes, control characters, quotes, backslashes and non-ASCII bytes
-- as \xNN.
function http.printable(s)
  s = s or "-"
  if #s > 200 then s = s:sub(1, 200) .. "..." end
  return (s:gsub("[%c\"\\\128-\255]", function(ch) return string.format("\\x%02x", ch:byte()) end))
end

---------------------------------------------------------------------------
-- CGI responses (RFC 3875 section 6). A CGI program writes a head and a
-- body on its standard output, much like an HTTP response without its
-- status line:
--   Content-Type: text/html          what the body is
--   Status: 404 Not Found            the status (default 200)
--   Location: /elsewhere             a redirect
--   (empty line, then the body)
-- Lines may end with \n alone. At least one of the three fields must be
-- there.

-- parse_cgi_response(output) -> {status, reason, fields, headers, body}
-- or nil, message. fields is the flat list of the other header fields.
function http.parse_cgi_response(out)
  local head_end, body_start = out:find("\r?\n\r?\n")
  if not head_end then
    return nil, "no empty line after the CGI headers"
  end
  local res = {status = 200, fields = {}, headers = {}, body = out:sub(body_start + 1)}
  local head = out:sub(1, head_end - 1)
  for line in (head .. "\n"):gmatch("(.-)\r?\n") do
    local name, value = http.parse_header_line(line)
    if not name then return nil, "malformed CGI header line: " .. line end
    local key = name:lower()
    if key == "status" then
      local code, reason = value:match("^(%d%d%d) ?(.*)$")
      if not code or tonumber(code) < 100 then return nil, "malformed Status: " .. value end
      res.status, res.reason = tonumber(code), reason ~= "" and reason or nil
    else
      res.fields[#res.fields + 1] = name
      res.fields[#res.fields + 1] = value
    end
    http.add_header(res.headers, name, value)
  end
  local h = res.headers
  if not (h["content-type"] or h["location"] or h["status"]) then
    return nil, "CGI response has none of Content-Type, Location, Status"
  end
  return res
end

---------------------------------------------------------------------------
-- A reader over a string, with the socket's read_until and read_exact, for
-- parsing saved messages and for tests.

function http.string_reader(s)
  local pos = 1
  local r = {}
  function r:read_until(delim, max)
    local i, j = s:find(delim, pos, true)
    if max and max > 0 and (not i or j - pos + 1 > max) and #s - pos + 1 >= max then
      local partial = s:sub(pos)
      pos = #s + 1
      return nil, "delimiter not found within the size limit", "ENOBUFS", partial
    end
    if not i then
      local partial = s:sub(pos)
      pos = #s + 1
      return nil, "end of stream", "EOF", partial
    end
    local out = s:sub(pos, j)
    pos = j + 1
    return out
  end
  function r:read_exact(n)
    if #s - pos + 1 < n then
      local partial = s:sub(pos)
      pos = #s + 1
      return nil, "end of stream", "EOF", partial
    end
    local out = s:sub(pos, pos + n - 1)
    pos = pos + n
    return out
  end
  function r:rest() return s:sub(pos) end
  return r
end

return http
