-- The lab from Lua (root only; lab_test.go runs these). Each test builds
-- its own lab; the Go side checks that nothing is left afterwards.

-- chain builds client - router - server and returns them with the links.
local function chain(shape)
  local net = assert(lab.new())
  local client, router, server = net:host("client"), net:router("router"), net:host("server")
  local inside = net:link(client, router)
  local outside = net:link(router, server, shape)
  return net, client, router, server, inside, outside
end

-- echo_server listens on port in host and echoes one line per connection,
-- with the address it saw the client come from.
local function echo_server(host, port)
  local l = host:call(sock.listen_tcp, "0.0.0.0", port)
  host:spawn{function()
    while true do
      local c, peer = l:accept()
      if not c then return end
      spawn(function()                       -- inherits the host
        c:settimeout(10)
        local line = c:read_line()
        if line then c:write(line .. " from " .. peer .. "\n") end
        c:close()
      end)
    end
  end, name = "echo"}
  return l
end

function TestHostsLinksAndNames()
  local net, client, router, server, inside, outside = chain()
  expect.match(tostring(client), "^<host client 10%.0%.1%.2 sockplay%-%d+%-%d+%-client>$")
  expect.match(tostring(router), "^<router router 10%.0%.1%.1 10%.0%.2%.1 ")
  expect.eq(client.addr, "10.0.1.2")
  expect.eq(router.router, true)
  expect.eq(net:hosts()[2], router, "one host, one value")
  expect.eq(inside.a, client)
  expect.eq(outside.name, "router-server")
  local addr, dev = outside:addr(server)
  expect.eq(addr, "10.0.2.2"); expect.eq(dev, "eth0")
  expect.eq(select(2, outside:addr(router)), "eth1")
  expect.eq(#router:addrs(), 2)
  expect.match(tostring(net), "router  router  eth0 10%.0%.1%.1/24, eth1 10%.0%.2%.1/24")
  expect.match(tostring(net), "client  host    eth0 10%.0%.1%.2/24 +default via 10%.0%.1%.1 dev eth0")

  local l = echo_server(server, 7)
  -- A name resolves to its lab address for sockets opened in the lab.
  local c = assert(client:call(sock.dial_tcp, "server", 7, 5))
  c:write("hi\n")
  expect.eq(c:read_line(), "hi from 10.0.1.2", "routed through the router, no NAT")
  expect.eq(sock.info(c).host, "client")
  local rows = {}
  for _, e in ipairs(fds()) do rows[e.fd] = e end
  expect.eq(rows[l.fd].host, "server")
  expect.eq(rows[c.fd].host, "client")
  expect.match(tostring(fds()), "HOST +LOCAL")
  -- The trace names each socket's host.
  local lines = {}
  trace(function(e) lines[#lines + 1] = e.line .. " " .. tostring(e.host) end)
  local c2 = assert(client:call(sock.dial_tcp, "server", 7, 5))
  c2:write("x\n"); c2:read_line()
  trace(false)
  sleep(0.05)
  local joined = table.concat(lines, "\n")
  expect.match(joined, "socket%(tcp@client%) = %d+ client")
  expect.match(joined, "connect%(%d+<TCP@client>, 10%.0%.2%.2:7%)")
  c:close(); c2:close(); l:close()
  net:close()
  expect.fails(function() net:host("x") end, "lab %d+ is closed")
end

function TestBadArguments()
  local net = assert(lab.new())
  local a, b = net:host("a"), net:host("b")
  expect.fails(function() net:host("A") end, "bad argument #2 to 'host' %(host name \"A\" must be")
  expect.fails(function() net:host("a") end, "has a host a already")
  expect.fails(function() net:link(a, a) end, "two different hosts")
  expect.fails(function() net:link(a, "b") end, "bad argument #3 to 'link' %(host expected, got string%)")
  expect.fails(function() net:link(a, b, {loss = 1.5}) end, "bad argument #4 to 'link' %(loss must be between 0 and 1, not 1.5%)")
  expect.fails(function() net:link(a, b, {rate = -1}) end, "rate must not be negative")
  expect.fails(function() net:link(a, b, {rate = "10furlongs"}) end, "unknown unit")
  expect.fails(function() net:link(a, b, {delay = -0.1}) end, "delay must be between 0")
  expect.fails(function() net:link(a, b, {reorder = 0.1}) end, "reorder needs a delay")
  expect.fails(function() net:link(a, b, {lossy = 1}) end, "unknown field \"lossy\"")
  expect.fails(function() net:link(a, b, {addrs = {"10.9.0.1/24", "10.9.1.2/24"}}) end, "not in one subnet")
  local k = net:link(a, b, {addrs = {"192.168.5.1/24", "192.168.5.2/24"}, rate = "10mbit"})
  expect.eq(a.addr, "192.168.5.1")
  expect.match(tostring(k), "rate 10Mbit | rate 10Mbit>$")
  local other = assert(lab.new())
  local stranger = other:host("stranger")
  expect.fails(function() k:shape(stranger, {}) end, "stranger is not an end of link a%-b")
  expect.fails(function() net:link(a, stranger) end, "belongs to another lab")
  expect.fails(function() k:shape({loss = "lots"}) end, "field \"loss\": number expected")
  expect.fails(function() a:redirect(k, 0, 80) end, "ports must be 1%-65535")
  expect.fails(function() a:spawn(42) end, "function expected")
  other:close()
  expect.fails(function() stranger:run{argv = {"true"}} end, "host stranger's lab is closed")
  net:close()
end

-- Delay raises TCP's RTT by about twice the delay; loss makes the kernel
-- retransmit; the link counts what it dropped.
function TestShapingActsOnKernelTCP()
  local net, client, router, server, inside, outside = chain({delay = 0.02})
  local l = server:call(sock.listen_tcp, "0.0.0.0", 9)
  local got = server:spawn(function()
    local c = l:accept()
    c:settimeout(30)
    local data = c:read_all()
    c:close()
    return #data
  end)
  local c = assert(client:call(sock.dial_tcp, "server", 9, 5))
  c:settimeout(30)
  c:write(string.rep("x", 64 * 1024))
  local info = sock.info(c)
  expect.ok(info.rtt >= 0.04 and info.rtt < 0.2, "rtt " .. info.rtt .. " with 20 ms each way")
  -- Loss now, while the connection runs, one way only.
  assert(outside:shape(router, {delay = 0.02, loss = 0.05}))
  c:write(string.rep("y", 512 * 1024))
  c:shutdown("w")
  expect.eq(wait(got), 576 * 1024, "every byte arrived")
  expect.ok(sock.info(c).retrans > 0, "retransmissions: " .. sock.info(c).retrans)
  local st = outside:stats(router)
  expect.ok(st.lost > 0 and st.frames > 400, "the link dropped " .. st.lost .. " of " .. st.frames)
  expect.eq(outside:stats(server).lost, 0, "the other way was not lossy")
  c:close(); l:close()
  net:close()
end

-- Masquerade: the server sees the router. Redirect: the router's own
-- listener takes the connection and reads where it was going.
function TestNATAndOriginalDst()
  local net, client, router, server, inside, outside = chain()
  local l = echo_server(server, 80)
  assert(router:masquerade(outside))
  local c = assert(client:call(sock.dial_tcp, "server", 80, 5))
  c:write("one\n")
  expect.eq(c:read_line(), "one from 10.0.2.1", "the server sees the router's address")
  c:close()

  local proxy = router:call(sock.listen_tcp, "0.0.0.0", 3128)
  assert(router:redirect(inside, 80, 3128))
  expect.match(tostring(net), "masquerade out eth1, redirect in eth0 tcp 80 %-> :3128")
  local t = router:spawn(function()
    local a = proxy:accept()
    local host, port = sock.getopt(a, "original_dst")
    a:close()
    return host, port
  end)
  local c2 = assert(client:call(sock.dial_tcp, "10.0.2.2", 80, 5))
  local host, port = wait(t, 5)
  expect.eq(host, "10.0.2.2"); expect.eq(port, 80)
  c2:close(); proxy:close(); l:close()
  net:close()
end

-- Real programs inside hosts: curl and nc against a sockplay server in
-- another host, ping across a delayed link, tcpdump seeing the packets.
function TestProgramsInHosts()
  local net, client, router, server, inside, outside = chain({delay = 0.01})
  local l = server:call(sock.listen_tcp, "0.0.0.0", 8080)
  server:spawn(function()
    while true do
      local c = l:accept()
      if not c then return end
      local req = c:read_until("\r\n\r\n")
      local body = "served by " .. select(1, c:getsockname()) .. "\n"
      c:write("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
      c:close()
    end
  end)
  local dump = client:spawn(function()
    return client:run{argv = {"tcpdump", "-l", "-nn", "-c", "6", "-i", "eth0", "tcp port 8080"}, timeout = 15}
  end)
  sleep(0.5) -- tcpdump opens its socket
  local r = assert(client:run{argv = {"curl", "-sS", "--max-time", "5", "http://server:8080/"}, timeout = 10})
  expect.eq(r.status, 0, r.stderr)
  expect.eq(r.stdout, "served by 10.0.2.2\n")
  r = assert(client:run{argv = {"nc", "-N", "-w", "5", "server", "8080"}, stdin = "GET / HTTP/1.0\r\n\r\n", timeout = 10})
  expect.match(r.stdout, "served by 10%.0%.2%.2")
  local td = wait(dump, 15)
  expect.match(td.stdout, "10%.0%.1%.2%.%d+ > 10%.0%.2%.2%.8080: Flags %[S%]", "tcpdump in the client saw the SYN")
  r = assert(client:run{argv = {"ping", "-n", "-c", "2", "-i", "0.2", "server"}, timeout = 10})
  local min = tonumber(r.stdout:match("= ([%d.]+)/"))
  expect.ok(min and min >= 20 and min < 60, "ping rtt " .. tostring(min) .. " ms across 10 ms each way")
  r = assert(server:run{argv = {"hostname"}})
  expect.eq(r.stdout, "server\n")
  l:close()
  net:close()
end

-- A link pulled out: connections time out; plugged back, they work.
function TestLinkDownAndUp()
  local net, client, router, server, inside, outside = chain()
  local l = echo_server(server, 7)
  assert(outside:down())
  expect.eq(outside.state, "down")
  expect.match(tostring(outside), " down: ")
  local _, _, code = client:call(sock.dial_tcp, "server", 7, 0.3)
  expect.eq(code, "ETIMEDOUT")
  -- The SYN (or the router's ARP) crosses the client's link first, frame
  -- by frame in user space: on a busy machine it may reach the pulled
  -- link after the dial gave up. Wait for it, within bounds.
  for _ = 1, 300 do
    if outside:stats(router).down > 0 then break end
    sleep(0.01)
  end
  expect.ok(outside:stats(router).down > 0, "frames dropped while down")
  assert(outside:up())
  local c = assert(client:call(sock.dial_tcp, "server", 7, 5))
  c:write("back\n")
  expect.eq(c:read_line(), "back from 10.0.1.2")
  c:close(); l:close()
  net:close()
end

-- The task that made a lab takes it down when killed, not when it just
-- ends; net:close() closes the sockets inside.
function TestLabLifetime()
  local kept
  wait(spawn(function() kept = assert(lab.new()); kept:host("a") end))
  expect.ok(fs.stat("/run/netns/" .. kept.prefix .. "a"), "a task that ended leaves its lab")
  local killed
  local t = spawn(function()
    killed = assert(lab.new())
    killed:host("b")
    sleep(60)
  end)
  sleep(0.2)
  local path = "/run/netns/" .. killed.prefix .. "b"
  expect.ok(fs.stat(path))
  kill(t)
  wait(t)
  expect.eq(fs.stat(path), nil, "the killed task's lab is gone")
  expect.fails(function() killed:host("c") end, "is closed")
  local a = kept:hosts()[1]
  local s = a:call(sock.listen_tcp, "127.0.0.1", 0)
  kept:close()
  expect.eq(select(3, s:getsockname()), "EBADF", "the lab's sockets closed with it")
end

-- A DNS server in one host: its sockets are the host's; dig in another
-- host asks it by the host's name, and so does dns.query.
function TestDNSInALab()
  local net = assert(lab.new())
  local client, server = net:host("client"), net:host("server")
  net:link(client, server)
  local srv = server:call(dns.serve, {host = "0.0.0.0", port = 53, zone = {origin = "lab.test", "www A 10.9.9.9"}})
  for _, e in ipairs(fds()) do
    if e.lport == 53 then expect.eq(e.host, "server", "dns.serve's " .. e.kind .. " socket") end
  end
  local r = assert(client:run{argv = {"dig", "+short", "+time=2", "+tries=1", "@server", "www.lab.test"}, timeout = 10})
  expect.eq(r.stdout, "10.9.9.9\n", r.stderr)
  local answer = assert(client:call(dns.query, "www.lab.test", "A", {server = "server"}))
  expect.eq(answer.answer[1].address, "10.9.9.9")
  srv:close()
  net:close()
end

-- A handler of a server in a host runs there: a socket it opens is the
-- host's.
function TestDNSHandlerRunsInTheHost()
  local net = assert(lab.new())
  local client, server = net:host("client"), net:host("server")
  net:link(client, server)
  local srv = assert(server:call(dns.serve, {addr = "0.0.0.0:53", handler = function(req)
    local u = assert(sock.udp())
    local where = sock.info(u).host
    u:close()
    return {answer = {{type = "TXT", text = req.client .. " asked, answered in " .. tostring(where)}}}
  end}))
  local r = assert(client:run{argv = {"dig", "+short", "+time=5", "+tries=1", "@server", "who.lab.test", "TXT"}, timeout = 10})
  expect.eq(r.stdout, "\"" .. client.addr .. " asked, answered in server\"\n", r.stderr)
  srv:close()
  net:close()
end
