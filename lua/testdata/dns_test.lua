-- The dns module against its own server: dns.serve answers, dns.query asks,
-- both over real sockets on 127.0.0.1. The tests with dnsmasq and dig are
-- in dns_test.go.

local ZONE = {
  origin = "example.test",
  ttl = 300,
  "@ SOA ns1 hostmaster 7 3600 600 86400 60",
  "@ NS ns1",
  "ns1 A 127.0.0.1",
  "www A 127.0.0.1",
  "www AAAA ::1",
  "alias CNAME www",
  {name = "mail", type = "MX", preference = 10, exchange = "mx1"},
  "mx1 A 127.0.0.2",
  {name = "txt", type = "TXT", text = {"hello world", 'a "quote" and a \\'}},
  "_sip._tcp SRV 10 5 5060 www",
  "@ CAA 0 issue \"ca.example\"",
  "*.wild A 10.9.9.9",
  "deep.below.ent A 10.1.1.1",
}

local function serve(extra)
  local opts = {addr = "127.0.0.1:0", zone = ZONE}
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(dns.serve(opts))
end

local function q(srv, name, qtype, opts)
  opts = opts or {}
  opts.server = srv.addr
  opts.timeout = opts.timeout or 5
  return dns.query(name, qtype, opts)
end

function TestQueryEveryType()
  local srv = serve()
  local r = assert(q(srv, "www.example.test", "A"))
  expect.eq(r.rcode, "NOERROR")
  expect.eq(r.flags.qr, true)
  expect.eq(r.flags.aa, true)
  expect.eq(r.flags.tc, false)
  expect.eq(r.transport, "udp")
  expect.eq(r.server, "127.0.0.1")
  expect.eq(r.port, srv.port)
  expect.eq(r.truncated_retry, nil)
  expect.eq(#r.question, 1)
  expect.eq(r.question[1].name, "www.example.test.")
  expect.eq(r.question[1].type, "A")
  expect.eq(#r.answer, 1)
  local a = r.answer[1]
  expect.eq(a.name, "www.example.test.")
  expect.eq(a.type, "A")
  expect.eq(a.class, "IN")
  expect.eq(a.ttl, 300)
  expect.eq(a.address, "127.0.0.1")
  expect.ok(type(r.rtt) == "number" and r.rtt >= 0, "rtt in seconds")
  expect.ok(r.size > 12, "size")

  expect.eq(q(srv, "www.example.test", "aaaa").answer[1].address, "::1")
  local mx = q(srv, "mail.example.test", "MX")
  expect.eq(mx.answer[1].preference, 10)
  expect.eq(mx.answer[1].exchange, "mx1.example.test.")
  expect.eq(mx.additional[1].address, "127.0.0.2", "MX target's address as additional")
  local txt = q(srv, "txt.example.test", "TXT").answer[1]
  expect.eq(txt.text[1], "hello world")
  expect.eq(txt.text[2], 'a "quote" and a \\')
  local soa = q(srv, "example.test", "SOA").answer[1]
  expect.eq(soa.mname, "ns1.example.test.")
  expect.eq(soa.rname, "hostmaster.example.test.")
  expect.eq(soa.serial, 7)
  expect.eq(soa.minimum, 60)
  expect.eq(q(srv, "example.test", "NS").answer[1].target, "ns1.example.test.")
  local srv_rr = q(srv, "_sip._tcp.example.test", "SRV").answer[1]
  expect.eq(srv_rr.priority, 10)
  expect.eq(srv_rr.weight, 5)
  expect.eq(srv_rr.port, 5060)
  expect.eq(srv_rr.target, "www.example.test.")
  local caa = q(srv, "example.test", "CAA").answer[1]
  expect.eq(caa.flag, 0)
  expect.eq(caa.tag, "issue")
  expect.eq(caa.value, "ca.example")
  local cname = q(srv, "alias.example.test", "CNAME").answer[1]
  expect.eq(cname.target, "www.example.test.")
  local rev = assert(dns.serve{addr = "127.0.0.1:0", zone = {origin = "0.0.127.in-addr.arpa", "1 PTR www.example.test."}})
  local ptr = assert(q(rev, "127.0.0.1", "PTR")) -- an address asks for its in-addr.arpa name
  expect.eq(ptr.question[1].name, "1.0.0.127.in-addr.arpa.")
  expect.eq(ptr.answer[1].target, "www.example.test.")
  local names = assert(dns.reverse("127.0.0.1", {server = rev.addr, timeout = 5}))
  expect.eq(names[1], "www.example.test.")
  local _, _, rcode = dns.reverse("127.0.0.2", {server = rev.addr, timeout = 5})
  expect.eq(rcode, "NXDOMAIN")
  rev:close()
  local any = q(srv, "www.example.test", "ANY")
  expect.eq(#any.answer, 2)
  srv:close()
end

function TestCNAMEWildcardAndNodata()
  local srv = serve()
  local r = assert(q(srv, "alias.example.test", "A"))
  expect.eq(#r.answer, 2)
  expect.eq(r.answer[1].type, "CNAME")
  expect.eq(r.answer[2].address, "127.0.0.1")
  local w = assert(q(srv, "a.b.wild.example.test", "A"))
  expect.eq(w.answer[1].name, "a.b.wild.example.test.")
  expect.eq(w.answer[1].address, "10.9.9.9")
  -- NODATA: the name exists, the type does not; the SOA says for how long
  local nd = assert(q(srv, "mx1.example.test", "AAAA"))
  expect.eq(nd.rcode, "NOERROR")
  expect.eq(#nd.answer, 0)
  expect.eq(nd.authority[1].type, "SOA")
  -- an empty non-terminal exists too
  local ent = assert(q(srv, "below.ent.example.test", "A"))
  expect.eq(ent.rcode, "NOERROR")
  srv:close()
end

function TestNXDOMAINAndRefused()
  local srv = serve()
  local r, msg, code, res = q(srv, "nope.example.test", "A")
  expect.eq(r, nil)
  expect.eq(code, "NXDOMAIN")
  expect.match(msg, "nope.example.test. does not exist")
  expect.eq(res.rcode, "NXDOMAIN")
  expect.eq(res.authority[1].type, "SOA", "the answer comes along as the fourth value")
  local r2, msg2, code2 = q(srv, "elsewhere.test", "A")
  expect.eq(r2, nil)
  expect.eq(code2, "REFUSED")
  expect.match(msg2, "refused")
  srv:close()
end

function TestTruncatedAnswerIsAskedAgainOverTCP()
  local big = {origin = "big.test", "@ SOA ns hostmaster 1 3600 600 86400 60"}
  for i = 1, 120 do big[#big + 1] = "many A 10.0.0." .. i end
  local srv = assert(dns.serve{addr = "127.0.0.1:0", zone = big})
  -- plain UDP answers hold 512 bytes: truncated, then asked over TCP
  local r = assert(q(srv, "many.big.test", "A"))
  expect.eq(r.truncated_retry, true)
  expect.eq(r.transport, "tcp")
  expect.eq(r.flags.tc, false)
  expect.eq(#r.answer, 120)
  expect.match(tostring(r), "^;; Truncated, retrying in TCP mode%.")
  -- with a big enough EDNS0 size it fits in one datagram
  local e = assert(q(srv, "many.big.test", "A", {edns = 4096}))
  expect.eq(e.truncated_retry, nil)
  expect.eq(e.transport, "udp")
  expect.eq(#e.answer, 120)
  expect.eq(e.edns.udp_size, 1232, "the server's own EDNS0 size")
  -- +tcp asks over TCP at once
  local t = assert(q(srv, "many.big.test", "A", {tcp = true}))
  expect.eq(t.transport, "tcp")
  expect.eq(t.truncated_retry, nil)
  srv:close()
end

function TestPrintedLikeDig()
  local srv = serve()
  local r = assert(q(srv, "www.example.test", "A", {edns = 1232, dnssec = true}))
  local s = tostring(r)
  expect.match(s, "^;; %->>HEADER<<%- opcode: QUERY, status: NOERROR, id: %d+\n")
  expect.match(s, "\n;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1\n")
  expect.match(s, "\n;; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags: do; udp: 1232\n")
  expect.match(s, "\n;; QUESTION SECTION:\n;www%.example%.test%.\t\tIN\tA\n")
  expect.match(s, "\n;; ANSWER SECTION:\nwww%.example%.test%.\t300\tIN\tA\t127%.0%.0%.1\n")
  expect.match(s, "\n;; Query time: %d+ msec\n")
  expect.match(s, "\n;; SERVER: 127%.0%.0%.1#" .. srv.port .. "%(127%.0%.0%.1%) %(UDP%)\n")
  expect.match(s, "\n;; MSG SIZE  rcvd: %d+$")
  expect.eq(tostring(r.answer[1]), "www.example.test.\t300\tIN\tA\t127.0.0.1")
  srv:close()
end

function TestQueryOptions()
  local srv = serve()
  local r = assert(q(srv, "www.example.test", "A", {rd = false}))
  expect.eq(r.flags.rd, false)
  local c = assert(q(srv, "www.example.test", "A", {server = "127.0.0.1", port = srv.port}))
  expect.eq(c.port, srv.port)
  local ch, _, code = q(srv, "version.bind", "TXT", {class = "CH"})
  expect.eq(code, "REFUSED", "a zone serves class IN only")
  srv:close()
end

function TestArgumentErrorsRaise()
  expect.fails(function() dns.query("a..b", "A") end, "bad argument #1 to 'query' %(malformed domain name")
  expect.fails(function() dns.query("", "A") end, "empty domain name")
  expect.fails(function() dns.query(string.rep("x", 64) .. ".test", "A") end, "malformed")
  expect.fails(function() dns.query("x.test", "NOPE") end, "bad argument #2 to 'query' %(unknown record type \"NOPE\"")
  expect.fails(function() dns.query("x.test", "AXFR") end, "zone transfers")
  expect.fails(function() dns.query("x.test", "A", {tpc = true}) end, "unknown option \"tpc\"")
  expect.fails(function() dns.query("x.test", "A", {timeout = -1}) end, "option \"timeout\"")
  expect.fails(function() dns.query("x.test", "A", {edns = 100}) end, "out of range")
  expect.fails(function() dns.query("x.test", "A", {server = "a..b"}) end, "option \"server\"")
  expect.fails(function() dns.resolve("a..b") end, "bad argument #1 to 'resolve'")
  expect.fails(function() dns.resolve("localhost", "ipx") end, "bad argument #2 to 'resolve'")
  expect.fails(function() dns.reverse("not-an-ip") end, "bad argument #1 to 'reverse'")
  expect.fails(function() dns.serve{} end, "a zone or a handler is needed")
  expect.fails(function() dns.serve{zone = {}, bogus = 1} end, "unknown option \"bogus\"")
  expect.fails(function() dns.serve{zone = {"www A not-an-ip"}} end, "zone: %[1%]")
  expect.fails(function() dns.serve{zone = {{name = "www", type = "A", adress = "1.2.3.4"}}} end, "unknown field \"adress\"")
  expect.fails(function() dns.serve{zone = {{name = "www", type = "AAAA", address = "1.2.3.4"}}} end, "not an IPv6 address")
  expect.fails(function() dns.serve{zone = {origin = "a.test", "www.b.test. A 1.2.3.4"}} end, "outside the zone")
end

function TestTimeoutWhereNothingAnswers()
  -- a UDP socket that never reads: the question goes nowhere
  local silent = assert(sock.bind_udp("127.0.0.1", 0))
  local _, port = silent:getsockname()
  local t0 = os.clock()
  local r, msg, code = dns.query("www.example.test", "A", {server = "127.0.0.1:" .. port, timeout = 0.3})
  expect.eq(r, nil)
  expect.eq(code, "ETIMEDOUT")
  expect.match(msg, "no answer from 127%.0%.0%.1:" .. port .. " over udp within 300ms")
  -- a TCP port that refuses
  local closed = assert(sock.listen_tcp("127.0.0.1", 0))
  local _, cport = closed:getsockname()
  closed:close()
  local r2, msg2, code2 = dns.query("x.test", "A", {server = "127.0.0.1:" .. cport, tcp = true, timeout = 2})
  expect.eq(r2, nil)
  expect.eq(code2, "ECONNREFUSED")
  expect.match(msg2, "refused")
  silent:close()
end

function TestKillWakesAQuery()
  local silent = assert(sock.bind_udp("127.0.0.1", 0))
  local _, port = silent:getsockname()
  local t = spawn(function()
    return dns.query("x.test", "A", {server = "127.0.0.1:" .. port, timeout = 30})
  end)
  sleep(0.05)
  expect.match(t.waiting, "^dns A x%.test%.")
  kill(t)
  local ok, _, code = wait(t, 5)
  expect.eq(code, "KILLED")
  silent:close()
end

function TestHandlerRunsAsATaskAndMayBlock()
  -- The slow question's handler blocks on a socket that only this task
  -- writes to, after the fast question was answered: both handlers must
  -- have run at once.
  local gate = assert(sock.bind_udp("127.0.0.1", 0))
  local _, gport = gate:getsockname()
  gate:settimeout(10)
  local srv = assert(dns.serve{addr = "127.0.0.1:0", handler = function(req)
    if req.name == "slow.test." then
      local word = assert(gate:recvfrom())
      return {answer = {{type = "TXT", text = word .. " " .. req.transport}}}
    elseif req.name == "who.test." then
      return {answer = {{type = "TXT", ttl = 5, text = req.client .. " " .. req.type}}}
    elseif req.name == "nx.test." then
      return {rcode = "NXDOMAIN"}
    elseif req.name == "lines.test." then
      return {answer = {"lines.test. 60 IN A 192.0.2.1", {type = "A", address = "192.0.2.2"}}}
    elseif req.name == "bad.test." then
      return {answer = {{type = "A", address = "nope"}}}
    elseif req.name == "drop.test." then
      return {drop = true}
    end
  end})
  local slow = spawn(function() return q(srv, "slow.test", "TXT", {tcp = true}) end)
  local who = assert(q(srv, "who.test", "TXT"))
  expect.eq(who.answer[1].text[1], "127.0.0.1 TXT")
  expect.eq(who.answer[1].ttl, 5)
  local tx = assert(sock.udp())
  tx:sendto("opened", "127.0.0.1", gport)
  local s = wait(slow, 10)
  expect.eq(s.answer[1].text[1], "opened tcp")
  local _, _, code = q(srv, "nx.test", "A")
  expect.eq(code, "NXDOMAIN")
  local lines = assert(q(srv, "lines.test", "A"))
  expect.eq(lines.answer[1].address, "192.0.2.1")
  expect.eq(lines.answer[2].address, "192.0.2.2")
  expect.eq(lines.answer[2].name, "lines.test.", "the question's name by default")
  -- nil from the handler and no zone: an empty NOERROR answer
  local empty = assert(q(srv, "other.test", "A"))
  expect.eq(#empty.answer, 0)
  -- a handler that fails (here: a bad record) answers SERVFAIL
  local _, _, bcode = q(srv, "bad.test", "A")
  expect.eq(bcode, "SERVFAIL")
  local _, _, dcode = q(srv, "drop.test", "A", {timeout = 0.3})
  expect.eq(dcode, "ETIMEDOUT")
  srv:close()
  gate:close()
  tx:close()
end

function TestHandlerFallsBackToZone()
  local srv = serve{handler = function(req)
    if req.name == "dyn.example.test." then
      return {answer = {{type = "A", address = "10.7.7.7"}}}
    end
  end}
  expect.eq(q(srv, "dyn.example.test", "A").answer[1].address, "10.7.7.7")
  expect.eq(q(srv, "dyn.example.test", "A").answer[1].ttl, 300, "the zone's TTL")
  expect.eq(q(srv, "www.example.test", "A").answer[1].address, "127.0.0.1")
  srv:close()
end

function TestServerSocketsInDescriptorTable()
  local srv = serve()
  local found = {}
  for _, e in ipairs(fds()) do
    if e.lport == srv.port then found[e.kind] = e end
  end
  expect.eq(found.udp.fd, srv.udp_fd)
  expect.eq(found.tcp.fd, srv.tcp_fd)
  expect.eq(found.tcp.state, "LISTEN")
  expect.match(found.udp.owner, "dns%.serve")
  expect.match(tostring(srv), "^<dns server 127%.0%.0%.1:%d+ udp fd=%d+ tcp fd=%d+")
  -- the server is a task that waits (once this task has let it run)
  assert(q(srv, "www.example.test", "A"))
  -- after answering, the server task goes back to its wait: give it up to
  -- two seconds to get there (it runs when this task lets go of the lock)
  for _ = 1, 200 do
    if srv.task.state == "waiting" then break end
    sleep(0.01)
  end
  expect.eq(srv.task.state, "waiting")
  expect.match(srv.task.waiting, "^serve dns on 127%.0%.0%.1:")
  srv:close()
  expect.eq(srv.closed, true)
  for _, e in ipairs(fds()) do
    expect.ne(e.lport, srv.port, "closed sockets are gone")
  end
  wait(srv.task, 5)
  expect.eq(srv.task.state, "done", "the server's task ends with it")
end

function TestKillingTheServerTaskStopsIt()
  local srv = serve()
  kill(srv.task)
  wait(srv.task, 5)
  local r, _, code = q(srv, "www.example.test", "A", {timeout = 0.3, tcp = true})
  expect.eq(code, "ECONNREFUSED")
end

function TestServeOnIPv6Loopback()
  local srv = assert(dns.serve{addr = "[::1]:0", zone = ZONE})
  expect.eq(srv.host, "::1")
  local r = assert(dns.query("www.example.test", "AAAA", {server = srv.addr, timeout = 5}))
  expect.eq(r.server, "::1")
  expect.eq(r.answer[1].address, "::1")
  srv:close()
end

function TestResolveUsesHostsFile()
  -- localhost is in every hosts file (and RFC 6761 makes it loopback when
  -- it is not): no name server is asked
  local addrs = assert(dns.resolve("localhost", "inet"))
  expect.eq(addrs[1], "127.0.0.1")
  local six = assert(dns.resolve("localhost", "inet6"))
  expect.match(six[1], ":")
  expect.eq(dns.resolve("127.0.0.1")[1], "127.0.0.1")
  local _, _, code = dns.resolve("127.0.0.1", "inet6")
  expect.eq(code, "EAI_ADDRFAMILY")
  -- RFC 6761 again: .invalid names never exist, and no server is asked
  local none, msg, icode = dns.resolve("no-such-host.invalid")
  expect.eq(none, nil)
  expect.eq(icode, "EAI_NONAME")
  expect.match(msg, "unknown host no%-such%-host%.invalid")
end

function TestMissingZoneFileIsAFailure()
  local srv, msg, code = dns.serve{zone = "/nonexistent/zone.db"}
  expect.eq(srv, nil)
  expect.eq(code, "ENOENT")
  expect.match(msg, "cannot open zone file")
end

function TestHandlerCallsTakeNoTaskNumbers()
  -- each question runs the handler as a task, but a helper one: the
  -- numbers of the tasks a script starts still go up one by one
  local srv = assert(dns.serve{addr = "127.0.0.1:0", handler = function(req)
    return {answer = {{type = "A", address = "192.0.2.1"}}}
  end})
  for _ = 1, 3 do assert(q(srv, "x.test", "A")) end
  local next = spawn(function() end)
  expect.eq(next.id, srv.task.id + 1)
  wait(next)
  srv:close()
end
