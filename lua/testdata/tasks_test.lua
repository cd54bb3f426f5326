-- Tasks and the interpreter lock: every way Lua can wrap a blocking call.

local function pair()
  local l = assert(sock.listen_tcp("127.0.0.1", 0))
  local _, port = l:getsockname()
  local c = assert(sock.dial_tcp("127.0.0.1", port, 5))
  local a = assert(l:accept())
  a:settimeout(5)
  c:settimeout(5)
  l:close()
  return c, a
end

function TestSpawnAndWait()
  local t = spawn(function(a, b) sleep(0.01); return a + b, "x" end, 2, 3)
  local sum, x = wait(t)
  expect.eq(sum, 5)
  expect.eq(x, "x")
  expect.eq(t.state, "done")
end

function TestTaskErrorEndsOnlyThatTask()
  local t = spawn(function() error("boom") end)
  local ok, msg, code = wait(t)
  expect.eq(ok, nil)
  expect.match(msg, "boom")
  expect.eq(code, "ERROR")
end

function TestKillWakesBlockedAccept()
  local l = assert(sock.listen_tcp("127.0.0.1", 0))
  local t = spawn(function() return l:accept() end)
  sleep(0.02)
  expect.eq(t.state, "waiting")
  kill(t)
  local ok, msg, code = wait(t, 5)
  expect.eq(ok, nil)
  expect.eq(code, "KILLED")
  l:close()
end

function TestKillEndsBusyLoop()
  local t = spawn(function() while true do end end)
  sleep(0.01) -- the busy task must let this one run again
  kill(t)
  local ok, _, code = wait(t, 5)
  expect.eq(code, "KILLED")
end

function TestPcallAroundBlockingCall()
  local c, a = pair()
  spawn(function() sleep(0.01); a:write("hi\n") end)
  local ok, line = pcall(function() return c:read_line() end)
  expect.eq(ok, true)
  expect.eq(line, "hi")
  -- an error after a blocking call inside pcall is caught, with its message
  local ok2, err = pcall(function() c:write("x"); error("after") end)
  expect.eq(ok2, false)
  expect.match(err, "after")
  local ok3, err3 = xpcall(function() a:read(1); error({code = 7}) end, function(e) return e end)
  expect.eq(ok3, false)
  expect.eq(err3.code, 7)
  c:close(); a:close()
end

function TestCoroutineAroundBlockingCall()
  local c, a = pair()
  local co = coroutine.create(function()
    a:write("one\n")
    local l1 = c:read_line()
    coroutine.yield(l1)
    a:write("two\n")
    return c:read_line()
  end)
  local ok, v = coroutine.resume(co)
  expect.eq(ok, true); expect.eq(v, "one")
  ok, v = coroutine.resume(co)
  expect.eq(ok, true); expect.eq(v, "two")
  expect.eq(coroutine.status(co), "dead")
  local gen = coroutine.wrap(function() for i = 1, 3 do a:write(i .. "\n"); coroutine.yield(c:read_line()) end end)
  expect.eq(gen(), "1"); expect.eq(gen(), "2"); expect.eq(gen(), "3")
  c:close(); a:close()
end

function TestIteratorAndTailCall()
  local c, a = pair()
  a:write("a\nb\nc\n")
  a:shutdown("w")
  local got = {}
  for line in function() return c:read_line() end do got[#got + 1] = line end
  expect.eq(table.concat(got, ","), "a,b,c")
  local function tail() return sleep(0.001) end
  tail()
  local function tailread() return c:read(1) end
  local v, msg, code = tailread()
  expect.eq(v, nil); expect.eq(code, "EOF")
  c:close(); a:close()
end

function TestServerAndClientInTwoTasks()
  local l = assert(sock.listen_tcp("127.0.0.1", 0))
  local _, port = l:getsockname()
  local server = spawn(function()
    local c = l:accept()
    c:settimeout(5)
    local line = c:read_line()
    c:write(line:upper() .. "\n")
    c:close()
  end)
  local c = assert(sock.dial_tcp("127.0.0.1", port, 5))
  c:write("hello\n")
  expect.eq(c:read_line(), "HELLO")
  expect.eq(select(3, c:read(10)), "EOF")
  wait(server)
  c:close(); l:close()
end

function TestTasksListsWaiting()
  local l = assert(sock.listen_tcp("127.0.0.1", 0))
  local t = spawn(function() l:accept() end)
  sleep(0.02)
  local found
  for _, row in ipairs(tasks()) do
    if row.id == t.id then found = row end
  end
  expect.ok(found, "task listed")
  expect.eq(found.state, "waiting")
  expect.match(found.waiting, "^accept fd %d+")
  kill(t); wait(t)
  l:close()
end

function TestSleepArgument()
  expect.fails(function() sleep(-1) end, "bad argument #1 to 'sleep'")
  expect.fails(function() sleep("x") end, "number expected")
end

function TestSpawnNamed()
  local l = assert(sock.listen_tcp("127.0.0.1", 0))
  local _, port = l:getsockname()
  local t = spawn{function(p, extra)
    local c = assert(sock.dial_tcp("127.0.0.1", p, 5))
    local owner
    for _, row in ipairs(fds()) do
      if row.fd == c.fd then owner = row.owner end
    end
    c:close()
    return owner, extra
  end, port, nil, name = "client fd 9"}
  local a = assert(l:accept())
  local owner, extra = wait(t, 5)
  expect.eq(t.name, "client fd 9")
  expect.match(owner, "%(client fd 9%)$")
  expect.eq(extra, nil)
  a:close()
  l:close()
  expect.fails(function() spawn{name = "x"} end, "function expected")
  expect.fails(function() spawn{function() end, name = 7} end, "string expected")
  expect.fails(function() spawn{function() end, name = "a\nb"} end, "one%-line")
end

function TestOwnerLabelsDoNotNest()
  -- the OWNER column names the variable that holds the socket and the
  -- task that owns it, without a label in parentheses inside another
  local t = spawn{function() held = assert(sock.udp()); sleep(10) end, name = "inner"}
  sleep(0.05)
  local text = tostring(fds())
  expect.match(text, "held, task %d+ %(inner%)")
  expect.ok(not text:find("%([^()]*%(", 1), "a label nests parentheses:\n" .. text)
  kill(t)
  wait(t, 5)
  held:close()
end

-- A task's thread starts with a small registry (the Lua stack) that grows
-- on demand: deep recursion, big unpacks and wide calls all work in a task
-- as in the main chunk, and a blocking call in the middle of a deep stack
-- comes back to the right values.
function TestTaskStackGrows()
  local t = spawn(function()
    local c, a = pair()
    local function deep(n, x1, x2, x3, x4, x5, x6, x7, x8)
      if n == 0 then
        assert(c:write("ping"))
        return a:read(4) .. x8
      end
      local r = deep(n - 1, x1, x2, x3, x4, x5, x6, x7, x8 + 1)
      return r
    end
    local big = {}
    for i = 1, 20000 do big[i] = i end
    local s = select("#", unpack(big))
    local fmt = string.format(string.rep("%d", 200), unpack(big, 1, 200))
    local r = deep(150, 1, 2, 3, 4, 5, 6, 7, 0)
    c:close(); a:close()
    return s, #fmt, r
  end)
  local s, n, r = wait(t)
  expect.eq(s, 20000)
  expect.eq(n, 9 + 90 * 2 + 101 * 3) -- the digits of 1..200
  expect.eq(r, "ping150")
end

-- Kill reaches a task wherever it is inside its own coroutines: blocked in
-- a read, or looping without end (the VM hands out its real Done channel
-- only once the task is cancelled, and to coroutine.create and wrap).
function TestKillInsideCoroutines()
  local c, a = pair()
  local blocked = spawn(function()
    local co = coroutine.create(function() return c:read(1) end)
    return coroutine.resume(co)
  end)
  local wrapped = spawn(function()
    local gen = coroutine.wrap(function() return c:read(1) end)
    return gen()
  end)
  local busy = spawn(function()
    local co = coroutine.wrap(function() while true do end end)
    co()
  end)
  sleep(0.02)
  for _, t in ipairs({blocked, wrapped, busy}) do
    kill(t)
    local ok, _, code = wait(t, 5)
    expect.eq(ok, nil)
    expect.eq(code, "KILLED")
  end
  c:close(); a:close()
end

-- A coroutine made in one task and resumed in another waits as part of the
-- task that resumed it: that task shows as waiting, and killing it ends
-- the wait. The task that made it is not disturbed.
function TestCoroutineResumedByAnotherTask()
  local c, a = pair()
  local co = coroutine.create(function() return c:read(1) end)
  local maker = spawn(function() sleep(5) end)
  local runner = spawn(function() return coroutine.resume(co) end)
  sleep(0.02)
  expect.eq(runner.state, "waiting")
  a:write("x")
  local ok, got = wait(runner, 5)
  expect.eq(ok, true); expect.eq(got, "x")
  local co2 = coroutine.create(function() return c:read(1) end)
  local runner2 = spawn(function() return coroutine.resume(co2) end)
  sleep(0.02)
  kill(runner2)
  local ok2, _, code = wait(runner2, 5)
  expect.eq(ok2, nil); expect.eq(code, "KILLED")
  expect.eq(maker.state, "waiting")
  kill(maker); wait(maker, 5)
  c:close(); a:close()
end

-- A task that never waits does not keep a woken task from running: the
-- interpreter lock goes to the waiting task at the end of the busy one's
-- turn (4096 VM instructions). Counted in iterations of the busy loop, not
-- in time: a turn here is under a thousand iterations, so the reader runs
-- long before the loop's bound, which it would reach if nothing handed the
-- lock over.
function TestBusyTaskLetsWokenTaskRun()
  local c, a = pair()
  local got
  local reader = spawn(function() got = c:read(1) end)
  for _ = 1, 1000 do
    if reader.state == "waiting" then break end
    sleep(0.001)
  end
  expect.eq(reader.state, "waiting")
  a:write("x")
  local i = 0
  while got == nil and i < 20000000 do i = i + 1 end
  expect.eq(got, "x")
  expect.ok(i < 5000000, "the busy loop ran " .. i .. " iterations before the reader got the lock")
  c:close(); a:close()
end

-- A read, recvfrom or accept with something already queued completes
-- without waiting in the poller (sock.info's waits counts the calls that
-- did); one with nothing queued waits, once.
function TestCallsThatNeedNotWaitDoNot()
  local c, a = pair()
  a:write("queued")
  sock.poll({c.fd}, "r", 5) -- readiness, without a read
  expect.eq(c:read(), "queued")
  expect.eq(sock.info(c).waits, 0)
  local u1 = assert(sock.bind_udp("127.0.0.1", 0))
  local u2 = assert(sock.bind_udp("127.0.0.1", 0))
  local h2, p2 = u2:getsockname()
  assert(u1:sendto("d", h2, p2))
  sock.poll({u2.fd}, "r", 5)
  local data, host, port = u2:recvfrom()
  expect.eq(data, "d")
  expect.eq(sock.info(u2).waits, 0)
  expect.eq(sock.info(u1).waits, 0)
  -- The sender's address comes back as the same values every time.
  assert(u1:sendto("e", h2, p2))
  local _, host2, port2 = u2:recvfrom()
  expect.eq(host2, host); expect.eq(port2, port)
  spawn(function() sleep(0.01); a:write("late") end)
  expect.eq(c:read(), "late")
  expect.eq(sock.info(c).waits, 1)
  c:close(); a:close(); u1:close(); u2:close()
end

-- A yield with a Go function between it and its coroutine (pcall here)
-- fails as in Lua 5.1, inside the pcall, instead of breaking the VM; a
-- plain yield still works. coxpcall (Copas) probes exactly this.
function TestYieldAcrossPcallFails()
  local co = coroutine.create(function()
    return pcall(coroutine.yield, "never")
  end)
  local ok, pok, msg = coroutine.resume(co)
  expect.eq(ok, true)
  expect.eq(pok, false)
  expect.match(msg, "attempt to yield across metamethod/C%-call boundary")
  expect.eq(coroutine.status(co), "dead")
  local sorted = coroutine.wrap(function()
    local t = {3, 1, 2}
    return pcall(table.sort, t, function(a, b) coroutine.yield(); return a < b end)
  end)
  local sok, serr = sorted()
  expect.eq(sok, false)
  expect.match(serr, "yield across")
  local plain = coroutine.wrap(function(a)
    local b = coroutine.yield(a + 1)
    return b * 2
  end)
  expect.eq(plain(1), 2)
  expect.eq(plain(5), 10)
end
