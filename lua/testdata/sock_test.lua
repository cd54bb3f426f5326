-- The sock module: each function's success and failure paths on real
-- loopback sockets. Every connection has a timeout so a bug fails fast.

local function listener()
  local fd = assert(sock.open("tcp"))
  assert(sock.bind(fd, "127.0.0.1", 0))
  assert(sock.listen(fd))
  local _, port = sock.getsockname(fd)
  return fd, port
end

local function pair()
  local l, port = listener()
  local c = assert(sock.open("tcp"))
  sock.settimeout(c, 5)
  assert(sock.connect(c, "127.0.0.1", port))
  local a = assert(sock.accept(l))
  sock.settimeout(a, 5)
  sock.close(l)
  return c, a
end

local function closedPort()
  local fd, port = listener()
  sock.close(fd)
  return port
end

function TestOpenKinds()
  for _, k in ipairs({"tcp", "udp", "tcp6", "udp6"}) do
    local fd = sock.open(k)
    expect.eq(type(fd), "number", k)
    expect.ok(fd > 2, "fd above stdio")
    expect.eq(sock.info(fd).kind, k)
    expect.eq(sock.close(fd), true)
  end
  expect.fails(function() sock.open("sctp") end, "bad argument #1 to 'open' %(unknown socket kind \"sctp\"")
  expect.fails(function() sock.open() end, "bad argument #1 to 'open' %(string expected, got nil%)")
end

function TestFdIsTheKernels()
  local n = sock.open("tcp")
  local chain = fd(n)
  expect.eq(chain.fd, n)
  expect.match(chain.target, "^socket:%[%d+%]$", "the kernel's own fd links to a socket inode")
  sock.close(n)
end

function TestBindErrors()
  local fd, port = listener()
  local b = sock.open("tcp")
  local ok, msg, code = sock.bind(b, "127.0.0.1", port)
  expect.eq(ok, nil); expect.eq(code, "EADDRINUSE"); expect.eq(msg, "address already in use")
  ok, msg, code = sock.bind(b, "192.0.2.1", 0)
  expect.eq(code, "EADDRNOTAVAIL")
  ok, msg, code = sock.bind(b, "::1", 0)
  expect.eq(code, "EAFNOSUPPORT")
  expect.fails(function() sock.bind(b, "127.0.0.1", 70000) end, "bad argument #3 to 'bind' %(port 70000 out of range 0%-65535%)")
  expect.fails(function() sock.bind(b, "127.0.0.1", -1) end, "out of range")
  expect.fails(function() sock.bind(b, "127.0.0.1") end, "bad argument #3 to 'bind' %(number expected, got nil%)")
  sock.close(b); sock.close(fd)
end

function TestListenAndAccept()
  local l, port = listener()
  local c = sock.open("tcp")
  assert(sock.connect(c, "127.0.0.1", port))
  local a, host, cport = sock.accept(l)
  expect.eq(type(a), "number")
  expect.eq(host, "127.0.0.1")
  local _, lport = sock.getsockname(c)
  expect.eq(cport, lport, "accept returns the client's port")
  local ph, pp = sock.getpeername(a)
  expect.eq(pp, lport)
  expect.fails(function() sock.listen(l, -1) end, "bad argument #2 to 'listen' %(backlog %-1 is negative%)")
  sock.close(a); sock.close(c); sock.close(l)
end

function TestConnectRefusedAndIsConn()
  local c = sock.open("tcp")
  local ok, msg, code = sock.connect(c, "127.0.0.1", closedPort())
  expect.eq(ok, nil)
  expect.eq(msg, "connection refused")
  expect.eq(code, "ECONNREFUSED")
  sock.close(c)
  local a, b = pair()
  local l2, port2 = listener()
  ok, msg, code = sock.connect(a, "127.0.0.1", port2)
  expect.eq(code, "EISCONN")
  sock.close(a); sock.close(b); sock.close(l2)
end

function TestConnectByName()
  local l, port = listener()
  local c = sock.open("tcp")
  expect.eq(sock.connect(c, "localhost", port), true)
  local ok, msg, code = sock.connect(sock.open("tcp"), "no-such-host.invalid", 80)
  expect.eq(ok, nil)
  expect.match(code, "^EAI_")
  sock.close(c); sock.close(l)
end

function TestReadIsReadTwo()
  local c, a = pair()
  sock.write(a, "hello world")
  local got = sock.read(c, 5)
  expect.eq(got, "hello")
  expect.eq(sock.read(c, 100), " world", "what has arrived, not 100 bytes")
  expect.eq(sock.read(c, 0), "")
  expect.fails(function() sock.read(c, -1) end, "bad argument #2 to 'read' %(size %-1 is negative%)")
  expect.fails(function() sock.read(c, "x") end, "invalid format")
  sock.close(c); sock.close(a)
end

function TestReadFormats()
  local c, a = pair()
  sock.write(a, "line one\r\nline two\nrest")
  expect.eq(sock.read(c, "l"), "line one")
  expect.eq(sock.read(c, "L"), "line two\n")
  sock.shutdown(a, "w")
  expect.eq(sock.read(c, "a"), "rest")
  local v, msg, code = sock.read(c, 10)
  expect.eq(v, nil); expect.eq(msg, "end of stream"); expect.eq(code, "EOF")
  sock.close(c); sock.close(a)
end

function TestReadExactUntilLineAll()
  local c, a = pair()
  sock.write(a, "abcdefGET / HTTP/1.1\r\nHost: x\r\n\r\nbody")
  expect.eq(sock.read_exact(c, 6), "abcdef")
  expect.eq(sock.read_until(c, "\r\n\r\n"), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
  expect.eq(sock.read_exact(c, 2), "bo")
  sock.write(a, "last line without newline")
  sock.shutdown(a, "w")
  expect.eq(sock.read_line(c), "dylast line without newline")
  local v, msg, code, partial = sock.read_exact(c, 1)
  expect.eq(code, "EOF"); expect.eq(partial, "")
  sock.close(c); sock.close(a)
  c, a = pair()
  sock.write(a, "12345")
  sock.shutdown(a, "w")
  v, msg, code, partial = sock.read_exact(c, 10)
  expect.eq(v, nil); expect.eq(code, "EOF"); expect.eq(partial, "12345", "partial data is handed back")
  sock.close(c); sock.close(a)
  c, a = pair()
  sock.write(a, string.rep("x", 100))
  v, msg, code, partial = sock.read_until(c, "\n", 50)
  expect.eq(v, nil); expect.eq(code, "ENOBUFS")
  expect.fails(function() sock.read_until(c, "") end, "delimiter must not be empty")
  sock.close(c); sock.close(a)
end

function TestTimeoutReturnsPartial()
  local c, a = pair()
  sock.settimeout(c, 0.05)
  sock.write(a, "par")
  local v, msg, code, partial = sock.read_line(c)
  expect.eq(v, nil); expect.eq(code, "ETIMEDOUT"); expect.eq(partial, "par")
  v, msg, code = sock.read(c, 10)
  expect.eq(code, "ETIMEDOUT")
  expect.fails(function() sock.settimeout(c, -1) end, "must not be negative")
  sock.settimeout(c, nil)
  sock.close(c); sock.close(a)
end

function TestWriteLarge()
  local c, a = pair()
  local big = string.rep("0123456789abcdef", 256 * 1024) -- 4 MiB: many partial writes
  local reader = spawn(function() return sock.read_exact(a, #big) end)
  expect.eq(sock.write(c, big), #big)
  local got = wait(reader)
  expect.eq(#got, #big)
  expect.ok(got == big, "bytes arrive in order")
  sock.close(c); sock.close(a)
end

function TestResetAndPipe()
  local c, a = pair()
  sock.setopt(a, "linger", 0)
  sock.close(a) -- linger 0: RST instead of FIN
  sleep(0.02)
  local v, msg, code = sock.read(c, 10)
  expect.eq(code, "ECONNRESET")
  local n, werr, wcode = sock.write(c, "x")
  expect.ok(wcode == "EPIPE" or wcode == "ECONNRESET", "write after reset: " .. tostring(wcode))
  sock.close(c)
end

function TestShutdown()
  local c, a = pair()
  expect.eq(sock.shutdown(c, "w"), true)
  expect.eq(select(3, sock.read(a, 10)), "EOF")
  expect.fails(function() sock.shutdown(c, "x") end, "how must be")
  local u = sock.open("tcp")
  expect.eq(select(3, sock.shutdown(u, "rw")), "ENOTCONN")
  sock.close(u); sock.close(c); sock.close(a)
end

function TestCloseAndBadFd()
  local fd = sock.open("tcp")
  expect.eq(sock.close(fd), true)
  local ok, msg, code = sock.close(fd)
  expect.eq(ok, nil); expect.eq(code, "EBADF")
  expect.eq(select(3, sock.read(fd, 1)), "EBADF")
  expect.eq(select(3, sock.write(9999, "x")), "EBADF")
  expect.eq(select(3, sock.getsockname(1)), "EBADF", "stdout is not a sockplay socket")
  expect.fails(function() sock.close("x") end, "bad argument #1 to 'close' %(fd expected, got string%)")
  expect.fails(function() sock.close(1.5) end, "fd must be an integer")
end

function TestGetpeernameNotConnected()
  local fd = sock.open("udp")
  local ok, msg, code = sock.getpeername(fd)
  expect.eq(code, "ENOTCONN")
  sock.close(fd)
end

function TestOptions()
  local fd = sock.open("tcp")
  for _, name in ipairs({"reuseaddr", "reuseport", "nodelay", "keepalive"}) do
    expect.eq(sock.setopt(fd, name, true), true, name)
    expect.eq(sock.getopt(fd, name), true, name)
    sock.setopt(fd, name, false)
    expect.eq(sock.getopt(fd, name), false, name)
  end
  sock.setopt(fd, "rcvbuf", 65536)
  expect.ok(sock.getopt(fd, "rcvbuf") >= 65536, "the kernel doubles rcvbuf")
  sock.setopt(fd, "sndbuf", 65536)
  expect.ok(sock.getopt(fd, "sndbuf") >= 65536)
  sock.setopt(fd, "linger", 5)
  expect.eq(sock.getopt(fd, "linger"), 5)
  sock.setopt(fd, "linger", false)
  expect.eq(sock.getopt(fd, "linger"), false)
  sock.setopt(fd, "ttl", 7)
  expect.eq(sock.getopt(fd, "ttl"), 7)
  expect.fails(function() sock.setopt(fd, "nagle", 1) end, "unknown option \"nagle\" %(known: broadcast")
  expect.fails(function() sock.setopt(fd, "nodelay", "yes") end, "number or boolean expected")
  local u = sock.open("udp")
  sock.setopt(u, "broadcast", true)
  expect.eq(sock.getopt(u, "broadcast"), true)
  local t6 = sock.open("tcp6")
  sock.setopt(t6, "ttl", 9)
  expect.eq(sock.getopt(t6, "ttl"), 9, "hop limit on IPv6")
  expect.ok(sock.options().nodelay, "options() documents nodelay")
  -- original_dst: an address, read-only; a connection NAT did not
  -- redirect has none.
  expect.fails(function() sock.setopt(fd, "original_dst", 1) end, "bad argument #2 to 'setopt' %(original_dst is read%-only%)")
  local l = sock.listen_tcp("127.0.0.1", 0)
  local c = sock.dial_tcp("127.0.0.1", select(2, l:getsockname()), 5)
  local ok, msg, code = sock.getopt(c, "original_dst")
  expect.eq(ok, nil); expect.eq(code, "ENOENT"); expect.match(msg, "NAT did not redirect")
  expect.ok(sock.options().original_dst, "options() documents original_dst")
  c:close(); l:close()
  sock.close(fd); sock.close(u); sock.close(t6)
end

function TestUDPSendtoRecvfrom()
  local a = sock.open("udp")
  assert(sock.bind(a, "127.0.0.1", 0))
  local _, aport = sock.getsockname(a)
  local b = sock.open("udp")
  sock.settimeout(a, 5)
  expect.eq(sock.sendto(b, "", "127.0.0.1", aport), 0)
  local data, host, port, full = sock.recvfrom(a)
  expect.eq(data, "", "zero-length datagram delivered")
  expect.eq(host, "127.0.0.1")
  expect.eq(full, nil)
  local _, bport = sock.getsockname(b)
  expect.eq(port, bport)
  sock.sendto(b, "0123456789", "127.0.0.1", aport)
  data, host, port, full = sock.recvfrom(a, 4)
  expect.eq(data, "0123"); expect.eq(full, 10, "truncation reported with the real size")
  sock.sendto(b, "one", "127.0.0.1", aport)
  sock.sendto(b, "two", "127.0.0.1", aport)
  expect.eq(sock.recvfrom(a), "one", "one datagram per recvfrom")
  expect.eq(sock.recvfrom(a), "two")
  local n, msg, code = sock.sendto(b, string.rep("x", 70000), "127.0.0.1", aport)
  expect.eq(code, "EMSGSIZE")
  sock.settimeout(a, 0.02)
  expect.eq(select(3, sock.recvfrom(a)), "ETIMEDOUT")
  expect.fails(function() sock.recvfrom(a, -5) end, "size %-5 is negative")
  expect.fails(function() sock.sendto(b, "x", "127.0.0.1") end, "bad argument #4 to 'sendto'")
  sock.close(a); sock.close(b)
end

function TestUDPConnectedRefused()
  local u = sock.open("udp")
  assert(sock.connect(u, "127.0.0.1", closedPort()))
  expect.eq(sock.write(u, "ping"), 4, "the first send succeeds: nobody said no yet")
  sock.settimeout(u, 2)
  local v, msg, code = sock.read(u, 100)
  expect.eq(code, "ECONNREFUSED", "the ICMP port unreachable arrives as ECONNREFUSED")
  sock.close(u)
end

function TestIPv6Loopback()
  local l = sock.open("tcp6")
  assert(sock.bind(l, "::1", 0))
  assert(sock.listen(l))
  local _, port = sock.getsockname(l)
  local c = sock.open("tcp6")
  expect.eq(sock.connect(c, "::1", port), true)
  local a, host = sock.accept(l)
  expect.eq(host, "::1")
  sock.close(a); sock.close(c); sock.close(l)
end

function TestPoll()
  local c, a = pair()
  local r, w = sock.poll({c, a}, "rw", 1)
  expect.eq(#r, 0, "nothing to read yet")
  expect.eq(#w, 2, "both writable")
  sock.write(a, "x")
  r = sock.poll({c, a}, "r", 2)
  expect.eq(#r, 1); expect.eq(r[1], c)
  r = sock.poll({a}, "r", 0.02)
  expect.eq(#r, 0, "timeout gives empty lists")
  expect.fails(function() sock.poll({c}, "x") end, "events must be")
  expect.eq(select(3, sock.poll({9999}, "r", 0)), "EBADF")
  sock.close(c); sock.close(a)
end

function TestPollManyFds()
  -- poll(2) has no FD_SETSIZE: more than 1024 fds work
  local fds = {}
  for i = 1, 1100 do fds[i] = assert(sock.open("udp")) end
  local _, w = sock.poll(fds, "w", 1)
  expect.eq(#w, 1100)
  for _, fd in ipairs(fds) do sock.close(fd) end
end

function TestObjectForm()
  local l = assert(sock.listen_tcp("127.0.0.1", 0))
  expect.match(tostring(l), "^<tcp fd=%d+ LISTEN 127%.0%.0%.1:%d+>$")
  local _, port = l:getsockname()
  local c = assert(sock.dial_tcp("127.0.0.1", port, 5))
  local a = l:accept()
  expect.match(tostring(c), "^<tcp fd=%d+ ESTABLISHED 127%.0%.0%.1:%d+ %-> 127%.0%.0%.1:" .. port .. ">$")
  expect.eq(c.kind, "tcp")
  expect.eq(type(c.fd), "number")
  expect.eq(sock.wrap(c.fd), c, "wrap gives an equal object")
  c:write("hi\n")
  expect.eq(a:read_line(), "hi")
  c:close()
  expect.match(tostring(c), "CLOSED")
  expect.eq(select(3, c:write("x")), "EBADF")
  a:close(); l:close()
  local u = assert(sock.bind_udp("127.0.0.1", 0))
  expect.match(tostring(u), "^<udp fd=%d+ UNCONN 127%.0%.0%.1:%d+>$")
  u:close()
  local ok, msg, code = sock.dial_tcp("127.0.0.1", closedPort())
  expect.eq(code, "ECONNREFUSED")
  expect.eq(select(3, sock.listen_tcp("192.0.2.1", 0)), "EADDRNOTAVAIL")
end

function TestInfoAndFds()
  local c, a = pair()
  sock.write(a, string.rep("z", 33))
  sleep(0.01)
  local info = sock.info(c)
  expect.eq(info.state, "ESTABLISHED")
  expect.eq(info.recvq, 33, "33 unread bytes in Recv-Q")
  local t = fds()
  local found = 0
  for _, e in ipairs(t) do
    if e.fd == c or e.fd == a then found = found + 1 end
    expect.eq(e.type, "socket")
  end
  expect.eq(found, 2)
  expect.match(tostring(t), "ESTABLISHED")
  local all = fds("all")
  expect.ok(#all > #t, "all adds stdio and the runtime's fds")
  expect.match(tostring(fd(c)), "open file description: flags O_RDWR|O_NONBLOCK|O_CLOEXEC")
  expect.eq(select(3, fd(9999)), "EBADF")
  sock.close(c); sock.close(a)
end

function TestTraceFunction()
  local lines = {}
  trace(function(e) lines[#lines + 1] = e.line end)
  local c = sock.open("tcp")
  sock.connect(c, "127.0.0.1", closedPort())
  sock.close(c)
  sleep(0.05)
  trace(false)
  local joined = table.concat(lines, "\n")
  expect.match(joined, "connect%(" .. c .. "<TCP>, 127%.0%.0%.1:%d+%) = %-1 ECONNREFUSED %(connection refused%)")
  expect.match(joined, "close%(" .. c .. "<TCP>%) = 0")
end

-- trace(false) returns once the calls made before it have reached the
-- function: none is lost to the queue between them.
function TestTraceFalseDeliversWhatCameBefore()
  local n = 0
  trace(function(e) n = n + 1 end)
  for _ = 1, 100 do sock.close(sock.open("udp")) end
  trace(false)
  expect.eq(n, 200, "socket and close events delivered before trace(false) returned")
  sock.close(sock.open("udp"))
  expect.eq(n, 200, "nothing after it")
end
