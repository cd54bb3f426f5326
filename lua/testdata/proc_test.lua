-- proc.run: a program per call, its stdin, env, exit status, time limit.

-- gone reports whether process pid has been reaped: no /proc entry at all
-- (a zombie still has one, in state Z).
local function gone(pid)
  local _, _, code = fs.stat("/proc/" .. pid)
  return code == "ENOENT"
end

local function state(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return "gone" end
  local s = f:read("*a")
  f:close()
  return s:match("%) (%a)") or "?"
end

function TestRunCollectsOutputAndStatus()
  local r = proc.run{argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}}
  expect.eq(r.stdout, "out\n")
  expect.eq(r.stderr, "err\n")
  expect.eq(r.status, 3)
  expect.eq(r.signal, nil)
  expect.eq(r.timed_out, false)
  expect.ok(r.pid > 0)
  expect.ok(gone(r.pid), "the program is reaped")
end

function TestRunStdinAndEnv()
  local r = proc.run{
    argv = {"sh", "-c", "printf '%s|%s|' \"$A\" \"$B\"; cat"},
    env = {A = "one", B = 2},
    stdin = "the body\0with a nul",
  }
  expect.eq(r.status, 0)
  expect.eq(r.stdout, "one|2|the body\0with a nul")
  -- env replaces the whole environment
  local r2 = proc.run{argv = {"/bin/sh", "-c", "echo \"[$HOME]\""}, env = {}}
  expect.eq(r2.stdout, "[]\n")
end

function TestRunLargeStdinNotRead()
  -- the program exits without reading a body bigger than a pipe holds
  local r = proc.run{argv = {"true"}, stdin = string.rep("x", 1048576)}
  expect.eq(r.status, 0)
end

function TestRunDir()
  local r = proc.run{argv = {"pwd"}, dir = "/"}
  expect.eq(r.stdout, "/\n")
end

function TestRunMaxOutput()
  local r = proc.run{argv = {"sh", "-c", "head -c 100000 /dev/zero"}, max_output = 1000}
  expect.eq(#r.stdout, 1000)
  expect.eq(r.truncated, true)
  expect.eq(r.status, 0)
end

function TestRunFailures()
  local ok, msg, code = proc.run{argv = {"/no/such/program"}}
  expect.eq(ok, nil)
  expect.eq(code, "ENOENT")
  expect.match(msg, "/no/such/program")
  ok, msg, code = proc.run{argv = {"no-such-program-anywhere"}}
  expect.eq(code, "ENOENT")
  expect.match(msg, "not found")
  local plain = os.tmpname()
  fs.write(plain, "echo hi\n") -- mode 0644: not executable
  ok, msg, code = proc.run{argv = {plain}}
  expect.eq(code, "EACCES")
  os.remove(plain)
  ok, msg, code = proc.run{argv = {"true"}, dir = "/no/such/dir"}
  expect.eq(ok, nil)
  expect.eq(code, "ENOENT")
end

function TestRunKilledBySignal()
  local r = proc.run{argv = {"sh", "-c", "kill -TERM $$"}}
  expect.eq(r.status, nil)
  expect.eq(r.signal, "SIGTERM")
end

function TestRunTimeoutKillsTheGroup()
  local t0 = time.monotonic()
  -- the shell starts a grandchild; both must die and be reaped
  local r = proc.run{argv = {"sh", "-c", "sleep 30 & echo $!; sleep 30"}, timeout = 0.3}
  local took = time.monotonic() - t0
  expect.eq(r.timed_out, true)
  expect.eq(r.signal, "SIGKILL")
  expect.ok(took < 10, "took " .. took .. " s")
  local grandchild = tonumber(r.stdout:match("%d+"))
  expect.ok(grandchild, "the shell printed its child's pid")
  expect.ok(gone(r.pid), "the program is reaped, state " .. state(r.pid))
  if grandchild then
    expect.ok(gone(grandchild), "the grandchild is reaped, state " .. state(grandchild))
  end
end

function TestRunLeavesNothingBehindAfterNormalExit()
  -- the shell exits at once; its background sleep goes with the group
  local r = proc.run{argv = {"sh", "-c", "sleep 30 & echo $!"}, timeout = 10}
  expect.eq(r.status, 0)
  local bg = tonumber(r.stdout:match("%d+"))
  expect.ok(bg and gone(bg), "background child killed and reaped")
  expect.ok(r.time < 10, "did not wait for the background child")
end

function TestWhatEscapesTheGroupIsReapedWhenItEnds()
  -- setsid leaves the group (as a daemon does): it outlives the run, and
  -- when it exits, sockplay (its subreaper) must reap it, and then what
  -- it started in turn. Each ends when the test makes a file.
  local first, second = os.tmpname(), os.tmpname()
  os.remove(first); os.remove(second)
  local function waitfor(f) return "while [ ! -e " .. f .. " ]; do sleep 0.02; done" end
  local daemon = "(" .. waitfor(second) .. ") >/dev/null 2>&1 & echo $$ $!; exec >/dev/null 2>&1; " .. waitfor(first)
  local r = proc.run{argv = {"sh", "-c", "setsid sh -c '" .. daemon .. "' & sleep 0.1"}, timeout = 10}
  expect.eq(r.status, 0)
  local pids = {}
  for pid in r.stdout:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
  expect.eq(#pids, 2, "the daemon and its child: " .. r.stdout)
  for _, pid in ipairs(pids) do
    expect.ok(not gone(pid), "an escaped process outlives the run")
  end
  for i, file in ipairs({first, second}) do
    assert(io.open(file, "w")):close()
    local pid = pids[i]
    for _ = 1, 250 do
      if not pid or gone(pid) then break end
      sleep(0.02)
    end
    if pid then expect.ok(gone(pid), "exited and reaped, state " .. state(pid)) end
    os.remove(file)
  end
end

function TestKillingTheTaskKillsTheProgram()
  local pidfile = os.tmpname()
  local t = spawn(function()
    return proc.run{argv = {"sh", "-c", "echo $$ > " .. pidfile .. "; exec sleep 30"}}
  end)
  local pid
  for _ = 1, 500 do
    local f = io.open(pidfile)
    local s = f and f:read("*a")
    if f then f:close() end
    local digits = s and s:match("%d+") -- nil until the shell has written it
    pid = digits and tonumber(digits)
    if pid then break end
    sleep(0.01)
  end
  expect.ok(pid, "the program started")
  expect.eq(t.state, "waiting")
  kill(t)
  local ok, _, code = wait(t, 10)
  expect.eq(ok, nil)
  expect.eq(code, "KILLED")
  if pid then expect.ok(gone(pid), "killed and reaped, state " .. state(pid)) end
  os.remove(pidfile)
end

function TestOtherTasksRunMeanwhile()
  local ticks = 0
  local ticker = spawn(function()
    for _ = 1, 5 do sleep(0.01); ticks = ticks + 1 end
  end)
  proc.run{argv = {"sleep", "0.3"}}
  wait(ticker)
  expect.eq(ticks, 5)
end

function TestRunArgumentErrors()
  expect.fails(function() proc.run() end, "bad argument #1 to 'run' %(table expected")
  expect.fails(function() proc.run{} end, "argv must name a program")
  expect.fails(function() proc.run{argv = {}} end, "argv must name a program")
  expect.fails(function() proc.run{argv = {"true", 5}} end, "argv%[2%]: string expected")
  expect.fails(function() proc.run{argv = {"true"}, timeout = "x"} end, "timeout")
  expect.fails(function() proc.run{argv = {"true"}, bogus = 1} end, "unknown field \"bogus\"")
  expect.fails(function() proc.run{argv = {"true"}, env = {["A=B"] = "x"}} end, "bad variable name")
  expect.fails(function() proc.run{argv = {"true"}, env = {A = {}}} end, "string expected")
end

function TestExecutable()
  local p = proc.executable()
  expect.eq(type(p), "string")
  expect.eq(fs.stat(p).executable, true)
end
