-- LuaSocket on sockplay: each method's success and failure, with the
-- shapes and words LuaSocket 3 gives (checked against lua5.1 with
-- Debian's lua-socket). Every wait has a timeout so a bug fails fast.

local socket = require("socket")

-- pack keeps every result, trailing nils included.
local function pack(...) return {n = select("#", ...), ...} end

local function expectResults(got, want, msg)
  expect.eq(got.n, want.n, (msg or "") .. ": how many results")
  for i = 1, math.max(got.n, want.n) do
    expect.eq(got[i], want[i], (msg or "") .. ": result " .. i)
  end
end

-- server returns a listening object and its port.
local function server()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:settimeout(5)
  return s, tonumber(port)
end

-- pair returns the client and server ends of a TCP connection.
local function pair()
  local s, port = server()
  local c = assert(socket.connect("127.0.0.1", port))
  local a = assert(s:accept())
  s:close()
  c:settimeout(5)
  a:settimeout(5)
  return c, a
end

function TestModuleShape()
  expect.eq(require("socket.core"), socket, "socket and socket.core are one table")
  expect.eq(socket._VERSION, "LuaSocket 3.0.0")
  expect.ok(socket._SETSIZE >= 1024, "select takes at least FD_SETSIZE sockets")
  expect.eq(socket._DATAGRAMSIZE, 8192)
  expect.eq(socket._SOCKETINVALID, -1)
  expect.eq(socket.BLOCKSIZE, 2048)
  expect.eq(rawget(_G, "socket"), nil, "require does not make a global, as LuaSocket 3's does not")
  for _, name in ipairs({"tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "connect", "connect4", "connect6",
      "bind", "select", "sleep", "gettime", "skip", "newtry", "protect", "try", "choose", "sink", "source"}) do
    expect.eq(type(socket[name]), "function", name)
  end
  for _, name in ipairs({"toip", "tohostname", "gethostname", "getaddrinfo", "getnameinfo"}) do
    expect.eq(type(socket.dns[name]), "function", "dns." .. name)
  end
  expect.eq(type(socket.sinkt["close-when-done"]), "function")
  expect.eq(type(socket.sourcet["by-length"]), "function")
end

function TestMasterIsLazy()
  local m = socket.tcp()
  expect.match(tostring(m), "^tcp{master}: 0x%x+$")
  expect.eq(getmetatable(m).__index.class, "tcp{master}")
  expectResults(pack(m:getfd()), pack(-1), "no descriptor before bind or connect")
  expectResults(pack(m:getsockname()), pack(nil, "Bad file descriptor"))
  expectResults(pack(m:getfamily()), pack("inet4"))
  expectResults(pack(m:settimeout(1)), pack(1))
  expectResults(pack(m:gettimeout()), pack(1, -1))
  expectResults(pack(m:getoption("reuseaddr")), pack(nil, "getsockopt failed"))
  -- An option set before the socket exists is kept for it (LuaSocket
  -- would lose it).
  expectResults(pack(m:setoption("reuseaddr", true)), pack(1))
  expectResults(pack(m:bind("127.0.0.1", 0)), pack(1))
  expect.ok(m:getfd() > 2, "bind made the descriptor")
  expect.eq(m:getoption("reuseaddr"), true, "the option kept applies")
  expect.eq(fd(m:getfd()).fd, m:getfd(), "an ordinary descriptor of the table")
  m:close()
end

function TestClassesGuardMethods()
  local m = socket.tcp()
  expect.fails(function() m:receive() end, "bad argument #1 to 'receive' %(tcp{client} expected%)")
  expect.fails(function() m:send("x") end, "tcp{client} expected")
  expect.fails(function() m:accept() end, "tcp{server} expected")
  expect.fails(function() m:getstats() end, "tcp{client} expected")
  expect.fails(function() socket.tcp().close(socket.udp()) end, "tcp{any} expected")
  expect.fails(function() socket.udp().close({}) end, "udp{any} expected")
  local s = server()
  expect.fails(function() s:bind("127.0.0.1", 0) end, "tcp{master} expected")
  expect.fails(function() s:listen() end, "tcp{master} expected")
  s:close()
end

function TestServerAndClient()
  local m = socket.tcp4()
  expect.ok(m:getfd() > 2, "tcp4 makes its descriptor at once")
  expectResults(pack(m:bind("127.0.0.1", 0)), pack(1))
  expect.match(tostring(m), "^tcp{master}: ")
  expectResults(pack(m:listen(5)), pack(1))
  expect.match(tostring(m), "^tcp{server}: ")
  local ip, port, family = m:getsockname()
  expect.eq(ip, "127.0.0.1")
  expect.eq(type(port), "string", "getsockname's port is a string, as LuaSocket's")
  expect.eq(family, "inet")

  local c = socket.tcp()
  expectResults(pack(c:connect("127.0.0.1", port)), pack(1))
  expect.match(tostring(c), "^tcp{client}: 0x%x+$")
  m:settimeout(5)
  local a = m:accept()
  expect.match(tostring(a), "^tcp{client}: ")
  local pip, pport, pfam = c:getpeername()
  expect.eq(pip, "127.0.0.1"); expect.eq(pport, tonumber(port)); expect.eq(pfam, "inet")
  expect.eq(type(pport), "number", "getpeername's port is a number")
  expectResults(pack(a:getfamily()), pack("inet4"))

  -- The sockets are the table's: the accepted one belongs to this task.
  local rows = fds()
  local found = 0
  for _, r in ipairs(rows) do
    if r.fd == a:getfd() or r.fd == c:getfd() or r.fd == m:getfd() then found = found + 1 end
  end
  expect.eq(found, 3, "server, client and accepted fds are in fds()")
  for _, o in ipairs({a, c, m}) do expectResults(pack(o:close()), pack(1)) end
end

function TestConnectFailures()
  local s, port = server()
  s:close()
  local c = socket.tcp()
  expectResults(pack(c:connect("127.0.0.1", port)), pack(nil, "connection refused"))
  expect.match(tostring(c), "^tcp{client}", "connect sets the class even when it fails")
  c:close()
  expectResults(pack(socket.connect("127.0.0.1", port)), pack(nil, "connection refused"))
  expectResults(pack(socket.connect("nonexistent.invalid", 80)), pack(nil, "host or service not provided, or not known"))
  expectResults(pack(socket.tcp6():connect("127.0.0.1", port)), pack(nil, "Address family for hostname not supported"))
  expectResults(pack(socket.tcp():connect("127.0.0.1", "http-ish")), pack(nil, "service not supported for socket type"))
  expectResults(pack(socket.connect("127.0.0.1", port, nil, nil, "inet6")), pack(nil, "Address family for hostname not supported"),
    "family limits the addresses tried, as the manual says")
  expect.fails(function() socket.connect("127.0.0.1", port, nil, nil, "bogus") end, "invalid option 'bogus'")
  expect.fails(function() socket.connect("127.0.0.1") end, "bad argument #2 to 'connect'")
end

function TestBindFailures()
  local s, port = server()
  expectResults(pack(socket.tcp():bind("127.0.0.1", port)), pack(nil, "address already in use"))
  expectResults(pack(socket.bind("127.0.0.1", port)), pack(nil, "address already in use"))
  expectResults(pack(socket.tcp():bind("192.0.2.1", 0)), pack(nil, "Cannot assign requested address"))
  expectResults(pack(socket.bind("nonexistent.invalid", 0)), pack(nil, "host or service not provided, or not known"))
  local any = assert(socket.bind("*", 0))
  expect.eq(any:getsockname(), "0.0.0.0", "\"*\" is every address")
  any:close()
  s:close()
end

function TestLocalAddressOfConnect()
  local s, port = server()
  local c = assert(socket.connect("127.0.0.1", port, "127.0.0.1", 0))
  local a = s:accept()
  local _, lport = c:getsockname()
  local _, pport = a:getpeername()
  expect.eq(tonumber(lport), pport, "the client's local port is what the server sees")
  c:close(); a:close(); s:close()
end

function TestReceivePatterns()
  local c, a = pair()
  expectResults(pack(c:send("one\r\ntw\ro\nthree")), pack(15, nil, nil))
  expectResults(pack(a:receive()), pack("one", nil, nil), "a line without its CR LF")
  expectResults(pack(a:receive("*l")), pack("two", nil, nil), "every CR goes, as LuaSocket drops them")
  expectResults(pack(a:receive(3)), pack("thr", nil, nil))
  expect.eq(a:dirty(), true, "bytes wait in the object's buffer")
  a:settimeout(0.05)
  expectResults(pack(a:receive(10)), pack(nil, "timeout", "ee"), "the partial result")
  expect.eq(a:dirty(), false)
  expectResults(pack(a:receive("*l", "pre-")), pack(nil, "timeout", "pre-"), "the prefix comes back with the partial")
  c:send("fix\n")
  expectResults(pack(a:receive("*l", "pre-")), pack("pre-fix", nil, nil))
  c:send("xyz")
  expectResults(pack(a:receive(5, "ab")), pack("abxyz", nil, nil), "a count includes the prefix")
  expectResults(pack(a:receive(2, "abcdef")), pack("abcdef", nil, nil), "a prefix longer than the count reads nothing")
  expectResults(pack(a:receive("10")), pack(nil, "timeout", ""), "a numeric string is a count")
  c:send("tail")
  c:close()
  a:settimeout(5)
  expectResults(pack(a:receive("*a")), pack("tail", nil, nil), "everything until the peer closes")
  expectResults(pack(a:receive("*a")), pack(nil, "closed", ""))
  expectResults(pack(a:receive()), pack(nil, "closed", ""))
  expectResults(pack(a:receive(3)), pack(nil, "closed", ""))
  expect.fails(function() a:receive("*x") end, "bad argument #2 to 'receive' %(invalid receive pattern%)")
  expect.fails(function() a:receive(-1) end, "invalid receive pattern")
  expect.fails(function() a:receive({}) end, "bad argument #2 to 'receive'")
  a:close()
end

function TestReceiveLastLineAtClose()
  local c, a = pair()
  c:send("no newline")
  c:close()
  expectResults(pack(a:receive()), pack(nil, "closed", "no newline"), "LuaSocket fails a line cut by the close")
  a:close()
end

function TestSendIndexes()
  local c, a = pair()
  expectResults(pack(c:send("0123456789", 3, 5)), pack(5, nil, nil), "i..j, the last index sent")
  expectResults(pack(c:send("0123456789", -3)), pack(10, nil, nil), "negative i counts from the end")
  expectResults(pack(c:send("0123456789", 8, 2)), pack(7, nil, nil), "nothing to send: i - 1")
  expectResults(pack(c:send("")), pack(0, nil, nil))
  expectResults(pack(c:send(42)), pack(2, nil, nil), "numbers are sent as strings")
  expectResults(pack(a:receive(8)), pack("23478942", nil, nil))
  a:close()
  -- The peer is gone: a write gets RST back, the next one fails.
  local n, err, last
  for _ = 1, 50 do
    n, err, last = c:send("x", 1)
    if not n then break end
    socket.sleep(0.01)
  end
  expect.eq(n, nil)
  expect.eq(err, "closed", "a reset or broken pipe is \"closed\"")
  expect.eq(last, 0, "the index reached")
  expect.fails(function() c:send() end, "bad argument #2 to 'send'")
  c:close()
end

function TestPartialSendTimeout()
  local c, a = pair()
  c:settimeout(0)
  local big = string.rep("x", 64 * 1024 * 1024)
  local n, err, last = c:send(big)
  expect.eq(n, nil)
  expect.eq(err, "timeout", "a full send buffer with timeout 0")
  expect.ok(last > 0 and last < #big, "the index of the last byte that went")
  local n2, err2, last2 = c:send(big, last + 1)
  expect.eq(err2, "timeout")
  expect.ok(last2 >= last, "resuming at last + 1 goes on from there")
  c:close(); a:close()
end

function TestTimeouts()
  local c, a = pair()
  a:settimeout(0)
  local t0 = socket.gettime()
  expectResults(pack(a:receive()), pack(nil, "timeout", ""))
  expect.ok(socket.gettime() - t0 < 0.5, "timeout 0 returns at once")
  a:settimeout(0.2)
  t0 = socket.gettime()
  expectResults(pack(a:receive()), pack(nil, "timeout", ""))
  local took = socket.gettime() - t0
  expect.ok(took >= 0.15 and took < 2, "block timeout 0.2 s took " .. took)
  a:settimeout(nil)
  a:settimeout(0.2, "t")
  expectResults(pack(a:gettimeout()), pack(-1, 0.2))
  t0 = socket.gettime()
  expectResults(pack(a:receive()), pack(nil, "timeout", ""))
  took = socket.gettime() - t0
  expect.ok(took >= 0.15 and took < 2, "total timeout 0.2 s took " .. took)
  expectResults(pack(a:settimeout(-1)), pack(1))
  expectResults(pack(a:gettimeout()), pack(-1, 0.2), "a block timeout leaves the total one")
  expect.fails(function() a:settimeout(1, "x") end, "invalid timeout mode")
  expect.fails(function() a:settimeout("soon") end, "number expected")

  local s = server()
  s:settimeout(0)
  expectResults(pack(s:accept()), pack(nil, "timeout"))
  s:settimeout(0.1)
  t0 = socket.gettime()
  expectResults(pack(s:accept()), pack(nil, "timeout"))
  expect.ok(socket.gettime() - t0 >= 0.05, "accept waited")
  s:close(); c:close(); a:close()
end

-- A connect with timeout 0 goes on in the kernel and returns "timeout"
-- or succeeds at once; select then says when it is done.
function TestNonBlockingConnect()
  local s, port = server()
  local c = socket.tcp()
  c:settimeout(0)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then
    expect.eq(err, "timeout")
    local _, w = socket.select(nil, {c}, 5)
    expect.eq(w[1], c, "writable once connected")
  end
  expect.eq(c:getpeername(), "127.0.0.1")
  local _, err2 = c:connect("127.0.0.1", port)
  expect.eq(err2, "already connected")
  s:close(); c:close()
end

function TestOptionsTCP()
  local c, a = pair()
  expectResults(pack(c:setoption("tcp-nodelay", true)), pack(1))
  expectResults(pack(c:getoption("tcp-nodelay")), pack(true))
  expectResults(pack(c:setoption("keepalive", false)), pack(1))
  expectResults(pack(c:getoption("keepalive")), pack(false))
  expectResults(pack(c:setoption("linger", {on = true, timeout = 3})), pack(1))
  local l = c:getoption("linger")
  expect.eq(l.on, true); expect.eq(l.timeout, 3)
  expectResults(pack(c:setoption("tcp-keepidle", 30)), pack(1))
  expectResults(pack(c:getoption("tcp-keepidle")), pack(30))
  expectResults(pack(c:setoption("send-buffer-size", 8192)), pack(1))
  expectResults(pack(c:getoption("send-buffer-size")), pack(16384), "the kernel doubles it")
  expectResults(pack(c:getoption("error")), pack(nil), "no pending error")
  expect.fails(function() c:getoption("bogus") end, "unsupported option `bogus'")
  expect.fails(function() c:setoption("ipv6-v6only") end, "boolean expected")
  expect.fails(function() c:getoption("ipv6-v6only") end, "unsupported option", "TCP can set but not get it")
  expect.fails(function() c:setoption("linger", 5) end, "table expected")
  expect.fails(function() c:setoption("linger", {on = 1, timeout = 3}) end, "boolean 'on' field expected")
  expect.fails(function() c:setoption("linger", {on = true}) end, "number 'timeout' field expected")
  expect.fails(function() c:setoption("reuseaddr", 1) end, "boolean expected")
  c:close(); a:close()
end

function TestStats()
  local c, a = pair()
  c:send("hello\n")
  a:receive()
  local r, s, age = a:getstats()
  expect.eq(r, 6); expect.eq(s, 0); expect.ok(age >= 0 and age < 60)
  local cr, cs = c:getstats()
  expect.eq(cr, 0); expect.eq(cs, 6)
  expectResults(pack(a:setstats(1, 2, 100)), pack(1))
  local r2, s2, age2 = a:getstats()
  expect.eq(r2, 1); expect.eq(s2, 2); expect.ok(age2 >= 100 and age2 < 101)
  c:close(); a:close()
end

function TestShutdown()
  local c, a = pair()
  expectResults(pack(c:shutdown("send")), pack(1))
  expectResults(pack(a:receive()), pack(nil, "closed", ""), "the peer reads the end")
  expectResults(pack(a:send("still\n")), pack(6, nil, nil), "the other direction is open")
  expectResults(pack(c:receive()), pack("still", nil, nil))
  expectResults(pack(c:shutdown()), pack(1))
  expect.fails(function() c:shutdown("bogus") end, "invalid option 'bogus'")
  c:close(); a:close()
end

function TestClosedObjects()
  local c, a = pair()
  expectResults(pack(c:close()), pack(1))
  expectResults(pack(c:close()), pack(1), "closing twice is fine")
  expect.match(tostring(c), "^tcp{client}: ")
  expectResults(pack(c:getfd()), pack(-1))
  expectResults(pack(c:send("x")), pack(nil, "closed", 0))
  expectResults(pack(c:receive()), pack(nil, "closed", ""))
  expectResults(pack(c:getpeername()), pack(nil, "Bad file descriptor"))
  expectResults(pack(c:setoption("tcp-nodelay", true)), pack(nil, "setsockopt failed"))
  -- A closed master binds again with a new descriptor, as LuaSocket's.
  local m = socket.tcp()
  m:close()
  expectResults(pack(m:bind("127.0.0.1", 0)), pack(1))
  expectResults(pack(m:listen()), pack(1))
  m:close(); a:close()
end

function TestSetfd()
  local c, a = pair()
  local n = a:getfd()
  local other = socket.tcp()
  a:setfd(-1)
  expect.eq(a:getfd(), -1, "detached")
  expect.ok(fd(n) ~= nil, "the descriptor stays open")
  other:setfd(n)
  expect.eq(other:getfd(), n)
  expect.fails(function() other:setfd(999999) end, "not one of sockplay's TCP sockets")
  other:close(); c:close()
end

function TestUDP()
  local u = socket.udp()
  expect.match(tostring(u), "^udp{unconnected}: 0x%x+$")
  expectResults(pack(u:getfd()), pack(-1))
  expectResults(pack(u:setsockname("127.0.0.1", 0)), pack(1))
  local ip, port, fam = u:getsockname()
  expect.eq(ip, "127.0.0.1"); expect.eq(type(port), "string"); expect.eq(fam, "inet")
  u:settimeout(5)

  local v = socket.udp()
  expectResults(pack(v:sendto("hi", "127.0.0.1", port)), pack(2), "sendto makes a socket.udp()'s descriptor")
  local vip, vport = v:getsockname()
  expect.eq(vip, "0.0.0.0")
  local d, fip, fport = u:receivefrom()
  expect.eq(d, "hi"); expect.eq(fip, "127.0.0.1"); expect.eq(fport, tonumber(vport))
  v:sendto("0123456789", "127.0.0.1", port)
  expectResults(pack(u:receive(4)), pack("0123"), "a datagram cut to the size; the rest is lost")
  v:sendto("", "127.0.0.1", port)
  expectResults(pack(u:receive()), pack(""), "an empty datagram")
  u:settimeout(0)
  expectResults(pack(u:receive()), pack(nil, "timeout"))
  expectResults(pack(u:receivefrom()), pack(nil, "timeout"))
  expect.eq(u:dirty(), false)

  expectResults(pack(v:setpeername("127.0.0.1", port)), pack(1))
  expect.match(tostring(v), "^udp{connected}: ")
  local pip, pport, pfam = v:getpeername()
  expect.eq(pip, "127.0.0.1"); expect.eq(pport, tonumber(port)); expect.eq(pfam, "inet")
  expectResults(pack(v:send("conn")), pack(4))
  u:settimeout(5)
  expectResults(pack(u:receive()), pack("conn"))
  expect.fails(function() v:sendto("x", "127.0.0.1", port) end, "udp{unconnected} expected")
  expect.fails(function() v:receivefrom() end, "udp{unconnected} expected")
  expect.fails(function() u:send("x") end, "udp{connected} expected")
  expect.fails(function() u:getpeername() end, "udp{connected} expected")
  expectResults(pack(v:setpeername("*")), pack(1))
  expect.match(tostring(v), "^udp{unconnected}: ")

  expectResults(pack(u:sendto("x", "localhost", 9)), pack(nil, "Name or service not known"), "sendto takes numeric addresses")
  expectResults(pack(u:sendto("x", "::1", 9)), pack(nil, "Address family for hostname not supported"))
  expect.fails(function() u:sendto("x", "127.0.0.1") end, "bad argument #4 to 'sendto'")
  u:close(); v:close()
  expectResults(pack(u:receive()), pack(nil, "closed"))
  expectResults(pack(v:sendto("x", "127.0.0.1", 9)), pack(1), "a closed udp() makes a new socket on sendto")
  v:close()
end

function TestUDPRefused()
  local dead = socket.udp()
  dead:setsockname("127.0.0.1", 0)
  local _, port = dead:getsockname()
  dead:close()
  local w = socket.udp()
  w:setpeername("127.0.0.1", port)
  w:settimeout(2)
  w:send("anyone?")
  expectResults(pack(w:receive()), pack(nil, "connection refused"), "the ICMP port unreachable comes back")
  w:close()
  expectResults(pack(w:send("x")), pack(nil, "refused"), "a closed UDP socket's send")
end

function TestUDPOptions()
  local u = socket.udp4()
  expectResults(pack(u:getoption("broadcast")), pack(false))
  expectResults(pack(u:setoption("broadcast", true)), pack(1))
  expectResults(pack(u:getoption("broadcast")), pack(true))
  expectResults(pack(u:setoption("ip-multicast-ttl", 4)), pack(1))
  expectResults(pack(u:setoption("ip-multicast-if", "127.0.0.1")), pack(1))
  expectResults(pack(u:getoption("ip-multicast-if")), pack("127.0.0.1"))
  expectResults(pack(u:setoption("ip-add-membership", {multiaddr = "224.0.0.251", interface = "127.0.0.1"})), pack(1))
  expectResults(pack(u:setoption("ip-drop-membership", {multiaddr = "224.0.0.251", interface = "127.0.0.1"})), pack(1))
  expect.fails(function() u:setoption("ip-add-membership", {multiaddr = "nope", interface = "*"}) end, "invalid 'multiaddr' ip address")
  expect.fails(function() u:getoption("ip-multicast-ttl") end, "unsupported option")
  local u6 = socket.udp6()
  expectResults(pack(u6:getoption("ipv6-v6only")), pack(true), "IPv6 sockets are IPv6-only, as LuaSocket makes them")
  expectResults(pack(u6:getfamily()), pack("inet6"))
  u:close(); u6:close()
end

function TestSelect()
  local pairs_ = {}
  for i = 1, 40 do pairs_[i] = {pair()} end
  local servers = {}
  for i, p in ipairs(pairs_) do servers[i] = p[2] end
  local r, w, err = socket.select(servers, nil, 0)
  expect.eq(#r, 0); expect.eq(#w, 0); expect.eq(err, "timeout", "nothing readable")
  -- Three clients write: exactly their peers are readable.
  for _, i in ipairs({5, 17, 33}) do pairs_[i][1]:send("ping " .. i .. "\n") end
  local readable = {}
  local deadline = socket.gettime() + 5
  while #readable < 3 and socket.gettime() < deadline do
    r = socket.select(servers, nil, 1)
    readable = r
  end
  expect.eq(#readable, 3, "three readable")
  for _, i in ipairs({5, 17, 33}) do
    local s = servers[i]
    expect.ok(readable[s] ~= nil, "server end " .. i .. " readable")
    expect.eq(readable[readable[s]], s, "the result is an array and a set")
  end
  -- Buffered bytes make an object readable first, without waiting.
  servers[5]:receive(2)
  expect.eq(servers[5]:dirty(), true)
  r = socket.select({servers[1], servers[5]}, nil, 10)
  expect.eq(r[1], servers[5])
  -- Writable: every connected socket.
  local clients = {pairs_[1][1], pairs_[2][1]}
  local _, wr = socket.select(nil, clients, 1)
  expect.eq(#wr, 2)
  expect.eq(wr[clients[1]] ~= nil and wr[clients[2]] ~= nil, true)
  -- Anything with getfd and dirty methods can be selected.
  local wrapped = {getfd = function() return servers[17]:getfd() end, dirty = function() return false end}
  r = socket.select({wrapped}, nil, 1)
  expect.eq(r[1], wrapped)
  expectResults(pack(select("#", socket.select(nil, nil, 0))), pack(3))
  expect.fails(function() socket.select(5, nil, 0) end, "bad argument #1 to 'select' %(table expected, got number%)")
  local closed = socket.tcp()
  closed:close()
  r, w, err = socket.select({closed, "not a socket"}, nil, 0)
  expect.eq(err, "timeout", "objects with no descriptor are left out")
  for _, p in ipairs(pairs_) do p[1]:close(); p[2]:close() end
end

function TestSelectWaitLetsTasksRun()
  local c, a = pair()
  local t = spawn(function()
    sleep(0.05)
    c:send("late\n")
  end)
  local r = socket.select({a}, nil, 5)
  expect.eq(r[1], a, "the other task ran while select waited")
  wait(t)
  c:close(); a:close()
end

function TestBlockingReceiveLetsTasksRun()
  local c, a = pair()
  local t = spawn(function()
    expect.eq(a:receive(), "from main")
    a:send("from task\n")
  end)
  sleep(0.05)
  c:send("from main\n")
  expect.eq(c:receive(), "from task")
  wait(t)
  c:close(); a:close()
end

function TestKillWakesReceive()
  local c, a = pair()
  local t = spawn(function() a:receive() end)
  sleep(0.05)
  kill(t)
  local _, msg = wait(t, 5)
  expect.eq(msg, "killed")
  c:close(); a:close()
end

-- A coroutine scheduler in the style of Copas: non-blocking sockets,
-- coroutines that yield on "timeout", select to wake them.
function TestCoroutineScheduler()
  local s, port = server()
  s:settimeout(0)
  local reading, handlers = {}, {}
  local served = 0
  local function handler(c)
    while true do
      local line, err = c:receive()
      if line then
        c:send(line:upper() .. "\n")
      elseif err == "timeout" then
        coroutine.yield(c)
      else
        break
      end
    end
    c:close()
    served = served + 1
  end
  local clients = {}
  for i = 1, 5 do
    clients[i] = assert(socket.connect("127.0.0.1", port))
    clients[i]:settimeout(5)
  end
  for i = 1, 5 do clients[i]:send("client " .. i .. "\n") end
  local answers = {}
  local deadline = socket.gettime() + 5
  while served < 5 and socket.gettime() < deadline do
    local r = socket.select({s, unpack(reading)}, nil, 0.5)
    for _, x in ipairs(r) do
      if x == s then
        local c = s:accept()
        if c then
          c:settimeout(0)
          local co = coroutine.create(handler)
          handlers[c] = co
          table.insert(reading, c)
          coroutine.resume(co, c)
        end
      else
        coroutine.resume(handlers[x])
        if coroutine.status(handlers[x]) == "dead" then
          for k, v in ipairs(reading) do if v == x then table.remove(reading, k) break end end
        end
      end
    end
    for i = 1, 5 do
      if clients[i] and #answers < 5 then
        clients[i]:settimeout(0)
        local a = clients[i]:receive()
        if a then
          table.insert(answers, a)
          clients[i]:close()
          clients[i] = nil
        end
      end
    end
  end
  table.sort(answers)
  expect.eq(table.concat(answers, ","), "CLIENT 1,CLIENT 2,CLIENT 3,CLIENT 4,CLIENT 5")
  expect.eq(served, 5)
  s:close()
end

function TestTryProtect()
  local f = socket.protect(function(x)
    local v = socket.try(x, "no x")
    return v, "after"
  end)
  expectResults(pack(f(1)), pack(1, "after"))
  expectResults(pack(f(nil)), pack(nil, "no x"), "a try's failure becomes nil, err")
  local finalized = false
  local try = socket.newtry(function() finalized = true end)
  expectResults(pack(socket.protect(function() try(false, "bad") end)()), pack(nil, "bad"))
  expect.eq(finalized, true, "the finalizer ran")
  expectResults(pack(try(1, 2, 3)), pack(1, 2, 3), "a true first value passes everything")
  expect.fails(socket.protect(function() error("plain") end), "plain", "other errors go on")
  expect.fails(function() socket.try(nil, "bare") end)
  local ok, e = pcall(socket.try, nil, "wrapped")
  expect.eq(type(e), "table"); expect.eq(e[1], "wrapped"); expect.eq(getmetatable(e), false)
  local g = socket.protect(function() socket.newtry(function() error("ignored") end)(nil, "fin") end)
  expectResults(pack(g()), pack(nil, "fin"), "a failing finalizer is ignored")
end

function TestSkipSleepGettime()
  expectResults(pack(socket.skip(1, "a", "b", "c")), pack("b", "c"))
  expectResults(pack(socket.skip(0, "a")), pack("a"))
  expectResults(pack(socket.skip(5, "a")), pack())
  expect.fails(function() socket.skip() end, "bad argument #1 to 'skip'")
  local t0 = socket.gettime()
  expect.ok(t0 > 1e9, "seconds since the epoch")
  expectResults(pack(socket.sleep(0.05)), pack())
  expect.ok(socket.gettime() - t0 >= 0.04, "slept")
  expectResults(pack(socket.sleep(-1)), pack(), "a negative sleep returns at once")
  expect.fails(function() socket.sleep() end, "bad argument #1 to 'sleep'")
end

function TestDNS()
  local ip, info = socket.dns.toip("localhost")
  expect.eq(ip, "127.0.0.1")
  expect.eq(info.name, "localhost")
  expect.eq(info.ip[1], "127.0.0.1")
  expect.eq(type(info.alias), "table")
  local name, info2 = socket.dns.tohostname("127.0.0.1")
  expect.eq(name, "localhost")
  expect.eq(info2.ip[1], "127.0.0.1")
  expectResults(pack(socket.dns.toip("nonexistent.invalid")), pack(nil, "host not found"))
  local list = socket.dns.getaddrinfo("127.0.0.1")
  expect.eq(#list, 1); expect.eq(list[1].family, "inet"); expect.eq(list[1].addr, "127.0.0.1")
  local list6 = socket.dns.getaddrinfo("::1")
  expect.eq(list6[1].family, "inet6"); expect.eq(list6[1].addr, "::1")
  expectResults(pack(socket.dns.getaddrinfo("nonexistent.invalid")), pack(nil, "host or service not provided, or not known"))
  expect.eq(type(socket.dns.gethostname()), "string")
  local names, serv = socket.dns.getnameinfo("127.0.0.1", 80)
  expect.eq(names[1], "localhost")
  expect.eq(serv, "http")
  local _, serv2 = socket.dns.getnameinfo(nil, "4242")
  expect.eq(serv2, "4242")
  expectResults(pack(socket.dns.getnameinfo("127.0.0.1", "nope")), pack(nil, "service not supported for socket type"))
  expect.fails(function() socket.dns.getnameinfo() end, "host and serv cannot be both nil")
end

function TestLuaHelpers()
  local s, port = server()
  local c = assert(socket.connect4("127.0.0.1", port))
  local a = s:accept()
  a:settimeout(5)
  -- Sinks send what they are given; sources give what arrives.
  local sink = socket.sink("keep-open", c)
  expect.eq(sink("chunk one|"), 10)
  expect.eq(sink(nil), 1, "keep-open leaves the socket open at the end")
  expect.eq(sink.getfd(), c:getfd(), "a sink can be selected")
  local closer = socket.sink("close-when-done", c)
  closer("two")
  expect.eq(closer(nil), 1)
  expect.eq(c:getfd(), -1, "close-when-done closed it")
  local src = socket.source("until-closed", a)
  local got = {}
  while true do
    local chunk, err = src()
    if not chunk then expect.eq(err, nil); break end
    table.insert(got, chunk)
  end
  expect.eq(table.concat(got), "chunk one|two")
  expect.eq(a:getfd(), -1, "until-closed closes its socket at the end")
  local pick = socket.choose({default = function(x) return "default " .. tostring(x) end, named = function(x) return "named " .. x end})
  expect.eq(pick("named", "a"), "named a")
  expect.eq(pick(5), "default 5")
  expect.fails(function() pick("missing") end, "unknown key %(missing%)")
  local c6 = socket.connect6("127.0.0.1", port)
  expect.eq(c6, nil, "connect6 tries IPv6 addresses only")
  s:close()
end

function TestTraceShowsLuaSocket()
  local lines = {}
  trace(function(e) table.insert(lines, e.call) end)
  local c, a = pair()
  c:send("x")
  a:receive(1)
  sleep(0.2) -- a daemon task delivers the events
  trace(false)
  local seen = table.concat(lines, " ")
  expect.match(seen, "socket.*bind.*listen.*connect.*accept.*write.*read")
  c:close(); a:close()
end

-- select waits with poll(2): descriptors past FD_SETSIZE (1024) work,
-- where LuaSocket's select raises "descriptor too large for set size".
function TestSelectPastFDSetSize()
  local held = {}
  local last
  while true do
    local u = socket.udp4()
    if not u then break end -- the descriptor limit: nothing to show here
    table.insert(held, u)
    if u:getfd() > 1100 then last = u break end
  end
  if last then
    expect.ok(socket._SETSIZE > 1100, "_SETSIZE is the descriptor limit")
    last:setsockname("127.0.0.1", 0)
    local _, port = last:getsockname()
    local sender = socket.udp4()
    sender:sendto("past 1024", "127.0.0.1", port)
    local r = socket.select({held[1], last}, nil, 5)
    expect.eq(r[1], last, "fd " .. last:getfd() .. " is readable")
    expect.eq(last:receive(), "past 1024")
    sender:close()
  end
  for _, u in ipairs(held) do u:close() end
end
