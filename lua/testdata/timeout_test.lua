-- Timeouts and cancellation leave no trace on the next call.

local function pair()
  local l = assert(sock.listen_tcp("127.0.0.1", 0))
  local _, port = l:getsockname()
  local c = assert(sock.dial_tcp("127.0.0.1", port, 5))
  local a = assert(l:accept())
  l:close()
  return c, a
end

function TestTimeoutThenData()
  local c, a = pair()
  c:settimeout(0.02)
  expect.eq(select(3, c:read(1)), "ETIMEDOUT")
  a:write("x")
  sleep(0.01)
  expect.eq(c:read(1), "x", "a timeout that fired does not fail the next read")
  c:settimeout(0.05)
  a:write("y")
  expect.eq(c:read(1), "y")
  sleep(0.08) -- the deadline of the last read has passed, unused
  a:write("z")
  sleep(0.01)
  expect.eq(c:read(1), "z", "a stale deadline does not fail the next read")
  c:settimeout(nil)
  a:write("w")
  expect.eq(c:read(1), "w")
  c:close(); a:close()
end

function TestKilledReaderLeavesSocketUsable()
  local c, a = pair()
  local t = spawn(function() return c:read(1) end)
  sleep(0.02)
  kill(t)
  expect.eq(select(3, wait(t)), "KILLED")
  a:write("after")
  c:settimeout(2)
  expect.eq(c:read(10), "after", "the cancelled wait left no deadline behind")
  c:close(); a:close()
end
