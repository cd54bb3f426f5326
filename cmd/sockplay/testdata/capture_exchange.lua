-- A client and a server in one script: what --trace --capture shows.
local l = sock.listen_tcp("127.0.0.1", 0)
local _, port = l:getsockname()
spawn{function()
  local c = l:accept()
  local name = c:read_line()
  c:write("hello " .. name .. "\n")
  c:close()
end, name = "server"}
local c = sock.dial_tcp("127.0.0.1", port)
c:write("world\n")
print(c:read_line())
c:close()
l:close()
