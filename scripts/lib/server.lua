-- server.lua: the listening side that http_server.lua, cors_server.lua and
-- the proxies share: a listening TCP socket, and the loop that accepts
-- connections on it, each served by a task of its own.
--
--   local server = require("server")
--   local listener, host, port = server.listen("my_server.lua", "127.0.0.1", 8080)
--   server.accept_loop(listener, "my_server.lua", serve) -- serve(c, peer_host, peer_port)
--
-- (tcp_echo_server.lua spells out the socket, bind and listen calls that
-- sock.listen_tcp makes here in one.)

local server = {}

-- listen(script, host, port) -> listener, host, port: listens on host:port
-- (the kernel's largest backlog) and prints "listening on HOST:PORT" with the address the
-- kernel gave (the port it chose for port 0). When it cannot, it says why
-- on stderr, as "script: cannot listen on ...", and exits with status 1.
function server.listen(script, host, port)
  local listener, msg, code = sock.listen_tcp(host, port)
  if not listener then
    io.stderr:write(string.format("%s: cannot listen on %s:%d: %s (%s)\n", script, host, port, msg, code))
    os.exit(1)
  end
  local bound_host, bound_port = listener:getsockname()
  print(string.format("listening on %s:%d",
    bound_host:find(":") and "[" .. bound_host .. "]" or bound_host, bound_port))
  return listener, bound_host, bound_port
end

-- accept_loop(listener, script, serve) starts the task "accept HOST:PORT",
-- which accepts connections for ever and serves each in a task named
-- "client fd N" with serve(c, peer_host, peer_port). A Lua error in serve
-- is reported on stderr ("script: PEER: error") and closes the connection;
-- running out of descriptors pauses accepting for a tenth of a second;
-- closing the listener ends the loop.
-- Being a task, it lets sockplay -i bring the REPL up beside the server.
function server.accept_loop(listener, script, serve)
  local host, port = listener:getsockname()
  spawn{function()
    while true do
      local c, peer_host, peer_port = listener:accept()
      if c then
        spawn{function()
          local ok, err = pcall(serve, c, peer_host, peer_port)
          if not ok then
            io.stderr:write(string.format("%s: %s:%d: %s\n", script, peer_host, peer_port, tostring(err)))
            c:close()
          end
        end, name = "client fd " .. c.fd}
      elseif peer_port == "EMFILE" or peer_port == "ENFILE" then
        sleep(0.1)
      elseif peer_port == "EBADF" then
        return -- the listener was closed: the server is done
      end
    end
  end, name = "accept " .. host .. ":" .. port}
end

return server
