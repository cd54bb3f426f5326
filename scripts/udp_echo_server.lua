-- udp_echo_server.lua: datagrams, no connections.
--
-- There is no listen and no accept: one socket receives datagrams from
-- anyone, and recvfrom says who sent each one. The reply goes back with
-- sendto to that address. Each datagram keeps its boundary: one recvfrom
-- returns exactly one datagram, even an empty one.
--
--   sockplay scripts/udp_echo_server.lua --port 7000
--   nc -u 127.0.0.1 7000

local args = require("args")
local spec = {
  usage = "udp_echo_server.lua [--host H] [--port P] [--quiet]",
  about = "UDP echo server: every datagram goes back to its sender.",
  options = {
    {"host", "127.0.0.1", "address to bind"},
    {"port", 0, "port to bind (0: any free port)"},
    {"quiet", false, "do not log datagrams"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)

local s, err, code = sock.bind_udp(opt.host, opt.port)
if not s then
  io.stderr:write(string.format("udp_echo_server: cannot bind %s:%d: %s (%s)\n", opt.host, opt.port, err, code))
  os.exit(1)
end
local host, port = s:getsockname()
if host:find(":") then host = "[" .. host .. "]" end
print(string.format("listening on %s:%d", host, port))

-- The loop uses the BSD calls on the fd, like tcp_echo_server.lua: a
-- method call on a socket object (s:recvfrom) costs a little more, which
-- a server answering every datagram notices.
local fd = s.fd
while true do
  local data, phost, pport, full = sock.recvfrom(fd, 65535)
  if data then
    if not opt.quiet then
      local note = full and string.format(" (truncated from %d)", full) or ""
      print(string.format("%s:%d sent %d bytes%s", phost, pport, #data, note))
    end
    local ok, serr, scode = sock.sendto(fd, data, phost, pport)
    if not ok and not opt.quiet then
      print(string.format("sendto %s:%d: %s (%s)", phost, pport, serr, scode))
    end
  elseif not opt.quiet then
    print(string.format("recvfrom: %s (%s)", phost, pport))
  end
end
