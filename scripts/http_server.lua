-- http_server.lua: a static file server with CGI, HTTP/1.1 on raw sockets.
--
--   sockplay scripts/http_server.lua --root DIR [--host H] [--port P]
--       [--cgi-bin DIR] [--allow-put] [--max-conns N] [--timeout S]
--       [--cgi-timeout S] [--max-body BYTES]
--
-- One task per connection. Each reads a request (lib/http.lua), finds
-- the file or the CGI program it names, writes the response, and reads the
-- next request on the same connection unless one side asked to close.
-- Try it:
--   curl -v http://127.0.0.1:PORT/
--   printf 'GET / HTTP/1.0\r\n\r\n' | nc -N 127.0.0.1 PORT
--   nc 127.0.0.1 PORT, then type "GET / HTTP/1.1", "Host: x" and an empty line

local args = require("args")
local http = require("http")
local server = require("server")
local find, sub, format = string.find, string.sub, string.format
local monotonic = time.monotonic

local USAGE = [[
usage: http_server.lua --root DIR [options]
  --root DIR         serve the files under DIR (required)
  --host H           address to listen on (default 127.0.0.1)
  --port P           port to listen on; 0 picks a free one (default 8080)
  --cgi-bin DIR      run the programs in DIR for /cgi-bin/NAME (RFC 3875)
  --allow-put        let PUT create and replace files under the root
  --max-conns N      connections served at once; more get 503 (default 256)
  --timeout S        seconds a client has to send a request (default 10)
  --cgi-timeout S    seconds a CGI program may run (default 10)
  --max-body BYTES   largest request body accepted (default 10485760)
The first line printed is "listening on HOST:PORT"; then one line per
request: client, request line, status, body bytes, time.]]

---------------------------------------------------------------------------
-- Options.

local opts = {host = "127.0.0.1", port = 8080, max_conns = 256, timeout = 10,
              cgi_timeout = 10, max_body = 10 * 1024 * 1024, max_head = 8192}

-- usage_error prints "http_server.lua: msg" and USAGE, and exits with 2.
local function usage_error(msg) args.usage_error("http_server.lua", USAGE, msg) end

local function number_arg(name, v, min)
  local n = tonumber(v)
  if not n or n < min then usage_error(name .. " needs a number >= " .. min .. ", not " .. tostring(v)) end
  return n
end

-- Each word in turn; value() takes the next word as the option's value.
-- (--help and -h print USAGE and exit.)
for a, value in args.words(arg, "http_server.lua", USAGE) do
  if a == "--root" then opts.root = value()
  elseif a == "--host" then opts.host = value()
  elseif a == "--port" then opts.port = number_arg(a, value(), 0)
  elseif a == "--cgi-bin" then opts.cgi_bin = value()
  elseif a == "--allow-put" then opts.allow_put = true
  elseif a == "--max-conns" then opts.max_conns = number_arg(a, value(), 1)
  elseif a == "--timeout" then opts.timeout = number_arg(a, value(), 0.001)
  elseif a == "--cgi-timeout" then opts.cgi_timeout = number_arg(a, value(), 0.001)
  elseif a == "--max-body" then opts.max_body = number_arg(a, value(), 0)
  else usage_error("unknown argument " .. a) end
end
if not opts.root then usage_error("--root DIR is required") end

-- realdir is the directory's absolute path with symlinks resolved: every
-- file served must resolve to a path under it.
local function realdir(dir, what)
  local real, msg = fs.realpath(dir)
  local st = real and fs.stat(real)
  if not st or st.type ~= "dir" then
    io.stderr:write(string.format("http_server.lua: %s %s: %s\n", what, dir, msg or "not a directory"))
    os.exit(1)
  end
  return real
end
local ROOT = realdir(opts.root, "--root")
local CGI_DIR = opts.cgi_bin and realdir(opts.cgi_bin, "--cgi-bin")

-- inside(real, dir): is the resolved path real dir itself or below it?
local function inside(real, dir)
  if dir == "/" then return true end
  return real == dir or real:sub(1, #dir + 1) == dir .. "/"
end

---------------------------------------------------------------------------
-- Responses. A handler returns a table:
--   {status = 200, fields = {"Content-Type", "text/html", ...}, body = "..."}
-- and send() adds the headers every response carries (Date, Server,
-- Content-Length, Connection). A handler builds the same response for HEAD
-- as for GET; send() leaves out the body.
-- Instead of body, a response may have size and file (sent in pieces), or
-- chunked = true (sent with Transfer-Encoding: chunked).

local function error_response(status, extra_fields, detail)
  local body = status .. " " .. http.REASONS[status] .. "\n" .. (detail and detail .. "\n" or "")
  local fields = {"Content-Type", "text/plain; charset=utf-8"}
  for i = 1, #(extra_fields or {}) do fields[#fields + 1] = extra_fields[i] end
  return {status = status, fields = fields, body = body}
end

-- Responses to these carry no body whatever the method (RFC 9110 6.4.1).
local function bodiless(status)
  return status < 200 or status == 204 or status == 304
end

local FILE_PIECE = 64 * 1024

-- The Date header, refreshed ten times a second by the ticker task below
-- rather than computed for every response.
local date = http.date_now()

-- send writes res on connection c in answer to req (nil when the request
-- could not be read). keep says whether the connection stays open.
-- Returns the number of body bytes written, or nil when the write failed.
local function send(c, req, res, keep)
  local status = res.status
  local is_head = req and req.method == "HEAD"
  local cached = res.cached
  if cached and (keep or not is_head) and not (req and req.version == "1.0") then
    -- A cached file: everything but the Date is ready, in one string. The
    -- most common answer, a GET on a kept-alive connection, is ready with
    -- the Date too, made again when the Date changes.
    if keep and not is_head then
      if cached.date ~= date then
        cached.date, cached.full = date, cached.status_date .. date .. cached.keep
      end
      return c:write(cached.full) and res.size
    end
    local rest = is_head and cached.head_keep or cached.close
    return c:write(cached.status_date .. date .. rest) and (is_head and 0 or res.size)
  end
  local out = {http.status_line(status, res.reason), "Date: ", date,
               "\r\nServer: ", http.SERVER, "\r\n"}
  local f = res.fields or {}
  for i = 1, #f, 2 do out[#out + 1] = f[i] .. ": " .. f[i + 1] .. "\r\n" end
  if res.chunked then
    out[#out + 1] = "Transfer-Encoding: chunked\r\n"
  elseif not bodiless(status) or res.size then
    out[#out + 1] = "Content-Length: " .. (res.size or #(res.body or "")) .. "\r\n"
  end
  if not keep then
    out[#out + 1] = "Connection: close\r\n"
  elseif req and req.version == "1.0" then
    out[#out + 1] = "Connection: keep-alive\r\n"
  end
  out[#out + 1] = "\r\n"
  local head = table.concat(out)

  local with_body = not bodiless(status) and not is_head
  if not with_body then
    return c:write(head) and 0
  end
  if res.chunked then
    -- The body in chunks, as a server that streams its output sends it.
    if not c:write(head) then return nil end
    local body = res.body
    for i = 1, #body, 16384 do
      if not c:write(http.chunk(body:sub(i, i + 16383))) then return nil end
    end
    return c:write(http.LAST_CHUNK) and #body
  end
  if res.file then
    -- A big file, read and written a piece at a time.
    if not c:write(head) then return nil end
    local sent = 0
    while sent < res.size do
      local piece = fs.read(res.file, sent, math.min(FILE_PIECE, res.size - sent))
      if not piece or piece == "" or not c:write(piece) then return nil end
      sent = sent + #piece
    end
    return sent
  end
  -- Head and body in one write: one system call, one TCP segment when small.
  local body = res.body or ""
  return c:write(head .. body) and #body
end

---------------------------------------------------------------------------
-- From URL path to file, and no way out of the root.
--
-- An attacker asks for /../../etc/passwd, or hides the dots from a naive
-- check: /%2e%2e/%2e%2e/etc/passwd, /..%2f..%2fetc/passwd. So the path is
-- decoded first and checked after; encoded slashes are refused outright
-- (they would let one segment become two); and the final check is on the
-- real path, with symlinks resolved, which must lie under the root.

-- resolve(url_path, base) -> the file's path, its stat | nil, status, why
-- (why is for the client to read, so it never holds a path of ours).
local function resolve(url_path, base)
  local path = url_path
  -- Most paths hold no "%", no backslash and no "/." at all: nothing to
  -- decode and no dot segment, so the checks below can be skipped.
  if find(path, "%", 1, true) or find(path, "/.", 1, true) or find(path, "\\", 1, true) then
    if find(path, "%%2[fF]") or find(path, "%%5[cC]") then
      return nil, 404, "encoded slash"
    end
    local err
    path, err = http.percent_decode(path)
    if not path then return nil, 400, err end
    if find(path, "\\", 1, true) then return nil, 403, "backslash in path" end
    for seg in path:gmatch("[^/]+") do
      if seg == ".." then return nil, 403, "'..' in path" end
    end
  end
  if find(path, "\0", 1, true) then return nil, 400, "NUL in path" end

  -- Walk down from base one segment at a time. lstat describes a symlink
  -- itself, not what it points to: while every step is a plain directory
  -- or file, the path cannot leave base. At a symlink, realpath says where
  -- the whole path really leads, and that must be under base.
  local here, st = base, {type = "dir"}
  local pos, len = 2, #path
  while pos <= len do
    local slash = find(path, "/", pos, true) or len + 1
    local seg = sub(path, pos, slash - 1)
    pos = slash + 1
    if seg ~= "" and seg ~= "." then
      here = here .. "/" .. seg
      local msg, code
      st, msg, code = fs.lstat(here)
      if not st then
        if code == "ENOENT" or code == "ENOTDIR" then return nil, 404, "no such file" end
        return nil, 403, code
      end
      if st.type == "symlink" then
        local real
        real, msg, code = fs.realpath(base .. path)
        if not real then return nil, code == "EACCES" and 403 or 404, code end
        if not inside(real, base) then return nil, 403, "a symlink leads outside" end
        st, msg, code = fs.stat(real)
        if not st then return nil, 404, code end
        return real, st
      end
    end
  end
  return here, st
end

---------------------------------------------------------------------------
-- Static files.

local function allow_static()
  return opts.allow_put and "GET, HEAD, PUT, OPTIONS" or "GET, HEAD, OPTIONS"
end

-- An ETag names one version of a file: it changes when the file does.
local function etag(st)
  return string.format('"%x-%x"', math.floor(st.mtime * 1e6), st.size)
end

-- not_modified: may the client use its cached copy? If-None-Match holds
-- the ETags it has; If-Modified-Since the Last-Modified date it has, and
-- counts only when If-None-Match is absent (RFC 9110 13.2.2).
local function not_modified(req, tag, mtime)
  local inm = req.headers["if-none-match"]
  if inm then
    if inm == "*" then return true end
    for t in inm:gmatch("[^,]+") do
      t = t:match("^%s*(.-)%s*$"):gsub("^W/", "")
      if t == tag then return true end
    end
    return false
  end
  local ims = req.headers["if-modified-since"]
  local since = ims and http.parse_date(ims)
  return since ~= nil and math.floor(mtime) <= since
end

-- Files are kept in memory, keyed by URL path, with their response ready
-- but for the Date. An entry is trusted for a second; after that the path
-- is resolved and stat'ed again, and a file that changed is read again. A
-- busy server does not ask the disk the same question thousands of times
-- a second (nginx's open_file_cache_valid is the same idea).
local CACHE_VALID = 1 -- second
local CACHE_FILE_MAX = 256 * 1024 -- bigger files are read a piece at a time
local CACHE_TOTAL_MAX = 16 * 1024 * 1024 -- of files; each is held in four ready strings
local cache, cache_bytes = {}, 0

local function forget_cache()
  cache, cache_bytes = {}, 0
end

-- file_entry reads a file and builds its response: {res, tag, mtime,
-- size, real}.
local function file_entry(real, st)
  local tag = etag(st)
  local ctype = http.mime_type(real)
  local fields = {"Content-Type", ctype, "Last-Modified", http.date(st.mtime), "ETag", tag}
  local e = {tag = tag, mtime = st.mtime, size = st.size, real = real}
  if st.size > CACHE_FILE_MAX then
    e.res = {status = 200, fields = fields, file = real, size = st.size}
    return e
  end
  local body, _, code = fs.read(real)
  if not body then
    e.res = error_response(403, nil, code)
    return e
  end
  local res = {status = 200, fields = fields, body = body, size = #body}
  local head_fields = "\r\nServer: " .. http.SERVER .. "\r\nContent-Type: " .. ctype ..
    "\r\nContent-Length: " .. #body .. "\r\nLast-Modified: " .. fields[4] .. "\r\nETag: " .. tag .. "\r\n"
  res.cached = {
    status_date = http.status_line(200) .. "Date: ",
    keep = head_fields .. "\r\n" .. body,
    close = head_fields .. "Connection: close\r\n\r\n" .. body,
    head_keep = head_fields .. "\r\n",
  }
  e.res = res
  return e
end

-- answer is the entry's response, or 304 Not Modified when the client's
-- copy is current.
local function answer(req, e)
  local h = req.headers
  if e.res.status == 200 and (h["if-none-match"] or h["if-modified-since"])
      and not_modified(req, e.tag, e.mtime) then
    return {status = 304, fields = {"ETag", e.tag, "Last-Modified", http.date(e.mtime)}}
  end
  return e.res
end

local function listing(url_path, dir)
  local entries, _, code = fs.list(dir)
  if not entries then return error_response(403, nil, code) end
  local title = "Index of " .. http.html_escape(url_path)
  local out = {"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>", title,
               "</title></head>\n<body><h1>", title, "</h1>\n<ul>\n"}
  if url_path ~= "/" then out[#out + 1] = '<li><a href="../">../</a></li>\n' end
  for _, e in ipairs(entries) do
    local name = e.type == "dir" and e.name .. "/" or e.name
    out[#out + 1] = string.format('<li><a href="%s">%s</a>%s</li>\n',
      http.html_escape(http.percent_encode_path(name)), http.html_escape(name),
      e.type == "file" and " " .. e.size .. " bytes" or "")
  end
  out[#out + 1] = "</ul></body></html>\n"
  return {status = 200, fields = {"Content-Type", "text/html; charset=utf-8"}, body = table.concat(out)}
end

local function serve_static(req, conn)
  local now = conn.started
  local e = cache[req.path]
  if e and now - e.checked < CACHE_VALID then
    local h = req.headers
    if h["if-none-match"] or h["if-modified-since"] then return answer(req, e) end
    return e.res
  end

  local real, st, why = resolve(req.path, ROOT)
  if not real then return error_response(st, nil, why) end
  if st.type == "dir" then
    -- /docs names the directory, but links inside it ("a.html") resolve
    -- against /docs/ only: send the client there first.
    if sub(req.path, -1) ~= "/" then
      local loc = req.path .. "/" .. (req.query ~= "" and "?" .. req.query or "")
      return error_response(301, {"Location", loc})
    end
    local index, ist = resolve(req.path .. "index.html", ROOT)
    if index and ist.type == "file" then
      real, st = index, ist
    else
      return listing(req.path, real)
    end
  elseif st.type ~= "file" then
    return error_response(403, nil, "not a regular file")
  elseif sub(req.path, -1) == "/" then
    return error_response(404, nil, "not a directory")
  end

  if not (e and e.real == real and e.mtime == st.mtime and e.size == st.size) then
    if e then cache_bytes = cache_bytes - e.size end
    e = file_entry(real, st)
    cache[req.path] = nil
    if e.res.cached and cache_bytes + e.size <= CACHE_TOTAL_MAX then
      cache[req.path] = e
      cache_bytes = cache_bytes + e.size
    end
  end
  e.checked = now
  return answer(req, e)
end

-- PUT stores the request body as the file (only with --allow-put): 201
-- Created for a new file, 204 No Content for a replaced one.
local function put_file(req)
  if req.path:sub(-1) == "/" then
    return error_response(405, {"Allow", allow_static()}, "cannot PUT a directory")
  end
  local dir_path, name = req.path:match("^(.*/)([^/]+)$")
  local dir, st, why = resolve(dir_path, ROOT)
  if not dir then return error_response(st, nil, why) end
  if st.type ~= "dir" then return error_response(404, nil, dir_path .. " is not a directory") end
  local decoded = http.percent_decode(name)
  if not decoded or decoded == "." or decoded == ".." or decoded:find("[/\\%z]")
      or name:find("%%2[fF]") then
    return error_response(403, nil, "bad file name")
  end
  local target = dir .. "/" .. decoded
  -- The name may be a symlink pointing outside, even a dangling one that
  -- writing would create: look at the link itself.
  local lst = fs.lstat(target)
  if lst and lst.type == "symlink" then return error_response(403, nil, "refusing to write through a symlink") end
  if lst and lst.type ~= "file" then return error_response(409, nil, "not a regular file") end
  local ok, _, code = fs.write(target, req.body)
  if not ok then return error_response(403, nil, code) end
  forget_cache()
  if lst then return {status = 204} end
  return {status = 201, fields = {"Location", req.path, "Content-Type", "text/plain; charset=utf-8"},
          body = "created " .. req.path .. "\n"}
end

---------------------------------------------------------------------------
-- CGI (RFC 3875): /cgi-bin/NAME/extra/path?query runs the program NAME
-- from --cgi-bin, one process per request. The request travels in
-- environment variables ("meta-variables") and the body on standard input;
-- the program writes a CGI response (lib/http.lua: parse_cgi_response) on
-- standard output. A program NAME.lua is run by sockplay itself.

local ALLOW_CGI = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"

local function cgi_env(req, conn, script_name, path_info)
  local server_name = (req.headers.host or conn.local_host):gsub(":%d+$", ""):gsub("^%[(.*)%]$", "%1")
  local env = {
    GATEWAY_INTERFACE = "CGI/1.1",
    SERVER_SOFTWARE = http.SERVER,
    SERVER_NAME = server_name,
    SERVER_PORT = tostring(conn.local_port),
    SERVER_PROTOCOL = "HTTP/" .. req.version,
    REQUEST_METHOD = req.method,
    SCRIPT_NAME = script_name,
    PATH_INFO = path_info,
    QUERY_STRING = req.query,
    REMOTE_ADDR = conn.peer_host,
    REMOTE_PORT = tostring(conn.peer_port),
    REQUEST_URI = req.target,
    PATH = "/usr/local/bin:/usr/bin:/bin",
  }
  if path_info ~= "" then env.PATH_TRANSLATED = ROOT .. path_info end
  if #req.body > 0 or req.headers["content-length"] then env.CONTENT_LENGTH = tostring(#req.body) end
  if req.headers["content-type"] then env.CONTENT_TYPE = req.headers["content-type"] end
  for name, value in pairs(req.headers) do
    -- Host: x -> HTTP_HOST=x. Skipped: headers already given above, names
    -- that would map to the same variable (X_A and X-A), and Proxy, which
    -- programs would take for their HTTP_PROXY setting ("httpoxy").
    if name:find("^[%w%-]+$") and name ~= "content-length" and name ~= "content-type"
        and name ~= "proxy" then
      env["HTTP_" .. name:upper():gsub("%-", "_")] = value
    end
  end
  return env
end

local function run_cgi(req, conn, depth)
  local name, path_info = req.path:match("^/cgi%-bin/([^/]+)(.*)$")
  if not name then return error_response(404, nil, "no program named") end
  if req.method == "OPTIONS" then return {status = 204, fields = {"Allow", ALLOW_CGI}} end
  local prog, st, why = resolve("/" .. name, CGI_DIR)
  if not prog then return error_response(st, nil, why) end
  local is_lua = prog:find("%.lua$") ~= nil
  if not st or st.type ~= "file" or not (st.executable or is_lua) then
    return error_response(403, nil, "not an executable program")
  end
  local decoded_info = http.percent_decode(path_info)
  if not decoded_info then return error_response(400, nil, "bad percent escape") end
  local argv = is_lua and {proc.executable(), prog} or {prog}
  local r, msg = proc.run{argv = argv, env = cgi_env(req, conn, "/cgi-bin/" .. name, decoded_info),
                          stdin = req.body, timeout = opts.cgi_timeout, dir = CGI_DIR}
  local function cgi_log(what)
    io.stderr:write(string.format("cgi %s: %s\n", name, what))
  end
  if not r then
    cgi_log(msg)
    return error_response(500, nil, "the CGI program could not run")
  end
  if r.stderr ~= "" then cgi_log(r.stderr:gsub("\n$", "")) end
  if r.timed_out then
    cgi_log(string.format("killed after %gs", opts.cgi_timeout))
    return error_response(504, nil, "the CGI program took too long")
  end
  if r.status ~= 0 then
    cgi_log("exited with " .. (r.signal or ("status " .. r.status)))
    return error_response(500, nil, "the CGI program failed")
  end
  local out, err = http.parse_cgi_response(r.stdout)
  if not out then
    cgi_log(err)
    return error_response(500, nil, "the CGI program sent a malformed response")
  end
  -- A local path in Location with no Status: the server serves that path
  -- instead, as if it had been asked for it (RFC 3875 6.2.2).
  local loc = out.headers.location
  if loc and loc:sub(1, 1) == "/" and not out.headers.status and depth < 5 then
    local again = {method = "GET", target = loc, version = req.version, headers = req.headers,
                   body = "", line = req.line}
    again.path, again.query = loc:match("^([^?#]*)%??([^#]*)")
    return nil, again
  end
  if loc and not out.headers.status then out.status = 302 end
  -- Hop-by-hop headers belong to one connection, ours: not the program's.
  local fields = {}
  for i = 1, #out.fields, 2 do
    local n = out.fields[i]:lower()
    if n ~= "connection" and n ~= "transfer-encoding" and n ~= "keep-alive" and n ~= "content-length" then
      fields[#fields + 1] = out.fields[i]
      fields[#fields + 1] = out.fields[i + 1]
    end
  end
  local res = {status = out.status, reason = out.reason, fields = fields, body = out.body}
  -- Without a Content-Length from the program, an HTTP/1.1 client gets
  -- the body chunked, as from a server that streams the program's output.
  if not out.headers["content-length"] and req.version == "1.1" and not bodiless(out.status) then
    res.chunked = true
  end
  return res
end

---------------------------------------------------------------------------
-- Dispatch: method and path to handler.

local function handle(req, conn)
  for depth = 0, 5 do
    if not http.METHODS[req.method] then
      return error_response(501, {"Allow", allow_static()}, "unknown method " .. req.method)
    end
    if req.path == "*" then -- OPTIONS * asks about the server as a whole
      return {status = 204, fields = {"Allow", CGI_DIR and ALLOW_CGI or allow_static()}}
    end
    if CGI_DIR and (req.path:sub(1, 9) == "/cgi-bin/" or req.path == "/cgi-bin") then
      local res, again = run_cgi(req, conn, depth)
      if res then return res end
      req = again
    else
      local m = req.method
      if m == "GET" or m == "HEAD" then return serve_static(req, conn) end
      if m == "OPTIONS" then return {status = 204, fields = {"Allow", allow_static()}} end
      if m == "PUT" and opts.allow_put then return put_file(req) end
      return error_response(405, {"Allow", allow_static()}, m .. " is not allowed here")
    end
  end
  return error_response(500, nil, "too many local redirects")
end

---------------------------------------------------------------------------
-- Connections.

local active = 0 -- connections being served

-- The log, one line per request, is written ten times a second, or every
-- 64 lines: one write(2) for many requests instead of one each. (What the
-- last tenth of a second logged is lost when Ctrl-C ends the server.)
local log_lines, log_count = {}, 0

local function flush_log()
  if log_count > 0 then
    io.write(table.concat(log_lines, "\n", 1, log_count), "\n")
    log_count = 0
  end
end

-- log adds a request's line to the log. The request line is quoted with
-- %q, which also escapes what a client may have put in it to confuse a
-- terminal or a log reader: control characters, quotes, invalid UTF-8.
-- The same few request lines come again and again: their quoted forms
-- are remembered (up to a limit).
local quoted, quoted_count = {}, 0

local function log(conn, line, status, bytes, started)
  local tenths = math.floor((monotonic() - started) * 10000 + 0.5) -- of a millisecond
  local q = quoted[line]
  if not q then
    q = format("%q", #line > 200 and sub(line, 1, 200) .. "..." or line)
    if quoted_count < 1000 and #line <= 200 then quoted[line], quoted_count = q, quoted_count + 1 end
  end
  log_count = log_count + 1
  log_lines[log_count] = conn.peer .. " " .. q .. " " .. status .. " " .. (bytes or "-") ..
    " " .. math.floor(tenths / 10) .. "." .. tenths % 10 .. "ms"
  if log_count >= 64 then flush_log() end
end

local function serve_connection(c, peer_host, peer_port)
  local local_host, local_port = c:getsockname()
  local conn = {peer_host = peer_host, peer_port = peer_port, peer = peer_host .. ":" .. peer_port, started = 0,
                local_host = local_host or opts.host, local_port = local_port or opts.port}
  c:settimeout(opts.timeout)
  local limits = {head = opts.max_head, body = opts.max_body,
                  on_continue = function() c:write("HTTP/1.1 100 Continue\r\n\r\n") end}
  local served, last_req = 0, nil
  while true do
    local started = monotonic()
    local req, msg, status, midway, partial_req = http.read_request(c, limits, last_req)
    last_req = req
    if not req then
      -- Nothing to answer when the client closed or went quiet between
      -- requests; otherwise say what was wrong, and close: after a broken
      -- request we no longer know where the next one would start.
      if status and (midway or (status == 408 and served == 0)) then
        local bytes = send(c, partial_req, error_response(status, nil, msg), false)
        log(conn, partial_req and partial_req.line or "-", status, bytes, started)
        -- The client may still be sending what we refused (a body too
        -- large): closing now, with its bytes unread, would make the
        -- kernel reset the connection, and the client could lose our
        -- answer. Say we are done (FIN), then read and drop what comes,
        -- for a moment.
        c:shutdown("w")
        c:settimeout(1)
        for _ = 1, 64 do
          if not c:read(65536) then break end
        end
      end
      break
    end
    conn.started = started
    -- Does the connection stay open after this exchange? HTTP/1.1 keeps
    -- it unless a side says "Connection: close"; HTTP/1.0 closes unless
    -- the client says "Connection: keep-alive".
    local keep = http.keeps_alive(req)
    local ok, res = pcall(handle, req, conn)
    if not ok then
      io.stderr:write("http_server.lua: error handling " .. format("%q", req.line) .. ": " .. tostring(res) .. "\n")
      res, keep = error_response(500), false
    end
    local bytes = send(c, req, res, keep)
    log(conn, req.line, res.status, bytes, started)
    served = served + 1
    if not bytes or not keep then break end
  end
end

-- connection_task serves one connection, and whatever happens frees its
-- place and its socket: a bug in the code above must not use up
-- --max-conns for ever.
local function connection_task(c, peer_host, peer_port)
  local ok, err = pcall(serve_connection, c, peer_host, peer_port)
  if not ok then
    io.stderr:write(string.format("http_server.lua: connection from %s:%d: %s\n", peer_host, peer_port, tostring(err)))
  end
  c:close()
  active = active - 1
end

-- Beyond --max-conns a connection gets 503 and Retry-After, the number of
-- seconds to wait before trying again. Its request is read first (briefly)
-- so that closing does not reset the connection under the reply.
local function refuse_busy(c, peer_host, peer_port)
  local started = monotonic()
  c:settimeout(1)
  local lines = http.read_head(c, opts.max_head)
  local bytes = send(c, nil, error_response(503, {"Retry-After", "1"}, "too many connections"), false)
  log({peer = peer_host .. ":" .. peer_port}, lines and lines[1] or "-", 503, bytes, started)
  c:close()
end

-- Listen, and print "listening on HOST:PORT" (or exit saying why not).
local listener = server.listen("http_server.lua", opts.host, opts.port)
-- The ticker: every 0.1 s, write the log and refresh the Date.
spawn(function()
  while true do
    sleep(0.1)
    flush_log()
    date = http.date_now()
  end
end)

local function accept_loop()
  while true do
    local c, peer_host, peer_port = listener:accept()
    if not c then
      -- accept fails for a connection its client has already reset: go on.
      -- Out of descriptors, wait a moment for some to close.
      local err_code = peer_port
      if err_code == "EMFILE" or err_code == "ENFILE" then sleep(0.1) end
    elseif active >= opts.max_conns then
      spawn(refuse_busy, c, peer_host, peer_port)
    else
      active = active + 1
      spawn(connection_task, c, peer_host, peer_port)
    end
  end
end

accept_loop()
