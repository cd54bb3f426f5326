-- tcp_echo_server.lua: the client-server model in its smallest form.
--
-- The server opens a socket, binds it to an address, listens, and then
-- accepts connections one after another. Each accepted connection is a new
-- fd of its own, served by a task of its own, so one slow client never
-- holds up the others. Whatever a client sends comes straight back.
--
--   sockplay scripts/tcp_echo_server.lua --port 7000
--   nc 127.0.0.1 7000          (type lines; they come back)

local args = require("args")
local spec = {
  usage = "tcp_echo_server.lua [--host H] [--port P] [--quiet]",
  about = "TCP echo server: every byte a client sends comes back to it.",
  options = {
    {"host", "127.0.0.1", "address to listen on"},
    {"port", 0, "port to listen on (0: any free port)"},
    {"quiet", false, "do not log connections"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)

-- socket + setsockopt(SO_REUSEADDR) + bind + listen, spelled out.
local kind = opt.host:find(":") and "tcp6" or "tcp"
local fd = assert(sock.open(kind))
assert(sock.setopt(fd, "reuseaddr", true))
local ok, msg, code = sock.bind(fd, opt.host, opt.port)
if not ok then
  io.stderr:write(string.format("tcp_echo_server: cannot bind %s:%d: %s (%s)\n", opt.host, opt.port, msg, code))
  os.exit(1)
end
-- No backlog: the kernel's limit (net.core.somaxconn), so that a burst of
-- clients waits in the accept queue instead of having its SYNs dropped.
assert(sock.listen(fd))
local host, port = sock.getsockname(fd)
if host:find(":") then host = "[" .. host .. "]" end
print(string.format("listening on %s:%d", host, port))

local function log(...)
  if not opt.quiet then print(string.format(...)) end
end

-- serve echoes one connection until the client closes its side.
local function serve(cfd, peer)
  local total = 0
  while true do
    local data, err, code = sock.read(cfd, 65536)   -- whatever has arrived
    if not data then
      if code ~= "EOF" then log("%s: %s (%s)", peer, err, code) end
      break
    end
    local n, werr, wcode = sock.write(cfd, data)
    if not n then
      log("%s: %s (%s)", peer, werr, wcode)
      break
    end
    total = total + n
  end
  sock.close(cfd)
  log("%s closed after %d bytes", peer, total)
end

while true do
  local cfd, phost, pport = sock.accept(fd)
  if cfd then
    local peer = string.format("%s:%d", phost, pport)
    log("%s connected (fd %d)", peer, cfd)
    sock.setopt(cfd, "nodelay", true)
    spawn(serve, cfd, peer)
  else
    log("accept: %s (%s)", phost, pport)
  end
end
