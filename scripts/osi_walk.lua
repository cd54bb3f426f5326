-- osi_walk.lua: one HTTP request down the layers and back up, on real packets.
--
-- The OSI model says each layer wraps what the layer above hands it in a
-- header of its own on the way down, and each layer on the receiving side
-- takes its header off again on the way up. This script shows it happen:
-- it captures its own connection (an AF_PACKET socket, so it needs root),
-- sends one GET, and for the request and then the response prints what
-- each layer added on the sending host and what each removed on the
-- receiving host, with the sizes read from the captured frames.
--
--   sockplay scripts/http_server.lua --root scripts/testdata/www --port 8080 &
--   sudo sockplay scripts/osi_walk.lua http://127.0.0.1:8080/notes.txt
--   sudo sockplay scripts/osi_walk.lua --layers http://127.0.0.1:8080/   (every field, byte by byte)

local args = require("args")
local http = require("http")
local format = string.format

local spec = {
  usage = "osi_walk.lua URL [--iface NAME] [--layers] [--timeout S]",
  about = "Send one HTTP request and show each layer's header added on the way down and removed on the way up (needs root).",
  options = {
    {"iface", "lo", "the interface the packets pass"},
    {"layers", false, "also print both packets field by field, with a hex dump"},
    {"timeout", 10, "seconds to wait for the server"},
  },
}
local opt = args.parse(arg, spec)
if #opt._ ~= 1 then args.fail(spec, "one URL expected") end
local u, err = http.parse_url(opt._[1])
if not u then args.fail(spec, err) end
if u.scheme ~= "http" then args.fail(spec, "only http:// URLs: the walk reads HTTP in the clear") end

-- Without a filter a capture keeps the packets of this script's own
-- sockets, whatever else passes on the interface.
local cap, msg, code = capture.open{iface = opt.iface}
if not cap then
  io.stderr:write("osi_walk.lua: " .. msg .. "\n")
  os.exit(1)
end

local c
c, msg, code = sock.dial_tcp(u.host, u.port, opt.timeout)
if not c then args.die(spec, "connect to " .. u.authority, msg, code) end
c:settimeout(opt.timeout)
local fd = c.fd
assert(c:write("GET " .. u.target .. " HTTP/1.1\r\nHost: " .. u.authority ..
  "\r\nUser-Agent: sockplay-osi-walk\r\nConnection: close\r\n\r\n"))
local response, rmsg, rcode = c:read_all()
c:close()
if not response then args.die(spec, "reading the response", rmsg, rcode) end

-- Every packet of the exchange, until none has come for a third of a second.
local pkts = {}
for p in cap:packets(0.3) do pkts[#pkts + 1] = p end
cap:stop()

-- The layers of a packet by level, and the transport's ports.
local function levels(p)
  local by = {}
  for _, l in ipairs(p.layers) do by[l.level] = by[l.level] or l end
  return by
end

local function port(p, which)
  local t = levels(p).transport
  return t and tonumber(t[which .. " port"])
end

-- The request is the first segment with data that goes to the server's
-- port, the response the first that comes from it.
local request, response_pkt, response_segments = nil, nil, 0
for _, p in ipairs(pkts) do
  if levels(p).application then
    if not request and port(p, "destination") == u.port then request = p end
    if port(p, "source") == u.port then
      response_pkt = response_pkt or p
      response_segments = response_segments + 1
    end
  end
end
if not request or not response_pkt then
  io.stderr:write(format("osi_walk.lua: the capture on %s did not see the exchange's data (%d packets); is %s reached through another interface? (--iface)\n",
    opt.iface, #pkts, u.host))
  os.exit(1)
end

-- A few words on what a layer's header says.
local function about(l)
  if l.level == "link" then
    local macs = ""
    if l.source and l.source ~= "00:00:00:00:00:00" then macs = l.source .. " > " .. l.destination .. ", " end
    return format("a frame: %stype %s", macs, l.type or l.protocol or "?")
  elseif l.level == "network" then
    local hops = l.TTL and ("TTL " .. l.TTL) or ("hop limit " .. tostring(l["hop limit"]))
    return format("a packet: %s > %s, %s", l.source, l.destination, hops)
  elseif l.level == "transport" then
    local flags = l.flags and (", " .. l.flags:gsub(" %(.*%)$", "")) or ""
    return format("a %s: ports %s > %s%s", l.name == "TCP" and "segment" or "datagram",
      l["source port"], l["destination port"], flags)
  end
  return l["request line"] or l["status line"] or l.name
end

-- row prints one layer's step: the header it adds or removes, and the size
-- of what the layer below is handed (or what the one above gets).
local function row(level, what, header, total, note)
  local h = header and format("%3d bytes", header) or ""
  local line = format("  %-12s %-18s %9s  %4d bytes  %s", level, what, h, total, note or "")
  print((line:gsub("%s+$", "")))
end

-- walk prints p going down the sender's stack and up the receiver's.
local function walk(p, what, sender, receiver)
  local by = levels(p)
  local app, tr, net, link = by.application, by.transport, by.network, by.link
  local data = app.length
  print(format("%s: %d bytes of %s, down %s:", what, data, app.name, sender))
  row("application", app.name, nil, data, about(app))
  local size = data
  for _, l in ipairs({tr, net, link}) do
    size = size + l.length
    row(l.level, "+ " .. l.name .. " header", l.length, size, about(l))
  end
  print(format("  %-12s %d bytes cross %s%s", "", p.len, opt.iface,
    p.caplen < p.len and format(" (%d captured)", p.caplen) or ""))
  print(format("and up %s:", receiver))
  for _, l in ipairs({link, net, tr}) do
    size = size - l.length
    row(l.level, "- " .. l.name .. " header", l.length, size)
  end
  row("application", app.name, nil, data, "what read() returns")
  print(format("  (%d bytes of headers carried %d bytes of data)", link.length + net.length + tr.length, data))
  if opt.layers then print("\n" .. capture.layer_view(p)) end
end

local function whose(p, fd_key, owner_key, default)
  if p[fd_key] then return format("fd %d (%s)", p[fd_key], p[owner_key]) end
  return default
end

local status = response:match("^[^\r\n]*") or ""
print(format("GET %s from %s: %s, %d bytes; %d packets captured on %s\n",
  u.target, u.authority, status, #response, #pkts, opt.iface))
walk(request, "The request",
  format("this host's stack (%s, %s)", whose(request, "fd", "owner", "fd " .. fd), request.call or "?"),
  format("the server's (%s)", whose(request, "peer_fd", "peer_owner", u.authority)))
print()
local segments = response_segments > 1 and format(" (the first of its %d segments)", response_segments) or ""
walk(response_pkt, "The response" .. segments,
  format("the server's stack (%s)", response_pkt.peer_fd and whose(response_pkt, "fd", "owner") or u.authority),
  format("this host's (%s)", whose(response_pkt, response_pkt.peer_fd and "peer_fd" or "fd",
    response_pkt.peer_fd and "peer_owner" or "owner", "fd " .. fd)))
