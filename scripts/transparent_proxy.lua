-- transparent_proxy.lua: an HTTP proxy the clients never configured.
--
-- A forward proxy (forward_proxy.lua) is one the client knows: curl -x,
-- a browser's settings, and the request carries the whole URL. This one
-- sits on a router. The router's NAT sends the clients' TCP port 80 to the
-- proxy instead of letting it through, and the kernel remembers where
-- each connection was going: the proxy asks with
-- sock.getopt(fd, "original_dst"), logs the request with that original
-- destination and the Host it names, refuses the --block'ed hosts, and
-- fetches the rest from the original destination itself. Schools,
-- hotels and companies filter the web this way.
--
-- On a Linux router (root), the redirect is one nftables rule:
--   nft add table ip nat
--   nft add chain ip nat pre '{ type nat hook prerouting priority dstnat; }'
--   nft add rule ip nat pre iifname eth0 tcp dport 80 redirect to :3128
--   sockplay scripts/transparent_proxy.lua --port 3128 --block ads.example
--
-- lab_transparent_proxy.lua builds a client, a router and a server out of
-- network namespaces and shows the whole thing with plain curl.
--
-- Each line of the log: CLIENT -> ORIGINAL-DESTINATION [HOST] "REQUEST"
-- STATUS BYTES TIME, and which server connection served it.

local args = require("args")
local tproxy = require("tproxy")

local spec = {
  usage = "transparent_proxy.lua [--host H] [--port P] [--block HOST]... [options]",
  about = "Transparent HTTP proxy: serves connections NAT redirected to it, logs their original destination.",
  options = {
    {"host", "0.0.0.0", "address to listen on"},
    {"port", 3128, "port to listen on (0: any free port)"},
    {"block", {}, "answer 403 for requests to this host and its subdomains (repeatable)"},
    {"timeout", 30, "seconds a client connection may stay idle"},
    {"connect-timeout", 10, "seconds to connect to the original destination"},
    {"upstream-timeout", 30, "seconds the server has to answer"},
    {"quiet", false, "no log"},
  },
}
local opt = args.parse(arg, spec)
args.port(spec, opt.port)
if #opt._ > 0 then
  io.stderr:write("transparent_proxy.lua: unexpected argument " .. opt._[1] .. " (try --help)\n")
  os.exit(2)
end

local listener, host, port = tproxy.start{
  host = opt.host, port = opt.port, block = opt.block, timeout = opt.timeout,
  connect_timeout = opt["connect-timeout"], upstream_timeout = opt["upstream-timeout"],
  log = function(fmt, ...) if not opt.quiet then print(string.format(fmt, ...)) end end,
}
if not listener then
  io.stderr:write(string.format("transparent_proxy.lua: cannot listen on %s:%d: %s (%s)\n", opt.host, opt.port, host, port))
  os.exit(1)
end
print(string.format("listening on %s:%d", host, port))
