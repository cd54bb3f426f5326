-- tcp_echo_client.lua: connect, send lines, read each echo back.
--
-- TCP is a byte stream: the bytes come back in order, but nothing marks
-- where one write ended. The client therefore reads line by line: the
-- newline is the message boundary the application adds.
--
--   sockplay scripts/tcp_echo_client.lua --port 7000 hello world
--   printf 'a\nb\n' | sockplay scripts/tcp_echo_client.lua --port 7000

local args = require("args")
local spec = {
  usage = "tcp_echo_client.lua [--host H] --port P [--timeout S] [LINE...]",
  about = "Send each LINE (or each line of standard input) to a TCP echo server and print what comes back.",
  options = {
    {"host", "127.0.0.1", "server address or name"},
    {"port", 7, "server port"},
    {"timeout", 5, "seconds to wait for each answer"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)

local c, err, code = sock.dial_tcp(opt.host, opt.port, opt.timeout)
if not c then
  io.stderr:write(string.format("tcp_echo_client: cannot connect to %s:%d: %s (%s)\n", opt.host, opt.port, err, code))
  os.exit(1)
end

local function echo(line)
  assert(c:write(line .. "\n"))
  local back, rerr, rcode = c:read_line()
  if not back then
    io.stderr:write(string.format("tcp_echo_client: %s (%s)\n", rerr, rcode))
    os.exit(1)
  end
  print(back)
end

if #opt._ > 0 then
  for _, line in ipairs(opt._) do echo(line) end
else
  for line in function() return io.read("l") end do echo(line) end
end
c:shutdown("w")            -- FIN: we are done sending
c:read_all()               -- wait for the server's FIN
c:close()
