-- luasocket_echo.lua: an echo server and client written for LuaSocket,
-- the way LuaSocket programs are written: one thread, socket.select over
-- the listening socket and every client, non-blocking receives that hand
-- back what has arrived as their partial result. It runs unchanged under
-- sockplay and under lua5.1 with LuaSocket:
--
--   sockplay scripts/luasocket_echo.lua --port 7000           (a server)
--   sockplay scripts/luasocket_echo.lua --client --port 7000 hello world
--   LUA_PATH='scripts/lib/?.lua;;' lua5.1 scripts/luasocket_echo.lua --port 7000

local socket = require("socket")
local args = require("args")
io.stdout:setvbuf("line") -- lua5.1 buffers a pipe; the listening line must show

local spec = {
  usage = "luasocket_echo.lua [--host H] [--port P] [--udp] [--client [--timeout S] [LINE...]]",
  about = "Echo over LuaSocket: a server (TCP, or UDP with --udp), or with --client a client that sends each LINE (or each line of standard input) and prints the echo.",
  options = {
    {"host", "127.0.0.1", "address to listen on, or the server's"},
    {"port", 0, "port to listen on (0: any free port), or the server's"},
    {"udp", false, "datagrams instead of a stream"},
    {"client", false, "be the client"},
    {"timeout", 5, "client: seconds to wait for each answer"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)

local function fail(fmt, ...)
  io.stderr:write("luasocket_echo: " .. string.format(fmt, ...) .. "\n")
  os.exit(1)
end

local function lines()
  if #opt._ > 0 then
    local i = 0
    return function() i = i + 1; return opt._[i] end
  end
  return function() return io.read("*l") end
end

local function client()
  local c, err
  if opt.udp then
    c = socket.udp()
    local ok
    ok, err = c:setpeername(opt.host, opt.port)
    if not ok then c = nil end
  else
    c, err = socket.connect(opt.host, opt.port)
  end
  if not c then fail("cannot connect to %s:%d: %s", opt.host, opt.port, err) end
  c:settimeout(opt.timeout)
  for line in lines() do
    local ok, serr = c:send(opt.udp and line or line .. "\n")
    if not ok then fail("send: %s", serr) end
    local back, rerr = c:receive() -- a line over TCP, one datagram over UDP
    if not back then fail("receive: %s", rerr) end
    print(back)
  end
  c:close()
end

local function udp_server()
  local s = socket.udp()
  local ok, err = s:setsockname(opt.host, opt.port)
  if not ok then fail("cannot bind %s:%d: %s", opt.host, opt.port, err) end
  local host, port = s:getsockname()
  print(string.format("listening on %s:%s", host, port))
  while true do
    local data, ip, port_ = s:receivefrom()
    if data then
      print(string.format("%s:%d sent %d bytes", ip, port_, #data))
      s:sendto(data, ip, port_)
    end
  end
end

local function tcp_server()
  local server, err = socket.bind(opt.host, opt.port)
  if not server then fail("cannot bind %s:%d: %s", opt.host, opt.port, err) end
  server:settimeout(0)
  local host, port = server:getsockname()
  print(string.format("listening on %s:%s", host, port))
  local watch = {server}   -- what select waits on
  local names, counts = {}, {}
  local function drop(c)
    for i, x in ipairs(watch) do
      if x == c then table.remove(watch, i) break end
    end
    print(string.format("%s closed after %d bytes (%d open)", names[c], counts[c], #watch - 1))
    names[c], counts[c] = nil, nil
    c:close()
  end
  while true do
    local readable = socket.select(watch, nil)
    for _, s in ipairs(readable) do
      if s == server then
        local c = server:accept()
        if c then
          c:settimeout(0)
          local ip, p = c:getpeername()
          names[c], counts[c] = ip .. ":" .. p, 0
          table.insert(watch, c)
          print(string.format("%s connected (%d open)", names[c], #watch - 1))
        end
      else
        -- Whatever has arrived: the partial result of a receive that
        -- would otherwise wait for 8192 bytes.
        local data, rerr, partial = s:receive(8192)
        data = data or partial
        if data and #data > 0 then
          counts[s] = counts[s] + #data
          s:send(data)
        end
        if rerr == "closed" then drop(s) end
      end
    end
  end
end

if opt.client then
  client()
elseif opt.udp then
  udp_server()
else
  tcp_server()
end
