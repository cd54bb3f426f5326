-- udp_echo_client.lua: send datagrams, wait for each echo with a timeout.
--
-- UDP promises nothing: a datagram can be lost, so every wait for an answer
-- needs a timeout. connect() on a UDP socket sends nothing; it only fixes
-- the peer, so write() needs no address and the kernel can report an ICMP
-- "port unreachable" as ECONNREFUSED on the next call.
--
--   sockplay scripts/udp_echo_client.lua --port 7000 hello world

local args = require("args")
local spec = {
  usage = "udp_echo_client.lua [--host H] --port P [--timeout S] [--retries N] [MESSAGE...]",
  about = "Send each MESSAGE (or each line of standard input) as one datagram and print the echo.",
  options = {
    {"host", "127.0.0.1", "server address or name"},
    {"port", 7, "server port"},
    {"timeout", 1, "seconds to wait for each echo"},
    {"retries", 2, "times to resend a datagram whose echo did not come"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)

local kind = opt.host:find(":") and "udp6" or "udp"
local s = assert(sock[kind]())
local ok, err, code = s:connect(opt.host, opt.port)
if not ok then
  io.stderr:write(string.format("udp_echo_client: %s:%d: %s (%s)\n", opt.host, opt.port, err, code))
  os.exit(1)
end
s:settimeout(opt.timeout)

local failed = false
local function echo(msg)
  for attempt = 0, opt.retries do
    local sent, serr, scode = s:write(msg)
    if not sent then
      io.stderr:write(string.format("udp_echo_client: %s (%s)\n", serr, scode))
      failed = true
      return
    end
    local back, rerr, rcode = s:read(65535)
    if back then
      print(back)
      return
    end
    if rcode ~= "ETIMEDOUT" then
      io.stderr:write(string.format("udp_echo_client: %s (%s)\n", rerr, rcode))
      failed = true
      return
    end
  end
  io.stderr:write(string.format("udp_echo_client: no echo for %q after %d tries\n", msg, opt.retries + 1))
  failed = true
end

if #opt._ > 0 then
  for _, m in ipairs(opt._) do echo(m) end
else
  for line in function() return io.read("l") end do echo(line) end
end
s:close()
if failed then os.exit(1) end
