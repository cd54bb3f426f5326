-- Stream versus datagram, asserted exactly: message boundaries, truncation,
-- empty datagrams, how a closed port is reported, and the user-space
-- impairment of UDP (sock.impair) as the descriptor table and the trace
-- show it. Every receive has a timeout, so a lost datagram fails a test
-- instead of hanging it.

local HOST = "127.0.0.1"

local function udp()
  local s = assert(sock.bind_udp(HOST, 0))
  s:settimeout(5)
  local _, port = s:getsockname()
  return s, port
end

local function tcp_pair()
  local l = assert(sock.listen_tcp(HOST, 0))
  local _, port = l:getsockname()
  local c = assert(sock.dial_tcp(HOST, port, 5))
  l:settimeout(5)
  local a = assert(l:accept())
  l:close()
  c:settimeout(5)
  a:settimeout(5)
  return c, a
end

-- closed_port is a port that was bound a moment ago and is free now.
local function closed_port(kind)
  local s = kind == "tcp" and assert(sock.listen_tcp(HOST, 0)) or assert(sock.bind_udp(HOST, 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- read_to_end reads a stream n bytes at a time until end of stream and
-- returns the pieces each read returned.
local function read_to_end(s, n)
  local pieces = {}
  while true do
    local data, msg, code = s:read(n)
    if not data then
      expect.eq(code, "EOF", msg)
      return pieces
    end
    pieces[#pieces + 1] = data
  end
end

function TestUDPKeepsEachDatagram()
  local r, rport = udp()
  local s, sport = udp()
  local msgs = {"one", "two!", "three"}
  for _, m in ipairs(msgs) do expect.eq(s:sendto(m, HOST, rport), #m) end
  -- A buffer big enough for all three still gets one datagram per call.
  for _, m in ipairs(msgs) do
    local data, host, port, full = r:recvfrom(100)
    expect.eq(data, m)
    expect.eq(host, HOST)
    expect.eq(port, sport)
    expect.eq(full, nil, "not truncated: no fourth value")
  end
  -- read on a datagram socket is one datagram too.
  s:sendto("alpha", HOST, rport)
  s:sendto("beta", HOST, rport)
  expect.eq(r:read(100), "alpha")
  expect.eq(r:read(100), "beta")
  r:close()
  s:close()
end

function TestTCPIsAByteStream()
  local c, a = tcp_pair()
  local msgs = {"one", "two!", "three"}
  for _, m in ipairs(msgs) do expect.eq(c:write(m), #m) end
  c:shutdown("w")
  -- The reads may merge the writes (on loopback they usually do): only
  -- the bytes and their order are promised.
  local pieces = read_to_end(a, 100)
  local all = table.concat(pieces)
  expect.eq(all, "onetwo!three")
  expect.eq(#all, 3 + 4 + 5)
  expect.ok(#pieces >= 1 and #pieces <= 3, #pieces .. " reads")

  -- And one write may come back split: no read returns more than asked.
  c, a = tcp_pair()
  expect.eq(c:write("0123456789"), 10)
  c:shutdown("w")
  pieces = read_to_end(a, 4)
  for _, p in ipairs(pieces) do expect.ok(#p >= 1 and #p <= 4, "read(4) returned " .. #p .. " bytes") end
  expect.eq(table.concat(pieces), "0123456789")
  expect.ok(#pieces >= 3, "10 bytes in reads of at most 4 take at least 3")
  c:close()
  a:close()
end

function TestTruncatedDatagram()
  local r, rport = udp()
  local s = udp()
  s:sendto("0123456789", HOST, rport)
  s:sendto("next", HOST, rport)
  local data, host, port, full = r:recvfrom(4)
  expect.eq(data, "0123")
  expect.eq(full, 10, "the datagram's real size")
  -- The rest of a truncated datagram is gone: the next call gets the next one.
  data, host, port, full = r:recvfrom(4)
  expect.eq(data, "next")
  expect.eq(full, nil)
  -- Exactly the buffer's size is not truncated; one byte less is.
  s:sendto("0123456789", HOST, rport)
  data, host, port, full = r:recvfrom(10)
  expect.eq(data, "0123456789")
  expect.eq(full, nil)
  s:sendto("0123456789", HOST, rport)
  data, host, port, full = r:recvfrom(9)
  expect.eq(data, "012345678")
  expect.eq(full, 10)
  -- read(n) hands back what fit, as read(2) does.
  s:sendto("abcdefgh", HOST, rport)
  expect.eq(r:read(4), "abcd")
  r:close()
  s:close()
end

function TestZeroLengthDatagram()
  local r, rport = udp()
  local s, sport = udp()
  expect.eq(s:sendto("", HOST, rport), 0)
  local data, host, port, full = r:recvfrom(100)
  expect.eq(data, "")
  expect.eq(host, HOST)
  expect.eq(port, sport)
  expect.eq(full, nil)
  -- A connected socket's write("") is an empty datagram too.
  assert(s:connect(HOST, rport))
  expect.eq(s:write(""), 0)
  s:write("after")
  expect.eq(r:recvfrom(100), "")
  expect.eq(r:recvfrom(100), "after")
  r:close()
  s:close()

  -- On a stream an empty write sends nothing: the reader sees the end.
  local c, a = tcp_pair()
  expect.eq(c:write(""), 0)
  c:shutdown("w")
  local d, msg, code = a:read(100)
  expect.eq(d, nil)
  expect.eq(code, "EOF", msg)
  c:close()
  a:close()
end

function TestUDPRefusedOnlyWhenConnected()
  local port = closed_port("udp")

  -- Unconnected: sendto works and no error ever comes back; the kernel
  -- does not tell a socket without a peer about an ICMP port unreachable.
  local u = udp()
  expect.eq(u:sendto("hello", HOST, port), 5)
  expect.eq(u:sendto("again", HOST, port), 5)
  u:settimeout(0.2)
  local data, msg, code = u:recvfrom(100)
  expect.eq(data, nil)
  expect.eq(code, "ETIMEDOUT", msg)
  u:close()

  -- Connected, read: connect sends nothing, the first write succeeds, and
  -- the refusal is the error of the next call.
  local c = assert(sock.udp())
  c:settimeout(5)
  expect.eq(c:connect(HOST, port), true)
  expect.eq(c:write("hello"), 5)
  data, msg, code = c:read(100)
  expect.eq(data, nil)
  expect.eq(msg, "connection refused")
  expect.eq(code, "ECONNREFUSED")
  -- Reported once: the socket sends again.
  expect.eq(c:write("again"), 5)
  c:close()

  -- Connected, write: a later write returns the refusal.
  c = assert(sock.udp())
  c:settimeout(5)
  assert(c:connect(HOST, port))
  expect.eq(c:write("hello"), 5)
  local n
  for _ = 1, 100 do
    n, msg, code = c:write("again")
    if not n then break end
    sleep(0.01) -- the ICMP answer is on its way
  end
  expect.eq(n, nil)
  expect.eq(msg, "connection refused")
  expect.eq(code, "ECONNREFUSED")

  -- The same through the fd calls.
  local fd = assert(sock.open("udp"))
  sock.settimeout(fd, 5)
  expect.eq(sock.connect(fd, HOST, port), true)
  expect.eq(sock.write(fd, "hello"), 5)
  data, msg, code = sock.recvfrom(fd, 100)
  expect.eq(data, nil)
  expect.eq(code, "ECONNREFUSED", msg)
  sock.close(fd)
  c:close()
end

function TestTCPRefusedOnConnect()
  local port = closed_port("tcp")
  local c = assert(sock.tcp())
  c:settimeout(5)
  local ok, msg, code = c:connect(HOST, port)
  expect.eq(ok, nil)
  expect.eq(msg, "connection refused")
  expect.eq(code, "ECONNREFUSED")
  c:close()
  local s
  s, msg, code = sock.dial_tcp(HOST, port, 5)
  expect.eq(s, nil)
  expect.eq(code, "ECONNREFUSED", msg)
  local fd = assert(sock.open("tcp"))
  ok, msg, code = sock.connect(fd, HOST, port)
  expect.eq(ok, nil)
  expect.eq(code, "ECONNREFUSED", msg)
  sock.close(fd)
end

-- impaired_exchange sends n numbered datagrams through an impairment and
-- returns the numbers that arrived, in arrival order, and the impairment's
-- own counts. The end marker goes on an unimpaired socket after the
-- impairment's 50 ms reorder hold, so nothing still in flight is missed.
local function impaired_exchange(n, im)
  local r, rport = udp()
  r:setopt("rcvbuf", 1024 * 1024)
  local u = udp()
  local ctl, ctlport = udp()
  expect.eq(u:impair(im), true)
  local reader = spawn(function()
    local got = {}
    while true do
      local data, host, port = r:recvfrom(64)
      if not data then return nil, host, port end
      if port == ctlport then return got end
      got[#got + 1] = tonumber(data)
    end
  end)
  for i = 1, n do
    expect.eq(u:sendto(tostring(i), HOST, rport), #tostring(i))
    if i % 10 == 0 then sleep(0.001) end -- let the reader keep up: no kernel drops
  end
  sleep(0.15)
  local stats = sock.info(u).impair_stats
  ctl:sendto("end", HOST, rport)
  local got, msg, code = wait(reader, 10)
  expect.ok(got, "reader: " .. tostring(msg) .. " " .. tostring(code))
  for _, s in ipairs({r, u, ctl}) do s:close() end
  return got or {}, stats
end

local function between(x, lo, hi, what)
  expect.ok(x >= lo and x <= hi, string.format("%s = %s, want %s..%s", what, tostring(x), lo, hi))
end

function TestImpairmentWithinBounds()
  local n = 400
  local im = {loss = 0.2, duplicate = 0.1, reorder = 0.1, seed = 42}
  local got, stats = impaired_exchange(n, im)
  expect.eq(stats.sent, n)
  between(stats.dropped, 0.1 * n, 0.3 * n, "dropped")
  between(stats.duplicated, 0.03 * n, 0.2 * n, "duplicated")
  between(stats.reordered, 0.03 * n, 0.2 * n, "reordered")
  expect.eq(stats.delayed, 0)

  -- What arrived agrees with what the impairment says it did.
  local seen, unique, late, highest = {}, 0, 0, 0
  for _, seq in ipairs(got) do
    if not seen[seq] then
      seen[seq] = true
      unique = unique + 1
      if seq < highest then late = late + 1 end
    end
    highest = math.max(highest, seq)
  end
  expect.eq(unique, n - stats.dropped, "every datagram not dropped arrived")
  expect.eq(#got, n - stats.dropped + stats.duplicated, "duplicates arrive twice")
  expect.eq(n, #got + (n - unique) - (#got - unique), "sent = received + lost - duplicated")
  between(late, 1, stats.reordered, "arrived out of order")

  -- The same seed makes the same decisions; another seed others.
  local again, stats2 = impaired_exchange(n, im)
  expect.eq(stats2.dropped, stats.dropped)
  expect.eq(stats2.duplicated, stats.duplicated)
  expect.eq(stats2.reordered, stats.reordered)
  table.sort(got)
  table.sort(again)
  expect.eq(table.concat(again, ","), table.concat(got, ","), "same seed, same datagrams arrive")
  local _, stats3 = impaired_exchange(n, {loss = 0.2, duplicate = 0.1, reorder = 0.1, seed = 43})
  expect.ok(stats3.dropped ~= stats.dropped or stats3.duplicated ~= stats.duplicated, "seed 43 decides differently")
end

function TestImpairNilTurnsItOff()
  local r, rport = udp()
  local u = udp()
  expect.eq(u:impair({loss = 1}), true)
  expect.eq(u:sendto("lost", HOST, rport), 4, "a dropped datagram looks sent")
  expect.eq(sock.info(u).impair_stats.dropped, 1)
  expect.eq(sock.info(u).impair, "loss=100% seed=0")
  expect.eq(sock.impair(u.fd, nil), true)
  expect.eq(sock.info(u).impair, nil)
  expect.eq(sock.info(u).impair_stats, nil)
  u:sendto("kept", HOST, rport)
  expect.eq(r:recvfrom(100), "kept", "the first datagram was dropped, the second not")
  r:close()
  u:close()
end

function TestImpairRejectsMistakes()
  local t = assert(sock.tcp())
  expect.fails(function() sock.impair(t, {loss = 0.1}) end, "bad argument #1 to 'impair' %(impairment applies to udp sockets; fd %d+ is tcp%)")
  expect.fails(function() t:impair(nil) end, "applies to udp")
  t:close()
  local u = assert(sock.udp())
  expect.fails(function() u:impair({loss = 1.5}) end, "loss must be between 0 and 1")
  expect.fails(function() u:impair({duplicate = -0.1}) end, "duplicate must be between 0 and 1")
  expect.fails(function() u:impair({lost = 0.5}) end, "unknown field \"lost\"")
  expect.fails(function() u:impair({delay = -1}) end, "must not be negative")
  expect.fails(function() u:impair({loss = "x"}) end, "number expected, got string")
  expect.fails(function() u:impair(5) end, "table or nil expected, got number")
  u:close()
  -- A closed socket is a failure of the world, not a mistake.
  local ok, msg, code = sock.impair(u, {loss = 0.1})
  expect.eq(ok, nil)
  expect.eq(code, "EBADF", msg)
end

-- row returns the line of the rendered descriptor table for fd.
local function row(fd)
  for line in tostring(fds()):gmatch("[^\n]+") do
    if line:match("^" .. fd .. "%s") then return line end
  end
end

function TestFdsShowsImpairment()
  local u = udp()
  local plain = udp()
  expect.eq(u:impair({loss = 0.5, seed = 7}), true)
  expect.match(row(u.fd), "^%d+%s+udp%s+UNCONN %(impaired%)%s")
  expect.eq(row(plain.fd):find("impaired", 1, true), nil)
  local entry
  for _, e in ipairs(fds()) do
    if e.fd == u.fd then entry = e end
  end
  expect.eq(entry and entry.impair, "loss=50% seed=7")
  expect.match(tostring(fd(u.fd)), "impaired: loss=50%% seed=7")
  u:impair(nil)
  expect.eq(row(u.fd):find("impaired", 1, true), nil)
  u:close()
  plain:close()
end

function TestTraceShowsImpairment()
  local events = {}
  trace(function(e) events[#events + 1] = e end)
  local r, rport = udp()
  local u = udp()
  u:impair({loss = 1})
  u:sendto("gone", HOST, rport)
  u:impair({duplicate = 1})
  u:sendto("twice", HOST, rport)
  expect.eq(r:recvfrom(100), "twice")
  expect.eq(r:recvfrom(100), "twice")
  -- Events reach the function through a task of their own: wait for them,
  -- a bounded while.
  local function find(note)
    for _, e in ipairs(events) do
      if e.note == note then return e end
    end
  end
  for _ = 1, 500 do
    if find("dropped by impairment") and find("duplicated by impairment") then break end
    sleep(0.01)
  end
  trace(false)
  local drop = find("dropped by impairment")
  expect.ok(drop, "a trace event for the dropped datagram")
  if drop then
    expect.eq(drop.call, "sendto")
    expect.eq(drop.fd, u.fd)
    expect.eq(drop.data, "gone")
    expect.match(drop.line, "^sendto%(%d+<UDP>, \"gone\", 4%) = 4 %[dropped by impairment%]$")
  end
  local dup = find("duplicated by impairment")
  expect.ok(dup, "a trace event for the duplicate")
  if dup then expect.eq(dup.data, "twice") end
  r:close()
  u:close()
end

function TestTimeModule()
  local wall = time.now()
  expect.ok(math.abs(wall - os.time()) <= 2, "time.now() is the wall clock")
  local a = time.monotonic()
  sleep(0.02)
  local b = time.monotonic()
  expect.ok(b - a >= 0.019, "monotonic advanced " .. (b - a) .. " s over a 0.02 s sleep")
  -- Sub-millisecond resolution: the smallest step seen is far below 1 ms.
  local step = math.huge
  for _ = 1, 10 do
    local x = time.monotonic()
    local y = time.monotonic()
    while y == x do y = time.monotonic() end
    step = math.min(step, y - x)
  end
  expect.ok(step > 0 and step < 0.001, "smallest step " .. step .. " s")
end
