-- lab_load_balancer.lua: a load balancer in front of three web servers,
-- and one of them drops off the network while clients keep asking.
--
-- Five hosts, each a network namespace of its own (needs root):
--
--                           +--- web1
--   client --- balancer ----+--- web2
--                           +--- web3
--
-- The balancer runs reverse_proxy.lua, the same script as on loopback,
-- with the three web servers as its backends (round robin). The client
-- asks for a page --requests times with curl; each answer says which
-- server made it. After --down-after requests, the balancer's link to
-- web2 is pulled out: the next request the balancer sends there gets no
-- answer to its SYN, the connect times out (--connect-timeout), web2 is
-- marked down and the request goes to the next server; the client only
-- sees that one answer come late. Later requests skip web2. After
-- --up-after requests the link is back, and once --retry-after has
-- passed, web2 gets its turn again.
--
--   sockplay scripts/lab_load_balancer.lua [--requests 12] [--down-after 4] [--up-after 9]

local args = require("args")

local spec = {
  usage = "lab_load_balancer.lua [--requests N] [--down-after N] [--up-after N]",
  about = "A reverse proxy in front of three server hosts; one host's link goes down mid-run.",
  options = {
    {"requests", 12, "requests the client makes"},
    {"down-after", 4, "pull web2's link out after this many requests"},
    {"up-after", 9, "plug it back after this many (0: never)"},
    {"connect-timeout", 0.5, "seconds the balancer waits for a server's handshake"},
    {"retry-after", 1, "seconds a server that failed stays marked down"},
  },
}
local opt = args.parse(arg, spec)
if opt.requests < 1 or opt["down-after"] < 0 or opt["up-after"] < 0 then
  args.fail(spec, "--requests must be positive, --down-after and --up-after not negative")
end


local net, msg, code = lab.new()
if not net then args.die(spec, "lab", msg, code) end
local client, balancer = net:host("client"), net:host("balancer")
net:link(client, balancer)
local webs, links = {}, {}
for i = 1, 3 do
  webs[i] = net:host("web" .. i)
  links[i] = net:link(balancer, webs[i])
end

-- Each web server answers every request with its own name.
local listeners = {}
for i, web in ipairs(webs) do
  listeners[i] = web:call(sock.listen_tcp, "0.0.0.0", 80)
  web:spawn{function()
    while true do
      local c = listeners[i]:accept()
      if not c then return end
      c:settimeout(5)
      if c:read_until("\r\n\r\n", 16384) then
        local body = "served by " .. web.name .. "\n"
        c:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " .. #body ..
          "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" .. body)
      end
      c:close()
    end
  end, name = "web server " .. web.name}
end

-- The balancer: reverse_proxy.lua itself, run by a task of the balancer
-- host, so that every socket it opens is the balancer's.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local proxy_args = {[0] = here .. "/reverse_proxy.lua", "--host", "0.0.0.0", "--port", "80",
  "--backend", "web1:80", "--backend", "web2:80", "--backend", "web3:80",
  "--connect-timeout", tostring(opt["connect-timeout"]), "--retry-after", tostring(opt["retry-after"]),
  "--cache-size", "0"}
wait(balancer:spawn{function()
  local saved = arg
  arg = proxy_args -- the script reads its arguments from arg, as any script does
  local ok, err = pcall(dofile, proxy_args[0])
  arg = saved
  if not ok then args.die(spec, "reverse_proxy.lua", err, "ERROR") end
end, name = "reverse_proxy.lua"})

print(net)
print()
local count = {}
for n = 1, opt.requests do
  if n == opt["down-after"] + 1 then
    assert(links[2]:down())
    print(string.format("-- link %s pulled out", links[2].name))
  end
  if opt["up-after"] > 0 and n == opt["up-after"] + 1 then
    assert(links[2]:up())
    print(string.format("-- link %s plugged back; web2 gets its turn once %gs have passed since it was marked down", links[2].name, opt["retry-after"]))
    sleep(opt["retry-after"])
  end
  local r = client:run{argv = {"curl", "-sS", "--max-time", "10", "-w", " %{http_code} %{time_total}", "http://balancer/"}, timeout = 15}
  local who, status, took = (r and r.stdout or ""):match("^served by (%S+)\n (%d+) ([%d.]+)$")
  if who then
    count[who] = (count[who] or 0) + 1
    print(string.format("request %2d: %s, served by %s in %.0f ms", n, status, who, tonumber(took) * 1000))
  else
    print(string.format("request %2d: failed: %s%s", n, r and r.stdout or "", r and r.stderr or ""))
  end
end
print()
print(string.format("served: web1 %d, web2 %d, web3 %d", count.web1 or 0, count.web2 or 0, count.web3 or 0))
net:close()
