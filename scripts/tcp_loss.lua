-- tcp_loss.lua: real packet loss in the kernel. TCP recovers, UDP does not.
--
-- On loopback nothing is ever lost, so this script makes a network
-- namespace of its own (its own loopback, nothing else on the machine is
-- touched) and has the kernel drop a fraction of the packets arriving
-- there. The same loss then hits a TCP transfer and a burst of UDP
-- datagrams. TCP notices the gaps and sends the missing segments again
-- (retransmissions): every byte arrives, in order, just later. UDP sends
-- each datagram once; what is dropped is gone.
--
-- Needs root (to create the namespace and its nftables loss rule).
--
--   sockplay scripts/tcp_loss.lua --loss 0.1

local args = require("args")
local spec = {
  usage = "tcp_loss.lua [--loss P] [--kib N] [--datagrams N]",
  about = "Drop a fraction of packets in the kernel and watch TCP recover while UDP loses.",
  options = {
    {"loss", 0.05, "fraction of packets the kernel drops, 0..1"},
    {"kib", 1024, "KiB sent over TCP"},
    {"datagrams", 1000, "UDP datagrams sent"},
  },
}
local opt = args.parse(arg, spec)
if opt.loss < 0 or opt.loss > 1 then args.fail(spec, "--loss must be between 0 and 1") end


local ns, err, code = sock.netns()
if not ns then args.die(spec, "network namespace", err, code) end
local ok
ok, err, code = ns:loss(opt.loss)
if not ok then args.die(spec, "loss rule", err, code) end
print(string.format("kernel drops %g%% of the packets arriving in namespace %s", opt.loss * 100, tostring(ns)))

-- TCP: a listener and a client, both inside the namespace.
local l = assert(ns:open("tcp"))
assert(sock.bind(l, "127.0.0.1", 0))
assert(sock.listen(l))
local _, port = sock.getsockname(l)
local c = assert(ns:open("tcp"))
sock.settimeout(c, 120)
sock.settimeout(l, 120)
local t0 = time.monotonic()
assert(sock.connect(c, "127.0.0.1", port))   -- a lost SYN is sent again too
local a = assert(sock.accept(l))
sock.settimeout(a, 120)

local chunk = string.rep("sockplay", 128)      -- 1 KiB
local data = string.rep(chunk, opt.kib)
local reader = spawn(function() return sock.read_exact(a, #data) end)
assert(sock.write(c, data))
local got = wait(reader)
local elapsed = time.monotonic() - t0
local info = sock.info(c)
print(string.format("TCP  sent %d bytes, received %d, intact and in order: %s, %d segments retransmitted, %.3f s",
  #data, got and #got or 0, tostring(got == data), info.retrans, elapsed))

-- UDP: the same loss, no recovery.
local u1 = assert(ns:open("udp"))
local u2 = assert(ns:open("udp"))
assert(sock.bind(u1, "127.0.0.1", 0))
sock.setopt(u1, "rcvbuf", 8 * 1024 * 1024)     -- count the network's drops, not a full buffer's
local _, uport = sock.getsockname(u1)
for i = 1, opt.datagrams do
  sock.sendto(u2, tostring(i), "127.0.0.1", uport)
end
sock.settimeout(u1, 0.5)
local received = 0
while sock.recvfrom(u1) do received = received + 1 end
print(string.format("UDP  sent %d datagrams, received %d, lost %d (%.1f%%); nothing resends them",
  opt.datagrams, received, opt.datagrams - received, (opt.datagrams - received) * 100 / opt.datagrams))

for _, fd in ipairs({l, c, a, u1, u2}) do sock.close(fd) end
ns:close()
