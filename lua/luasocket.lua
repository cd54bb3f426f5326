-- sockplay's socket module: socket.core (written in Go) with the helpers
-- LuaSocket's manual lists beside it: connect4, connect6, bind, try,
-- choose, and the LTN12 sources and sinks over sockets.

local core = require("socket.core")
local socket = core

function socket.connect4(address, port, laddress, lport)
  return core.connect(address, port, laddress, lport, "inet")
end

function socket.connect6(address, port, laddress, lport)
  return core.connect(address, port, laddress, lport, "inet6")
end

-- bind(host, port [, backlog]): a server on the first of host's
-- addresses that takes it, with reuseaddr set.
function socket.bind(host, port, backlog)
  if host == "*" then host = "0.0.0.0" end
  local addrs, err = core.dns.getaddrinfo(host)
  if not addrs then return nil, err end
  err = "no info on address"
  for _, a in ipairs(addrs) do
    local s
    if a.family == "inet6" then s, err = core.tcp6() else s, err = core.tcp4() end
    if not s then return nil, err end
    s:setoption("reuseaddr", true)
    local ok
    ok, err = s:bind(a.addr, port)
    if ok then
      ok, err = s:listen(backlog)
      if ok then return s end
    end
    s:close()
  end
  return nil, err
end

socket.try = core.newtry()

-- choose(t) returns a function f(name, ...) that calls t[name](...);
-- without a name it calls t.default.
function socket.choose(t)
  local function call(name, opt1, opt2)
    local f = t[name]
    if not f then error("unknown key (" .. tostring(name) .. ")", 3) end
    return f(opt1, opt2)
  end
  return function(name, opt1, opt2)
    if type(name) ~= "string" then
      return call("default", name, opt1)
    end
    return call(name, opt1, opt2)
  end
end

socket.BLOCKSIZE = 2048

-- Sources and sinks are callable tables that still answer getfd and
-- dirty, so they can be given to socket.select.
local function selectable(s, call)
  return setmetatable({
    getfd = function() return s:getfd() end,
    dirty = function() return s:dirty() end,
  }, {__call = call})
end

socket.sinkt = {
  ["close-when-done"] = function(s)
    return selectable(s, function(_, chunk)
      if chunk == nil then s:close(); return 1 end
      return s:send(chunk)
    end)
  end,
  ["keep-open"] = function(s)
    return selectable(s, function(_, chunk)
      if chunk == nil then return 1 end
      return s:send(chunk)
    end)
  end,
}
socket.sinkt["default"] = socket.sinkt["keep-open"]
socket.sink = socket.choose(socket.sinkt)

socket.sourcet = {
  ["by-length"] = function(s, length)
    return selectable(s, function()
      if length <= 0 then return nil end
      local chunk, err = s:receive(math.min(socket.BLOCKSIZE, length))
      if err then return nil, err end
      length = length - #chunk
      return chunk
    end)
  end,
  ["until-closed"] = function(s)
    local finished = false
    return selectable(s, function()
      if finished then return nil end
      local chunk, err, partial = s:receive(socket.BLOCKSIZE)
      if not err then return chunk end
      if err ~= "closed" then return nil, err end
      s:close()
      finished = true
      return partial
    end)
  end,
}
socket.sourcet["default"] = socket.sourcet["until-closed"]
socket.source = socket.choose(socket.sourcet)

return socket
