-- dns_server.lua: an authoritative DNS server in a few lines. It serves a
-- zone, from a zone file or from the Lua table below, on UDP and TCP of one
-- port, and prints a line for every question.
--
--   sockplay scripts/dns_server.lua --port 5353
--   dig @127.0.0.1 -p 5353 www.example.test
--   dig @127.0.0.1 -p 5353 big.example.test      (truncated over UDP: dig retries over TCP)
--   dig @127.0.0.1 -p 5353 whoami.example.test TXT
--   dig @127.0.0.1 -p 5353 -x 127.0.0.1

local USAGE = [==[
usage: dns_server.lua [--host HOST] [--port PORT] [--zone FILE [--origin NAME]] [--quiet]

Serves the zone example.test (a Lua table in this script), or a zone file,
on UDP and TCP, and prints "listening on HOST:PORT" first.

  --host HOST    the address to listen on (default 127.0.0.1)
  --port PORT    the port; 0 picks a free one (default 0)
  --zone FILE    serve this zone file instead of example.test
  --origin NAME  the zone file's origin when it has no $ORIGIN line
  --quiet        do not print a line per question
  --help         this text

Besides the zone's records it answers, from Lua:
  whoami.<zone> TXT   the address, port and transport the question came from
  PTR questions       for the zone's A and AAAA records (dig -x)]==]

local host, port, zonefile, origin, quiet = "127.0.0.1", 0, nil, nil, false
local i = 1
local function value()
  i = i + 1
  if arg[i] == nil then
    io.stderr:write("dns_server: " .. arg[i - 1] .. " needs a value\n" .. USAGE .. "\n")
    os.exit(1)
  end
  return arg[i]
end
while i <= #arg do
  local a = arg[i]
  if a == "--help" or a == "-h" then
    print(USAGE)
    os.exit(0)
  elseif a == "--host" then
    host = value()
  elseif a == "--port" then
    port = tonumber(value())
  elseif a == "--zone" then
    zonefile = value()
  elseif a == "--origin" then
    origin = value()
  elseif a == "--quiet" then
    quiet = true
  else
    io.stderr:write("dns_server: unknown argument " .. a .. "\n" .. USAGE .. "\n")
    os.exit(1)
  end
  i = i + 1
end
if not port or port < 0 or port > 65535 then
  io.stderr:write("dns_server: --port wants a number from 0 to 65535\n")
  os.exit(1)
end

-- The zone as a Lua table: zone-file lines, or tables with the fields
-- dns.query returns (name, type, ttl, address, exchange, text ...).
local zone = {
  origin = "example.test",
  ttl = 300,
  "@ SOA ns1 hostmaster 1 3600 600 86400 60",
  "@ NS ns1",
  "ns1 A 127.0.0.1",
  "www A 127.0.0.1",
  "www AAAA ::1",
  "alias CNAME www",
  {name = "@", type = "MX", preference = 10, exchange = "mail"},
  "mail A 127.0.0.2",
  {name = "@", type = "TXT", text = "v=spf1 -all"},
  "_sip._tcp SRV 10 5 5060 www",
  '@ CAA 0 issue "ca.example"',
  "*.apps A 127.0.0.3",
}
-- 100 addresses for one name: more than a UDP answer can hold (512 bytes,
-- or dig's 1232 with EDNS0), so clients see TC and ask again over TCP.
for n = 1, 100 do
  zone[#zone + 1] = "big A 10.0.0." .. n
end
local zone_origin = "example.test."

-- PTR answers made from the zone's addresses.
local names_of = {}
for _, rr in ipairs(zone) do
  local owner, rtype, addr
  if type(rr) == "string" then
    owner, rtype, addr = rr:match("^(%S+)%s+(AA?A?A?)%s+(%S+)$")
  end
  if owner and (rtype == "A" or rtype == "AAAA") and owner ~= "big" then
    local full = owner == "@" and zone_origin or owner .. "." .. zone_origin
    names_of[addr] = names_of[addr] or {}
    table.insert(names_of[addr], full)
  end
end

-- in-addr.arpa and ip6.arpa names back to addresses
local function arpa_to_ip(name)
  local v4 = name:lower():match("^(.-)%.in%-addr%.arpa%.$")
  if v4 then
    local o = {}
    for part in v4:gmatch("[^.]+") do table.insert(o, 1, part) end
    return #o == 4 and table.concat(o, ".") or nil
  end
  local v6 = name:lower():match("^(.-)%.ip6%.arpa%.$")
  if v6 then
    local nibbles = {}
    for part in v6:gmatch("[^.]+") do table.insert(nibbles, 1, part) end
    if #nibbles ~= 32 then return nil end
    local groups = {}
    for g = 0, 7 do
      groups[#groups + 1] = table.concat(nibbles, "", g * 4 + 1, g * 4 + 4)
    end
    -- the zone spells IPv6 addresses in their shortest form
    local full = table.concat(groups, ":")
    local ok, addrs = pcall(dns.resolve, full, "inet6")
    return ok and addrs and addrs[1] or full
  end
end

local function handler(req)
  if req.type == "TXT" and req.name:lower() == "whoami." .. zone_origin then
    return {answer = {{type = "TXT", ttl = 0,
      text = req.client .. " port " .. req.client_port .. " over " .. req.transport}}}
  end
  if req.type == "PTR" then
    local ip = arpa_to_ip(req.name)
    local names = ip and names_of[ip]
    if not names then
      return {rcode = "NXDOMAIN"}
    end
    local answer = {}
    for _, n in ipairs(names) do
      answer[#answer + 1] = {type = "PTR", target = n, ttl = 300}
    end
    return {answer = answer}
  end
  -- nil: the zone answers
end

local opts = {host = host, port = port, log = not quiet}
if zonefile then
  opts.zone = zonefile
  opts.origin = origin
else
  opts.zone = zone
  opts.handler = handler
end
local srv, msg = dns.serve(opts)
if not srv then
  io.stderr:write("dns_server: " .. msg .. "\n")
  os.exit(1)
end
print("listening on " .. srv.addr)
io.stdout:flush()
-- The server is a task of its own: the program runs until Ctrl-C.
