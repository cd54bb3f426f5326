-- dns_lookup.lua: a small dig. One question to one server, the answer
-- printed as dig prints it.
--
--   sockplay scripts/dns_lookup.lua www.example.test
--   sockplay scripts/dns_lookup.lua @127.0.0.1 -p 5353 example.test MX +tcp
--   sockplay scripts/dns_lookup.lua -x 127.0.0.1 +short
--
-- With no @server it asks the servers of /etc/resolv.conf, as dig does.

local USAGE = [[
usage: dns_lookup.lua [@server] [-p port] [-x address] [name] [type] [+options]

  @server      the server to ask (an address or a name; host:port works too);
               default: the servers of /etc/resolv.conf
  -p port      the server's port (default 53)
  -x address   reverse lookup: the PTR record of an IPv4 or IPv6 address
  name         the name to look up
  type         A (default), AAAA, CNAME, MX, NS, TXT, SOA, PTR, SRV, CAA, ANY ...
  +tcp         ask over TCP (otherwise UDP, and TCP again when the answer is truncated)
  +short       print only the answers' data
  +dnssec      set the DO bit (asks for signatures)
  +norec       do not ask for recursion (RD off)
  +bufsize=N   advertise an EDNS0 UDP size of N bytes
  +time=S      wait at most S seconds for an answer (default 5)
  --help       this text

Exit status: 0 when a server answered (whatever its status), 9 when none did.]]

local function known_type(s)
  local u = s:upper()
  local types = {
    A = true, AAAA = true, CNAME = true, MX = true, NS = true, TXT = true, SOA = true, PTR = true,
    SRV = true, CAA = true, ANY = true, DS = true, DNSKEY = true, RRSIG = true, NSEC = true,
    NSEC3 = true, HINFO = true, SPF = true, DNAME = true, NAPTR = true, TLSA = true, SSHFP = true,
    HTTPS = true, SVCB = true,
  }
  return types[u] or u:match("^TYPE%d+$") ~= nil
end

local function fail(msg)
  io.stderr:write("dns_lookup: " .. msg .. "\n" .. USAGE .. "\n")
  os.exit(1)
end

local name, qtype, reverse
local opts = {timeout = 5}
local short = false
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--help" or a == "-h" then
    print(USAGE)
    os.exit(0)
  elseif a:sub(1, 1) == "@" then
    opts.server = a:sub(2)
  elseif a == "-p" then
    i = i + 1
    opts.port = tonumber(arg[i]) or fail("-p needs a port number")
  elseif a == "-x" then
    i = i + 1
    reverse = arg[i] or fail("-x needs an address")
  elseif a == "+tcp" or a == "+vc" then
    opts.tcp = true
  elseif a == "+notcp" then
    opts.tcp = false
  elseif a == "+short" then
    short = true
  elseif a == "+dnssec" then
    opts.dnssec = true
  elseif a == "+norec" or a == "+norecurse" then
    opts.rd = false
  elseif a:match("^%+bufsize=") then
    opts.edns = tonumber(a:match("=(.*)")) or fail("bad " .. a)
  elseif a:match("^%+time=") then
    opts.timeout = tonumber(a:match("=(.*)")) or fail("bad " .. a)
  elseif a:sub(1, 1) == "+" or a:sub(1, 1) == "-" then
    fail("unknown option " .. a)
  elseif known_type(a) and not qtype then
    qtype = a -- as dig reads it: a type's name is the type, in any place
  elseif not name then
    name = a
  else
    fail("unexpected argument " .. a)
  end
  i = i + 1
end

if reverse then
  name, qtype = reverse, "PTR"
end
if not name then
  fail("no name to look up")
end
qtype = qtype or "A"

-- A malformed name or an unknown type is a usage error here, not a crash.
local ok, r, msg, code, res = pcall(dns.query, name, qtype, opts)
if not ok then
  local why = tostring(r):match("bad argument #%d+ to 'query' %((.*)%)$")
  if not why then
    error(r, 0) -- not ours to explain (an interrupt, say)
  end
  fail(why)
end

local answer = r or res
if not answer then
  -- nobody answered: dig says so and exits 9
  if code == "ETIMEDOUT" then
    print(";; connection timed out; no servers could be reached")
  else
    print(";; communications error: " .. msg)
  end
  os.exit(9)
end

if short then
  for _, rr in ipairs(answer.answer) do
    print(rr.rdata)
  end
else
  print(answer)
  print()
end
