-- lab_transparent_proxy.lua: a proxy the client was never told about.
--
-- Three hosts, each a network namespace of its own (needs root):
--
--   client 10.0.1.2 --- 10.0.1.1 router 10.0.2.1 --- 10.0.2.2 server
--
-- The server runs a small web server that says who asked. The router
-- forwards between its two links, and one NAT rule sends the client's
-- TCP port 80 to its own port 3128, where transparent_proxy.lua's proxy
-- listens. In the client, plain `curl http://server/` (no -x, no proxy
-- settings) gets the page: the proxy's log shows the request with the
-- address it was really going to, the server says the request came from
-- the router, not the client, and the Via header is the proxy's only
-- trace. --block server has the proxy refuse it instead.
--
--   sockplay scripts/lab_transparent_proxy.lua [--block HOST] [--keep]
--
-- --keep leaves the lab up with the REPL (run it with sockplay -i) to
-- look around: .lab, .fds, client:run{argv = {"curl", "-v", "http://server/"}}.

local args = require("args")
local tproxy = require("tproxy")
local proxy = require("proxy")

local spec = {
  usage = "lab_transparent_proxy.lua [--block HOST]... [--path PATH]",
  about = "A client, a router with a transparent proxy, a server: plain curl goes through the proxy unawares.",
  options = {
    {"block", {}, "have the proxy refuse this host (repeatable)"},
    {"path", "/", "the path curl asks for"},
    {"keep", false, "keep the lab and the servers running after curl (for sockplay -i)"},
  },
}
local opt = args.parse(arg, spec)


local msg, code
net, msg, code = lab.new() -- global: with sockplay -i, net is there at the prompt
if not net then args.die(spec, "lab", msg, code) end
client = net:host("client")
router = net:router("router")
server = net:host("server")
local inside = net:link(client, router)
local outside = net:link(router, server)

-- The web server: one page that tells the client who it talked to.
local web = server:call(sock.listen_tcp, "0.0.0.0", 80)
server:spawn{function()
  while true do
    local c, peer_host, peer_port = web:accept()
    if not c then return end
    c:settimeout(10)
    local req = proxy.read_request(c, {head = 16384, body = 65536})
    if req then
      local body = string.format("hello from the server: you are %s:%d, and you asked for %s\n", peer_host, peer_port, req.target)
      print(string.format("server: %s %s from %s:%d (Via: %s)", req.method, req.target, peer_host, peer_port, req.headers.via or "-"))
      c:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
    end
    c:close()
  end
end, name = "web server"}

-- The proxy on the router, and the rule that sends port 80 to it.
-- (tproxy.start returns listener, host, port, or nil, msg, code.)
local listener, phost, pport = router:call(tproxy.start, {port = 3128, block = opt.block, connect_timeout = 5,
  log = function(fmt, ...) print("proxy:  " .. string.format(fmt, ...)) end})
if not listener then args.die(spec, "proxy", phost, pport) end
local ok
ok, msg, code = router:redirect(inside, 80, pport)
if not ok then args.die(spec, "redirect", msg, code) end

print(string.format("%s %s --- %s %s %s --- %s %s", client.name, client.addr, inside:addr(router),
  router.name, (outside:addr(router)), (outside:addr(server)), server.name))
print(string.format("the router sends TCP port 80 arriving on %s to its own port %d, where the proxy listens",
  select(2, inside:addr(router)), pport))
print()
print("client$ curl -sS -i http://server" .. opt.path)
local r
r, msg, code = client:run{argv = {"curl", "-sS", "-i", "--max-time", "10", "http://server" .. opt.path}, timeout = 15}
if not r then args.die(spec, "curl", msg, code) end
io.write((r.stdout:gsub("\r\n", "\n")))
if r.stderr ~= "" then io.write(r.stderr) end
print()
print(string.format("curl exited with status %s. It connected to the server's address, port 80;", tostring(r.status)))
if r.stdout:match("^HTTP/1%.1 403") then
  print("the router's NAT handed the connection to the proxy, which refused it (--block).")
else
  print("the router's NAT handed the connection to the proxy, which fetched the page itself.")
end
print()
print(net)
print()
print(fds())

if not opt.keep then
  web:close()
  listener:close()
  net:close()
end
