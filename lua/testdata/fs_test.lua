-- fs: stat, lstat, realpath, list, read, write.

local function tempdir()
  local r = assert(proc.run{argv = {"mktemp", "-d"}})
  return (r.stdout:gsub("%s+$", ""))
end

local function rmtree(dir)
  proc.run{argv = {"rm", "-rf", dir}}
end

function TestWriteReadStat()
  local dir = tempdir()
  local p = dir .. "/a.txt"
  expect.eq(fs.write(p, "hello\0world"), true)
  expect.eq(fs.read(p), "hello\0world")
  expect.eq(fs.read(p, 6), "world")
  expect.eq(fs.read(p, 2, 3), "llo")
  expect.eq(fs.read(p, 100, 3), "")
  local st = fs.stat(p)
  expect.eq(st.type, "file")
  expect.eq(st.size, 11)
  expect.eq(st.mode, 420) -- 0644
  expect.eq(st.executable, false)
  expect.ok(math.abs(st.mtime - time.now()) < 60, "mtime is now-ish")
  expect.eq(fs.stat(dir).type, "dir")
  rmtree(dir)
end

function TestFailuresOfTheWorld()
  local dir = tempdir()
  local ok, msg, code = fs.stat(dir .. "/missing")
  expect.eq(ok, nil); expect.eq(code, "ENOENT"); expect.match(msg, "missing")
  ok, msg, code = fs.read(dir)
  expect.eq(code, "EISDIR")
  ok, msg, code = fs.write(dir .. "/no/such/dir/f", "x")
  expect.eq(code, "ENOENT")
  ok, msg, code = fs.list(dir .. "/missing")
  expect.eq(code, "ENOENT")
  fs.write(dir .. "/f", "x")
  ok, msg, code = fs.stat(dir .. "/f/x")
  expect.eq(code, "ENOTDIR")
  rmtree(dir)
end

function TestSymlinksAndRealpath()
  local dir = tempdir()
  fs.write(dir .. "/target", "t")
  proc.run{argv = {"ln", "-s", dir .. "/target", dir .. "/link"}}
  proc.run{argv = {"ln", "-s", "/etc", dir .. "/out"}}
  proc.run{argv = {"ln", "-s", dir .. "/nowhere", dir .. "/dangling"}}
  local real = fs.realpath(dir)
  expect.eq(fs.realpath(dir .. "/link"), real .. "/target")
  expect.eq(fs.realpath(dir .. "/./out/../target"), real .. "/target")
  expect.eq(fs.realpath(dir .. "/out/hostname"), "/etc/hostname")
  local _, _, code = fs.realpath(dir .. "/dangling")
  expect.eq(code, "ENOENT")
  expect.eq(fs.stat(dir .. "/link").type, "file")
  local l = fs.lstat(dir .. "/link")
  expect.eq(l.type, "symlink")
  expect.eq(l.target, dir .. "/target")
  rmtree(dir)
end

function TestList()
  local dir = tempdir()
  fs.write(dir .. "/b.txt", "bb")
  fs.write(dir .. "/a.txt", "a")
  proc.run{argv = {"mkdir", dir .. "/sub"}}
  proc.run{argv = {"ln", "-s", dir .. "/nowhere", dir .. "/dangling"}}
  local names, types = {}, {}
  for _, e in ipairs(fs.list(dir)) do
    names[#names + 1] = e.name
    types[#types + 1] = e.type
  end
  expect.eq(table.concat(names, ","), "a.txt,b.txt,dangling,sub")
  expect.eq(table.concat(types, ","), "file,file,symlink,dir")
  expect.eq(fs.list(dir)[2].size, 2)
  rmtree(dir)
end

function TestArgumentErrors()
  expect.fails(function() fs.stat() end, "bad argument #1 to 'stat'")
  expect.fails(function() fs.read("x", -1) end, "bad argument #2 to 'read' %(offset")
  expect.fails(function() fs.read("x", 0, -1) end, "bad argument #3 to 'read'")
  expect.fails(function() fs.write("x") end, "bad argument #2 to 'write'")
end
