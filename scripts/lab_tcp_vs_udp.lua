-- lab_tcp_vs_udp.lua: the same bad link, under TCP and under UDP.
--
-- Two hosts joined by one link that delays and drops frames both ways, as
-- a long, poor line does (needs root):
--
--   sender 10.0.1.1 ---- delay 50 ms, loss 2% ---- 10.0.1.2 receiver
--
-- TCP sends --kib KiB over one connection. Every --every seconds a line
-- shows what the kernel's TCP_INFO says about it: how much has arrived,
-- the round-trip time it measures (about twice the delay, plus queueing),
-- the congestion window (segments it may have in flight: it grows while
-- nothing is lost and is cut when a loss is noticed) and the segments it
-- has sent again. Every byte arrives, in order; the losses cost time.
--
-- UDP sends --datagrams numbered datagrams over the same link. Nothing
-- resends them: the receiver counts what never came, what came out of
-- order (--reorder) and what came twice (--duplicate).
--
--   sockplay scripts/lab_tcp_vs_udp.lua [--delay 0.05] [--loss 0.02] [--kib 256]

local args = require("args")

local spec = {
  usage = "lab_tcp_vs_udp.lua [--delay S] [--loss P] [options]",
  about = "One link with delay and loss: TCP's RTT, cwnd and retransmissions over time, against UDP's losses.",
  options = {
    {"delay", 0.05, "seconds the link delays each frame, each way"},
    {"jitter", 0, "seconds the delay varies by, either way"},
    {"loss", 0.02, "fraction of frames the link drops, each way"},
    {"duplicate", 0, "fraction of frames the link sends twice"},
    {"reorder", 0, "fraction of frames that overtake the delayed ones"},
    {"rate", "", "the link's rate, as tc writes it (\"10mbit\"); empty: no limit"},
    {"kib", 256, "KiB sent over TCP"},
    {"datagrams", 500, "UDP datagrams sent"},
    {"every", 0.1, "seconds between two lines of the TCP table"},
  },
}
local opt = args.parse(arg, spec)

for _, name in ipairs({"loss", "duplicate", "reorder"}) do
  if opt[name] < 0 or opt[name] > 1 then args.fail(spec, "--" .. name .. " must be between 0 and 1") end
end
if opt.delay < 0 or opt.jitter < 0 then args.fail(spec, "--delay and --jitter must not be negative") end
if opt.kib < 1 or opt.datagrams < 1 or opt.every <= 0 then args.fail(spec, "--kib, --datagrams and --every must be positive") end

local net, msg, code = lab.new()
if not net then args.die(spec, "lab", msg, code) end
local sender, receiver = net:host("sender"), net:host("receiver")
local shape = {delay = opt.delay, jitter = opt.jitter, loss = opt.loss, duplicate = opt.duplicate, reorder = opt.reorder}
if opt.rate ~= "" then shape.rate = opt.rate end
local ok, link = pcall(net.link, net, sender, receiver, shape)
if not ok then args.fail(spec, tostring(link):match("%((.*)%)") or tostring(link)) end
print(string.format("the link: %s each way", tostring(link):match(": (.-) |")))
print()

---------------------------------------------------------------------------
-- TCP

local listener = receiver:call(sock.listen_tcp, "0.0.0.0", 5001)
local total = opt.kib * 1024
local arrived = 0
local reader = receiver:spawn{function()
  local c = listener:accept()
  c:settimeout(120)
  while true do
    local data = c:read(65536)
    if not data then break end
    arrived = arrived + #data
  end
  c:close()
end, name = "tcp receiver"}

local c, err
c, err, code = sender:call(sock.dial_tcp, "receiver", 5001, 30)
if not c then args.die(spec, "connect", err, code) end
c:settimeout(120)
local t0 = time.monotonic()
local writer = sender:spawn{function()
  local chunk = string.rep("0123456789abcdef", 4096) -- 64 KiB
  local left = total
  while left > 0 do
    local n = math.min(left, #chunk)
    assert(c:write(chunk:sub(1, n)))
    left = left - n
  end
  c:shutdown("w")
end, name = "tcp sender"}

print(string.format("TCP: %d KiB from sender to receiver", opt.kib))
print(" time   arrived   rtt      cwnd  retransmitted")
local function row()
  local info = sock.info(c)
  print(string.format("%5.2fs  %5.0f KiB  %6.1fms  %4d  %d", time.monotonic() - t0, arrived / 1024,
    info.rtt * 1000, info.cwnd, info.retrans))
end
local deadline = t0 + 120
while arrived < total and time.monotonic() < deadline do
  row()
  sleep(opt.every)
end
wait(reader)
wait(writer)
local elapsed = time.monotonic() - t0
row()
local info = sock.info(c)
print(string.format("TCP  %d of %d bytes arrived in %.2f s, in order; %d segments retransmitted; rtt %.1f ms for a %g ms delay each way",
  arrived, total, elapsed, info.retrans, info.rtt * 1000, opt.delay * 1000))
c:close()
listener:close()
print()

---------------------------------------------------------------------------
-- UDP

local u = receiver:call(sock.bind_udp, "0.0.0.0", 5002)
u:setopt("rcvbuf", 4 * 1024 * 1024) -- count the link's losses, not a full buffer's
local got, late, twice, seen, highest = 0, 0, 0, {}, 0
local counter = receiver:spawn{function()
  u:settimeout(opt.delay * 2 + opt.jitter * 2 + 1)
  while true do
    local data = u:recvfrom()
    if not data then break end
    local n = tonumber(data:match("^(%d+) "))
    if n then
      if seen[n] then
        twice = twice + 1
      else
        seen[n] = true
        got = got + 1
        if n < highest then late = late + 1 end
        highest = math.max(highest, n)
      end
    end
  end
end, name = "udp receiver"}

local s = sender:call(sock.open, "udp")
local pad = string.rep(".", 1000)
for i = 1, opt.datagrams do
  sock.sendto(s, i .. " " .. pad, "receiver", 5002)
  if i % 50 == 0 then sleep(0.005) end -- a steady pace: the link's queue is not the lesson
end
sock.close(s)
wait(counter)
u:close()
print(string.format("UDP: %d datagrams from sender to receiver", opt.datagrams))
print(string.format("UDP  %d arrived, %d lost (%.1f%%), %d out of order, %d duplicated; nothing resent the lost ones",
  got, opt.datagrams - got, (opt.datagrams - got) * 100 / opt.datagrams, late, twice))
print()
print(net)
net:close()
