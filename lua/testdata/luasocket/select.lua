-- socket.select: result shapes over many sockets.
package.path = arg[1] .. "/?.lua;" .. package.path
local socket = require("socket")
local show = require("show")

local srv = assert(socket.bind("127.0.0.1", 0))
local _, port = srv:getsockname()
srv:settimeout(2)
local clients, servers = {}, {}
for i = 1, 30 do
  clients[i] = assert(socket.connect("127.0.0.1", port))
  servers[i] = assert(srv:accept())
end
local r, w, e = socket.select(servers, nil, 0)
show("nothing readable", #r, #w, e)
show("listener readable", #socket.select({srv}, nil, 0))
for _, i in ipairs({4, 11, 27}) do clients[i]:send("ping\n") end
local got = {}
for _ = 1, 50 do
  r = socket.select(servers, nil, 1)
  if #r == 3 then break end
  socket.sleep(0.01)
end
show("three readable", #r)
local idx = {}
for i, s in ipairs(servers) do if r[s] then table.insert(idx, i) end end
show("which", table.concat(idx, ","))
show("array and set", r[r[1]] == 1, r[r[2]] == 2, r[r[3]] == 3)
servers[11]:receive(2)
r = socket.select({servers[1], servers[11]}, nil, 5)
show("dirty first", #r, r[1] == servers[11])
local _, wr = socket.select(nil, {clients[1], clients[2]}, 1)
show("writable", #wr, wr[clients[1]] ~= nil, wr[clients[2]] ~= nil)
show("nil tables", socket.select(nil, nil, 0))
local obj = {getfd = function() return servers[27]:getfd() end}
show("getfd object", socket.select({obj}, nil, 1)[1] == obj)
local closed = socket.tcp()
closed:close()
show("closed left out", socket.select({closed, "str", {}}, nil, 0))
for i = 1, 30 do clients[i]:close(); servers[i]:close() end
srv:close()
