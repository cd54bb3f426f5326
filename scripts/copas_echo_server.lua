-- copas_echo_server.lua: an echo server on Copas, the coroutine
-- dispatcher built on LuaSocket. Each connection runs in a coroutine of
-- its own; a receive that would wait yields to Copas, which waits in
-- socket.select for whichever socket is ready. It runs unchanged under
-- sockplay (Copas from Debian's lua-copas or LuaRocks) and under lua5.1:
--
--   sockplay scripts/copas_echo_server.lua --port 7000
--   nc 127.0.0.1 7000          (several at once: each is served)

local copas = require("copas")
local socket = require("socket")
local args = require("args")
io.stdout:setvbuf("line")

local spec = {
  usage = "copas_echo_server.lua [--host H] [--port P]",
  about = "Echo every line back, many clients at once, with Copas.",
  options = {
    {"host", "127.0.0.1", "address to listen on"},
    {"port", 0, "port to listen on (0: any free port)"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)

local server, err = socket.bind(opt.host, opt.port)
if not server then
  io.stderr:write(string.format("copas_echo_server: cannot bind %s:%d: %s\n", opt.host, opt.port, err))
  os.exit(1)
end
local host, port = server:getsockname()
print(string.format("listening on %s:%s", host, port))

local open = 0
copas.addserver(server, function(skt)
  local ip, p = skt:getpeername()
  local peer = ip .. ":" .. p
  open = open + 1
  print(string.format("%s connected (%d open)", peer, open))
  local c = copas.wrap(skt)
  local lines = 0
  while true do
    local line = c:receive("*l")
    if not line then break end
    c:send(line .. "\n")
    lines = lines + 1
  end
  open = open - 1
  print(string.format("%s closed after %d lines (%d open)", peer, lines, open))
end)
copas.loop()
