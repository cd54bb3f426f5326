-- compare.lua: stream versus datagram, measured side by side.
--
-- The same exchanges run over TCP and over UDP on 127.0.0.1, and one table
-- shows what each did:
--
--   setup         TCP connects first (SYN, SYN-ACK, ACK); UDP just sends.
--   boundaries    TCP is a byte stream: what one write sent, a read may
--                 return merged with the next or split. UDP returns one
--                 datagram per recvfrom, cuts one that does not fit the
--                 buffer, and delivers an empty one.
--   delivery      TCP loses, duplicates and reorders nothing. UDP may do all
--                 three; on loopback it almost never does, so sockplay's
--                 impairment (sock.impair) makes it happen, for UDP only.
--   performance   throughput and round-trip percentiles per message size,
--                 and the largest datagram the kernel accepts.
--   errors        a port nobody listens on: TCP's connect is refused at
--                 once; UDP's first send "works" and only a connected
--                 socket hears about the refusal, on its next call.
--
-- Every number is measured while you wait, and the summary at the end is
-- written from those numbers.
--
--   sockplay scripts/compare.lua
--   sockplay scripts/compare.lua --loss 0.3 --delay 0.01 --jitter 0.005
--   sockplay scripts/compare.lua --count 1000 --sizes 16,1400,32768 --json out.json --svg out.svg

local args = require("args")
local json = require("json")

local spec = {
  usage = "compare.lua [--count N] [--sizes A,B,...] [--loss P] [--duplicate P] [--reorder P] [--delay S] [--jitter S] [--seed N] [--json FILE] [--svg FILE]",
  about = "Run the same exchanges over TCP and UDP on loopback and print them side by side.",
  options = {
    {"count", 300, "messages per exchange (delivery, throughput, round trips)"},
    {"sizes", "64,1024,8192", "message sizes in bytes for throughput and latency"},
    {"loss", 0.1, "UDP impairment: probability that a datagram is dropped"},
    {"duplicate", 0.02, "UDP impairment: probability that a datagram is sent twice"},
    {"reorder", 0.05, "UDP impairment: probability that the next datagram overtakes one"},
    {"delay", 0, "UDP impairment: seconds added to each datagram's trip"},
    {"jitter", 0, "UDP impairment: up to this many seconds more or less delay"},
    {"seed", 42, "impairment seed: the same seed drops the same datagrams"},
    {"json", {}, "also write the results as JSON to this file"},
    {"svg", {}, "also draw them as an SVG chart in this file"},
  },
}
local opt = args.parse(arg, spec)

local function usage_error(msg)
  io.stderr:write("compare.lua: " .. msg .. " (try --help)\n")
  os.exit(2)
end

if #opt._ > 0 then usage_error("unexpected argument '" .. opt._[1] .. "'") end
if opt.count ~= math.floor(opt.count) or opt.count < 1 or opt.count > 100000 then
  usage_error("--count must be a whole number from 1 to 100000")
end
local sizes = {}
for word in opt.sizes:gmatch("[^,%s]+") do
  local n = tonumber(word)
  if not n or n ~= math.floor(n) or n < 1 or n > 65507 then
    usage_error("--sizes: '" .. word .. "' is not a size from 1 to 65507 bytes (the largest UDP datagram)")
  end
  sizes[#sizes + 1] = n
end
if #sizes == 0 then usage_error("--sizes needs at least one size") end
for _, name in ipairs({"loss", "duplicate", "reorder"}) do
  if opt[name] < 0 or opt[name] > 1 then usage_error("--" .. name .. " must be between 0 and 1") end
end
for _, name in ipairs({"delay", "jitter"}) do
  if opt[name] < 0 or opt[name] > 10 then usage_error("--" .. name .. " must be between 0 and 10 seconds") end
end
if opt.seed ~= math.floor(opt.seed) or opt.seed < 0 then usage_error("--seed must be a whole number >= 0") end
local json_file, svg_file = opt.json[#opt.json], opt.svg[#opt.svg]

local HOST = "127.0.0.1"
local TIMEOUT = 5 -- no receive waits longer: a lost datagram never hangs the run
local SETUP_REPS = 20
local clock = time.monotonic
local COUNT = opt.count

-- must returns v, or stops the script with what failed. Everything here
-- runs on loopback, where these calls do not fail unless something is
-- badly wrong (out of fds, say).
local function must(what, v, msg, code)
  if v == nil then error(string.format("compare.lua: %s: %s (%s)", what, tostring(msg), tostring(code)), 0) end
  return v
end

local function pack(...) return {n = select("#", ...), ...} end

-- finish waits for a task and returns what it returned; nil, msg, code
-- (the task failed, or returned a failure) stops the script.
local function finish(what, task)
  local r = pack(wait(task, 2 * TIMEOUT + opt.delay + opt.jitter))
  if r.n >= 2 and r[1] == nil then must(what, nil, r[2], r[3]) end
  return unpack(r, 1, r.n)
end

local function udp_socket()
  local s = must("bind udp", sock.bind_udp(HOST, 0))
  s:settimeout(TIMEOUT)
  local _, port = s:getsockname()
  return s, port
end

local function tcp_pair()
  local l = must("listen", sock.listen_tcp(HOST, 0))
  l:settimeout(TIMEOUT)
  local _, port = l:getsockname()
  local c = must("connect", sock.dial_tcp(HOST, port, TIMEOUT))
  local a = must("accept", l:accept())
  l:close()
  for _, s in ipairs({c, a}) do
    s:settimeout(TIMEOUT)
    s:setopt("nodelay", true) -- each write goes out at once, as a datagram does
  end
  return c, a
end

-- Statistics.

local function sorted(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  return s
end

-- percentile is the nearest-rank percentile p (0..100) of xs.
local function percentile(xs, p)
  if #xs == 0 then return nil end
  local s = sorted(xs)
  return s[math.max(1, math.ceil(p / 100 * #s))]
end

local function median(xs) return percentile(xs, 50) end

local function us(seconds) return seconds and math.floor(seconds * 1e6 + 0.5) end

-- Formatting.

local function fmt_time(seconds)
  if seconds == nil then return "-" end
  if seconds < 1e-3 then return string.format("%d us", us(seconds)) end
  if seconds < 1 then return string.format("%.2f ms", seconds * 1e3) end
  return string.format("%.2f s", seconds)
end

local function fmt_size(n)
  if n >= 1024 * 1024 and n % (1024 * 1024) == 0 then return (n / 1024 / 1024) .. " MiB" end
  if n >= 1024 and n % 1024 == 0 then return (n / 1024) .. " KiB" end
  return n .. " B"
end

local function pct(part, whole)
  if whole == 0 then return 0 end
  return 100 * part / whole
end

local function fmt_pct(x)
  if x == math.floor(x) then return string.format("%d%%", x) end
  return string.format("%.1f%%", x)
end

-- count_of says "1 message", "2 messages".
local function count_of(n, noun)
  return n .. " " .. noun .. (n == 1 and "" or "s")
end

local function list(xs, f)
  local out = {}
  for i, x in ipairs(xs) do out[i] = f and f(x) or tostring(x) end
  return table.concat(out, ", ")
end

-- 1. Setup: what a connection costs before the first byte.

local function measure_setup()
  local l = must("listen", sock.listen_tcp(HOST, 0))
  l:settimeout(TIMEOUT)
  local _, port = l:getsockname()
  local r, rport = udp_socket()
  local tcp = {connect = {}, accept = {}, first = {}}
  local udp = {connect = {}, first = {}}
  for i = 1, SETUP_REPS do
    -- TCP: socket, connect (the handshake), accept, one byte across.
    local t0 = clock()
    local c = must("socket", sock.tcp())
    c:settimeout(TIMEOUT)
    local t1 = clock()
    must("connect", c:connect(HOST, port))
    local t2 = clock()
    -- The kernel finished the handshake without the server's help; accept
    -- only takes the connection off the queue.
    local a = must("accept", l:accept())
    local t3 = clock()
    a:settimeout(TIMEOUT)
    must("write", c:write("x"))
    must("read", a:read(1))
    local t4 = clock()
    tcp.connect[i], tcp.accept[i], tcp.first[i] = t2 - t1, t3 - t2, t4 - t0
    c:close()
    a:close()

    -- UDP: socket, sendto, and the datagram is there.
    t0 = clock()
    local u = must("socket", sock.udp())
    must("sendto", u:sendto("x", HOST, rport))
    must("recvfrom", r:recvfrom(16))
    t1 = clock()
    -- connect on UDP sends nothing; it only records the peer.
    must("connect", u:connect(HOST, rport))
    udp.connect[i], udp.first[i] = clock() - t1, t1 - t0
    u:close()
  end
  l:close()
  r:close()
  return {
    reps = SETUP_REPS,
    tcp = {packets = 3, connect = median(tcp.connect), accept = median(tcp.accept), first_message = median(tcp.first)},
    udp = {packets = 0, connect = median(udp.connect), first_message = median(udp.first)},
  }
end

-- 2. Boundaries: the same messages, and what each receive call returns.

local BOUNDARY_SIZES = {0, 5, 100, 1500, 3000}
local BUFFER = 2048

-- message i is made of one letter (b, c, d ...) so a read shows whose bytes
-- it holds; message 1 is empty.
local function message(i, n) return string.rep(string.char(string.byte("a") + i - 1), n) end

-- pieces says whose bytes a TCP read holds, as {{msg, bytes}, ...}.
local function pieces(data)
  local out, i = json.array(), 1
  while i <= #data do
    local c = data:sub(i, i)
    local j = data:find("[^" .. c .. "]", i) or #data + 1
    out[#out + 1] = {msg = c:byte() - string.byte("a") + 1, bytes = j - i}
    i = j
  end
  return out
end

local function measure_boundaries()
  local res = {sizes = BOUNDARY_SIZES, buffer = BUFFER, tcp = {}, udp = {}}

  -- TCP: write every message, then read until end of stream.
  local c, a = tcp_pair()
  for i, n in ipairs(BOUNDARY_SIZES) do must("write", c:write(message(i, n))) end
  must("shutdown", c:shutdown("w"))
  while true do
    local data, msg, code = a:read(BUFFER)
    if not data then
      if code ~= "EOF" then must("read", nil, msg, code) end
      break
    end
    res.tcp[#res.tcp + 1] = {bytes = #data, pieces = pieces(data)}
  end
  c:close()
  a:close()

  -- UDP: send each message as a datagram, then one recvfrom per datagram.
  local r, rport = udp_socket()
  local u = udp_socket()
  for i, n in ipairs(BOUNDARY_SIZES) do must("sendto", u:sendto(message(i, n), HOST, rport)) end
  for _ = 1, #BOUNDARY_SIZES do
    -- data, host, port, full_size; or nil, msg, code
    local data, msg, code, full = r:recvfrom(BUFFER)
    if not data then
      if code ~= "ETIMEDOUT" then must("recvfrom", nil, msg, code) end
      break -- lost: it happens to UDP, even if hardly ever on loopback
    end
    local d = {bytes = #data, size = full or #data, truncated = full ~= nil}
    if #data > 0 then d.msg = data:byte() - string.byte("a") + 1 end
    res.udp[#res.udp + 1] = d
  end
  u:close()
  r:close()
  return res
end

-- 3. Delivery: numbered messages, counted at the other end.

-- delivery_counts turns the sequence numbers that arrived into the table's
-- counts: sent = received + lost - duplicated.
local function delivery_counts(sent, arrivals)
  local seen, unique, out_of_order, highest = {}, 0, 0, 0
  for _, seq in ipairs(arrivals) do
    if not seen[seq] then
      seen[seq] = true
      unique = unique + 1
      if seq < highest then out_of_order = out_of_order + 1 end
    end
    if seq > highest then highest = seq end
  end
  return {
    sent = sent,
    received = #arrivals,
    lost = sent - unique,
    duplicated = #arrivals - unique,
    out_of_order = out_of_order,
  }
end

-- pace lets the receiving task catch up every few messages. Unpaced, the
-- sender runs far ahead and the transit times measure the queue it built,
-- not the trip.
local function pace(i)
  if i % 10 == 0 then sleep(0.001) end
end

local function measure_delivery()
  local res = {}

  -- TCP: one line per message (a stream needs its own framing); each
  -- carries its number and its send time.
  local c, a = tcp_pair()
  local reader = spawn(function()
    local seqs, transit = {}, {}
    while true do
      local line, msg, code = a:read_line()
      if not line then
        if code == "EOF" then break end
        return nil, msg, code
      end
      local now = clock()
      local seq, sent_at = line:match("^(%d+) (%S+)$")
      seqs[#seqs + 1] = tonumber(seq)
      transit[#transit + 1] = now - tonumber(sent_at)
    end
    return seqs, transit
  end)
  for i = 1, COUNT do
    must("write", c:write(string.format("%d %.6f\n", i, clock())))
    pace(i)
  end
  must("shutdown", c:shutdown("w"))
  local seqs, transit = finish("tcp reader", reader)
  c:close()
  a:close()
  res.tcp = delivery_counts(COUNT, seqs)
  res.tcp.transit_p50, res.tcp.transit_p99 = percentile(transit, 50), percentile(transit, 99)

  -- UDP: the same through an impaired socket. The end marker goes on a
  -- second, unimpaired socket, after every delayed or held-back datagram
  -- has had time to leave.
  local r, rport = udp_socket()
  r:setopt("rcvbuf", 1024 * 1024) -- the kernel may allow less: best effort
  local u = udp_socket()
  local ctl, ctlport = udp_socket()
  local impairment = {loss = opt.loss, duplicate = opt.duplicate, reorder = opt.reorder,
    delay = opt.delay, jitter = opt.jitter, seed = opt.seed}
  must("impair", u:impair(impairment))
  reader = spawn(function()
    local seqs, transit = {}, {}
    local function take(data)
      local now = clock()
      local seq, sent_at = data:match("^(%d+) (%S+)$")
      seqs[#seqs + 1] = tonumber(seq)
      transit[#transit + 1] = now - tonumber(sent_at)
    end
    while true do
      local data, host_or_msg, port_or_code = r:recvfrom(64)
      if not data then return nil, host_or_msg, port_or_code end
      if port_or_code == ctlport then break end
      take(data)
    end
    -- Stragglers still on their way count too: they are late, not lost.
    while #sock.poll({r}, "r", 0.02) > 0 do
      local data = r:recvfrom(64)
      if data then take(data) end
    end
    return seqs, transit
  end)
  for i = 1, COUNT do
    must("sendto", u:sendto(string.format("%d %.6f", i, clock()), HOST, rport))
    pace(i)
  end
  -- 50 ms is how long the impairment holds a datagram back for reordering.
  sleep(opt.delay + opt.jitter + 0.05 + 0.1)
  local stats = sock.info(u).impair_stats
  must("sendto", ctl:sendto("end", HOST, rport))
  seqs, transit = finish("udp reader", reader)
  for _, s in ipairs({r, u, ctl}) do s:close() end
  res.udp = delivery_counts(COUNT, seqs)
  res.udp.transit_p50, res.udp.transit_p99 = percentile(transit, 50), percentile(transit, 99)
  res.udp.impairment = impairment
  res.udp.impairment_did = stats
  -- What left sockplay minus what arrived: the kernel's own drops (a full
  -- receive buffer), not the impairment's.
  res.udp.kernel_lost = math.max(0, stats.sent - stats.dropped + stats.duplicated - res.udp.received)
  return res
end

-- 4. Performance: throughput, round trips, the largest datagram.

-- Throughput is the best of a few rounds: a round is short, and one
-- unlucky pause of the machine would otherwise decide the number.
local ROUNDS = 3

local function tcp_performance(size)
  local c, a = tcp_pair()
  local msg = string.rep("x", size)
  local total = size * COUNT
  local best
  for _ = 1, ROUNDS do
    local sink = spawn(function()
      local got = 0
      while got < total do
        local data, m, code = a:read(65536)
        if not data then return nil, m, code end
        got = got + #data
      end
      return clock()
    end)
    local t0 = clock()
    for _ = 1, COUNT do must("write", c:write(msg)) end
    local seconds = finish("tcp sink", sink) - t0
    best = math.min(best or seconds, seconds)
  end

  local echo = spawn(function()
    while true do
      local data = a:read_exact(size)
      if not data then return end -- end of stream: the client is done
      must("echo", a:write(data))
    end
  end)
  local rtts = {}
  for i = 1, COUNT do
    local t = clock()
    must("write", c:write(msg))
    must("read", c:read_exact(size))
    rtts[i] = clock() - t
  end
  c:shutdown("w")
  finish("tcp echo", echo)
  c:close()
  a:close()
  return {sent = COUNT, delivered = COUNT, bytes = total, seconds = best, rtt = rtts}
end

-- drain discards whatever is queued on a datagram socket.
local function drain(s)
  while #sock.poll({s}, "r", 0) > 0 do s:recvfrom(65536) end
end

local function udp_performance(size)
  local r, rport = udp_socket()
  r:setopt("rcvbuf", 4 * 1024 * 1024) -- best effort: the kernel caps it
  local u = udp_socket()
  local msg = string.rep("x", size)
  local best
  for _ = 1, ROUNDS do
    local sink = spawn(function()
      local got, bytes, last = 0, 0, nil
      r:settimeout(0.5) -- half a second of silence: the rest was dropped
      while got < COUNT do
        local data, m, code = r:recvfrom(65536)
        if not data then
          if code == "ETIMEDOUT" then break end
          return nil, m, code
        end
        if data == "end" then break end
        got, bytes, last = got + 1, bytes + #data, clock()
      end
      r:settimeout(TIMEOUT)
      return got, bytes, last or clock()
    end)
    local t0 = clock()
    for _ = 1, COUNT do must("sendto", u:sendto(msg, HOST, rport)) end
    must("sendto", u:sendto("end", HOST, rport))
    local got, bytes, last = finish("udp sink", sink)
    local round = {delivered = got, bytes = bytes, seconds = last - t0}
    if not best or round.bytes / math.max(round.seconds, 1e-9) > best.bytes / math.max(best.seconds, 1e-9) then
      best = round
    end
    drain(r) -- the end marker, when all the data came first
  end

  local echo = spawn(function()
    while true do
      local data, host, port = r:recvfrom(65536)
      if not data then return end
      r:sendto(data, host, port)
    end
  end)
  local rtts, lost = {}, 0
  u:settimeout(1)
  for _ = 1, COUNT do
    local t = clock()
    must("sendto", u:sendto(msg, HOST, rport))
    local data, m, code = u:recvfrom(65536)
    if data then
      rtts[#rtts + 1] = clock() - t
    elseif code == "ETIMEDOUT" then
      lost = lost + 1
    else
      must("recvfrom", nil, m, code)
    end
  end
  kill(echo)
  wait(echo, TIMEOUT)
  u:close()
  r:close()
  return {sent = COUNT, delivered = best.delivered, bytes = best.bytes, seconds = best.seconds, rtt = rtts, rtt_lost = lost}
end

local function summarize_perf(p)
  local out = {
    sent = p.sent,
    delivered = p.delivered,
    seconds = p.seconds,
    mb_per_s = p.seconds > 0 and p.bytes / p.seconds / 1e6 or 0,
    msgs_per_s = p.seconds > 0 and p.delivered / p.seconds or 0,
    rtt_p50 = percentile(p.rtt, 50),
    rtt_p90 = percentile(p.rtt, 90),
    rtt_p99 = percentile(p.rtt, 99),
  }
  if p.rtt_lost then out.rtt_lost = p.rtt_lost end
  return out
end

-- largest_datagram finds, by halving, the biggest datagram sendto accepts.
local function largest_datagram(kind, host)
  local r = sock.bind_udp(host, 0)
  if not r then return nil end -- no such address here (IPv6 off)
  local _, port = r:getsockname()
  local u = must("socket", sock[kind]())
  u:settimeout(TIMEOUT)
  local ok, hi, err = 0, 65536 * 2, nil
  while hi - ok > 1 do
    local mid = math.floor((ok + hi) / 2)
    local n, msg, code = u:sendto(string.rep("x", mid), host, port)
    if n then
      ok = mid
    elseif code == "EMSGSIZE" then
      hi, err = mid, {code = code, message = msg}
    else
      must("sendto", nil, msg, code)
    end
  end
  u:close()
  r:close()
  return {largest = ok, refused = hi, error = err}
end

local function measure_performance()
  local res = {sizes = sizes, by_size = {}}
  for i, size in ipairs(sizes) do
    res.by_size[i] = {
      size = size,
      tcp = summarize_perf(tcp_performance(size)),
      udp = summarize_perf(udp_performance(size)),
    }
  end
  res.largest_datagram = {ipv4 = largest_datagram("udp", HOST), ipv6 = largest_datagram("udp6", "::1")}
  return res
end

-- 5. The error path: a port nobody listens on.

local function measure_errors()
  local res = {tcp = {}, udp = {}}

  -- A port that was free a moment ago.
  local l = must("listen", sock.listen_tcp(HOST, 0))
  local _, tport = l:getsockname()
  l:close()
  local c = must("socket", sock.tcp())
  c:settimeout(TIMEOUT)
  local t = clock()
  local ok, msg, code = c:connect(HOST, tport)
  res.tcp.connect = {ok = ok == true, code = code, message = msg, seconds = clock() - t}
  c:close()

  local gone = udp_socket()
  local _, uport = gone:getsockname()
  gone:close()

  -- Unconnected: sendto succeeds; the ICMP "port unreachable" that comes
  -- back is not reported to a socket that has no peer.
  local u = udp_socket()
  local n, smsg, scode = u:sendto("hello", HOST, uport)
  res.udp.sendto = {bytes = n, code = scode, message = smsg}
  u:settimeout(0.2)
  local data, rmsg, rcode = u:recvfrom(64)
  res.udp.recvfrom = {bytes = data and #data, code = rcode, message = rmsg, timeout = 0.2}
  u:close()

  -- Connected: connect sends nothing, the first write goes out fine, and
  -- the refusal arrives as the error of the next call.
  local cu = udp_socket()
  ok, msg, code = cu:connect(HOST, uport)
  res.udp.connect = {ok = ok == true, code = code, message = msg}
  n, smsg, scode = cu:write("hello")
  res.udp.write = {bytes = n, code = scode, message = smsg}
  data, rmsg, rcode = cu:read(64)
  res.udp.next_call = {call = "read", bytes = data and #data, code = rcode, message = rmsg}
  -- The error was reported once; the socket is usable again.
  n, smsg, scode = cu:write("again")
  res.udp.write_after = {bytes = n, code = scode, message = smsg}
  cu:close()
  return res
end

-- Run everything.

local result = {
  config = {
    host = HOST, count = COUNT, sizes = sizes,
    loss = opt.loss, duplicate = opt.duplicate, reorder = opt.reorder,
    delay = opt.delay, jitter = opt.jitter, seed = opt.seed,
  },
}
local started = clock()
result.setup = measure_setup()
result.boundaries = measure_boundaries()
result.delivery = measure_delivery()
result.performance = measure_performance()
result.errors = measure_errors()
result.seconds = clock() - started

-- The table.

local rows = {}
local function section(title) rows[#rows + 1] = {title = title} end
local function row(label, tcp, udp) rows[#rows + 1] = {label, tcp, udp} end

local function impairment_text(im)
  local parts = {}
  for _, k in ipairs({"loss", "duplicate", "reorder"}) do
    if im[k] > 0 then parts[#parts + 1] = k .. " " .. fmt_pct(im[k] * 100) end
  end
  if im.delay > 0 then parts[#parts + 1] = "delay " .. fmt_time(im.delay) end
  if im.jitter > 0 then parts[#parts + 1] = "jitter " .. fmt_time(im.jitter) end
  if #parts == 0 then return "none" end
  return table.concat(parts, ", ") .. ", seed " .. im.seed
end

do
  local s = result.setup
  section(string.format("setup (median of %d)", s.reps))
  row("packets before data", "3: SYN, SYN-ACK, ACK", "0: no connection")
  row("connect()", fmt_time(s.tcp.connect) .. " (the handshake)", fmt_time(s.udp.connect) .. " (no packet)")
  row("accept()", fmt_time(s.tcp.accept) .. " (kernel did the work)", "none: one socket, any peer")
  row("socket to 1st message", fmt_time(s.tcp.first_message), fmt_time(s.udp.first_message))
end

do
  local b = result.boundaries
  section(string.format("boundaries (sent %s bytes; %d-byte buffer)", list(b.sizes), b.buffer))
  local tsizes, usizes = {}, {}
  for i, r in ipairs(b.tcp) do tsizes[i] = r.bytes end
  for i, d in ipairs(b.udp) do usizes[i] = d.truncated and string.format("%d (of %d)", d.bytes, d.size) or d.bytes end
  row("receive calls", #b.tcp .. " reads", #b.udp .. " recvfroms")
  row("each returned", list(tsizes), list(usizes))
  -- What the first read holds, message by message: "msgs 2-4, 443 B of 5".
  local holds = "-"
  if b.tcp[1] then
    local whole, parts = {}, {}
    for _, p in ipairs(b.tcp[1].pieces) do
      if p.bytes == b.sizes[p.msg] then
        whole[#whole + 1] = p.msg
      else
        parts[#parts + 1] = string.format("%d B of %d", p.bytes, p.msg)
      end
    end
    local noun = #whole == 1 and "msg " or "msgs "
    if #whole > 2 and whole[#whole] - whole[1] == #whole - 1 then
      whole = {whole[1] .. "-" .. whole[#whole]}
    end
    if #whole > 0 then table.insert(parts, 1, noun .. list(whole)) end
    holds = "read 1 = " .. table.concat(parts, ", ")
  end
  row("message edges", "gone: " .. holds, "kept: 1 datagram per call")
  local empty, big = "-", "-"
  for _, d in ipairs(b.udp) do
    if d.size == 0 then empty = "delivered: recvfrom gave \"\"" end
    if d.truncated then big = string.format("cut to %d of %d; rest gone", d.bytes, d.size) end
  end
  row("empty message", "write(\"\") sends nothing", empty)
  row("message > buffer", "split across reads", big)
end

do
  local d = result.delivery
  section(string.format("delivery (UDP impaired: %s)", impairment_text(d.udp.impairment)))
  row("sent", d.tcp.sent, d.udp.sent)
  row("received", d.tcp.received, d.udp.received)
  row("lost", d.tcp.lost, d.udp.lost)
  row("duplicated", d.tcp.duplicated, d.udp.duplicated)
  row("out of order", d.tcp.out_of_order, d.udp.out_of_order)
  row("transit p50 / p99", fmt_time(d.tcp.transit_p50) .. " / " .. fmt_time(d.tcp.transit_p99),
    fmt_time(d.udp.transit_p50) .. " / " .. fmt_time(d.udp.transit_p99))
end

do
  local p = result.performance
  section(string.format("performance (%s per size, best of %d; no impairment)", count_of(COUNT, "message"), ROUNDS))
  for _, s in ipairs(p.by_size) do
    local function tput(x)
      local text = string.format("%.1f MB/s", x.mb_per_s)
      if x.delivered < x.sent then text = text .. string.format(" (%d/%d arrived)", x.delivered, x.sent) end
      return text
    end
    local function rtt(x)
      local text = string.format("%s / %s / %s", fmt_time(x.rtt_p50), fmt_time(x.rtt_p90), fmt_time(x.rtt_p99))
      if x.rtt_lost and x.rtt_lost > 0 then text = text .. string.format(" (%d lost)", x.rtt_lost) end
      return text
    end
    row(fmt_size(s.size) .. " throughput", tput(s.tcp), tput(s.udp))
    row(fmt_size(s.size) .. " rtt p50/90/99", rtt(s.tcp), rtt(s.udp))
  end
  local function largest(l)
    if not l then return "no ::1 here" end
    return string.format("%d B (%d: %s)", l.largest, l.refused, l.error and l.error.code or "?")
  end
  row("largest message", "no limit: a stream", "IPv4 " .. largest(p.largest_datagram.ipv4))
  row("", "", "IPv6 " .. largest(p.largest_datagram.ipv6))
end

do
  local e = result.errors
  local function outcome(x)
    if x.code then return x.code end
    return x.bytes and (x.bytes .. " bytes, no error") or "ok"
  end
  section("errors (a port nobody listens on)")
  row("connect()", string.format("%s after %s", outcome(e.tcp.connect), fmt_time(e.tcp.connect.seconds)),
    e.udp.connect.ok and "ok: no packet sent" or outcome(e.udp.connect))
  row("first send", "never: not connected", "write: " .. outcome(e.udp.write))
  row("next call", "-", e.udp.next_call.call .. ": " .. outcome(e.udp.next_call))
  row("unconnected sendto", "-", "sendto: " .. outcome(e.udp.sendto) .. ";")
  row("", "", "recvfrom: " .. outcome(e.udp.recvfrom) .. " (error unseen)")
end

-- width counts characters, not bytes.
local function width(s) return #(s:gsub("[\128-\191]", "")) end
local function pad(s, w) return s .. string.rep(" ", w - width(s)) end

local function render_table()
  local w = {0, 0}
  for _, r in ipairs(rows) do
    if not r.title then
      for i = 1, 2 do w[i] = math.max(w[i], width(tostring(r[i]))) end
    end
  end
  local out = {pad("", w[1] + 4) .. pad("TCP", w[2] + 2) .. "UDP"}
  for _, r in ipairs(rows) do
    if r.title then
      out[#out + 1] = r.title
    else
      local line = "  " .. pad(tostring(r[1]), w[1] + 2) .. pad(tostring(r[2]), w[2] + 2) .. tostring(r[3])
      out[#out + 1] = (line:gsub("%s+$", ""))
    end
  end
  return table.concat(out, "\n")
end

-- The summary, from the numbers above.

local function summary()
  local lines = {}
  local function say(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
  local s, b, d, p, e = result.setup, result.boundaries, result.delivery, result.performance, result.errors

  say("Setup: TCP spent %s in connect() on a handshake of 3 packets before it could send; UDP sent at once, so its first message arrived %s after socket() against TCP's %s.",
    fmt_time(s.tcp.connect), fmt_time(s.udp.first_message), fmt_time(s.tcp.first_message))

  local total = 0
  for _, n in ipairs(b.sizes) do total = total + n end
  local truncated, empty = 0, 0
  for _, x in ipairs(b.udp) do
    if x.truncated then truncated = truncated + 1 end
    if x.size == 0 then empty = empty + 1 end
  end
  say("Boundaries: TCP returned the %d messages (%d bytes) in %d reads that ignore where one message ends; UDP returned %d datagrams in %d recvfrom calls, %d cut to fit the buffer and %d empty.",
    #b.sizes, total, #b.tcp, #b.udp, #b.udp, truncated, empty)

  local u, t = d.udp, d.tcp
  local tcp_clean = t.lost == 0 and t.duplicated == 0 and t.out_of_order == 0 and t.received == t.sent
  local tcp_text = tcp_clean and string.format("TCP delivered all %d, once each, in order", t.sent)
    or string.format("TCP received %d of %d (lost %d, duplicated %d, out of order %d)", t.received, t.sent, t.lost, t.duplicated, t.out_of_order)
  if u.lost + u.duplicated + u.out_of_order == 0 then
    say("Delivery: UDP lost, duplicated and reordered nothing (impairment: %s): on loopback that is the rule, which is why --loss exists; %s.",
      impairment_text(u.impairment), tcp_text)
  else
    local why = ""
    if u.kernel_lost > 0 then
      why = string.format(", %d of them dropped by the kernel (receive buffer full) rather than the impairment", u.kernel_lost)
    end
    say("Delivery: UDP lost %d of %s (%s; loss set to %s)%s, duplicated %d (set to %s) and delivered %d out of order; %s.",
      u.lost, count_of(u.sent, "datagram"), fmt_pct(math.floor(pct(u.lost, u.sent) * 10 + 0.5) / 10), fmt_pct(u.impairment.loss * 100), why,
      u.duplicated, fmt_pct(u.impairment.duplicate * 100), u.out_of_order, tcp_text)
  end
  if u.impairment.delay > 0 or u.impairment.jitter > 0 then
    say("Delay: the median UDP datagram took %s to arrive against TCP's %s (delay set to %s, jitter %s); datagrams that drew less delay overtook earlier ones.",
      fmt_time(u.transit_p50), fmt_time(t.transit_p50), fmt_time(u.impairment.delay), fmt_time(u.impairment.jitter))
  end

  for _, x in ipairs(p.by_size) do
    local verdict = "about the same"
    local a, c = x.tcp.rtt_p50, x.udp.rtt_p50
    if a and c and c * 1.25 < a then
      verdict = string.format("UDP %.1fx quicker", a / c)
    elseif a and c and a * 1.25 < c then
      verdict = string.format("TCP %.1fx quicker", c / a)
    end
    local drops = ""
    if x.udp.delivered < x.udp.sent then
      drops = string.format("; %d of UDP's %d datagrams never arrived: UDP has no flow control, so a fast sender overruns the receiver's buffer",
        x.udp.sent - x.udp.delivered, x.udp.sent)
    end
    say("At %s per message: TCP moved %.1f MB/s and UDP %.1f MB/s; the median round trip took %s over TCP and %s over UDP, %s%s.",
      fmt_size(x.size), x.tcp.mb_per_s, x.udp.mb_per_s, fmt_time(a), fmt_time(c), verdict, drops)
  end
  local small = p.by_size[1]
  for _, x in ipairs(p.by_size) do
    if x.size < small.size then small = x end
  end
  if small.tcp.mb_per_s > small.udp.mb_per_s * 1.25 then
    say("TCP outran UDP at %s: its reader takes many messages in one read (%d reads carried the %d boundary messages above), while UDP costs a recvfrom per datagram.",
      fmt_size(small.size), #b.tcp, #b.sizes)
  end
  say("On loopback there is no distance and no loss, so TCP's extra work (acknowledgements, ordering, flow control) costs little. These times include sockplay's own overhead (Lua, task switches): compare the columns with each other, not with other tools.")
  local l4 = p.largest_datagram.ipv4
  say("Size: the largest UDP datagram over IPv4 is %d bytes (65535 minus the IP and UDP headers); %d bytes gave %s. TCP has no message size: a write of any length becomes part of the stream.",
    l4.largest, l4.refused, l4.error and l4.error.code or "?")

  say("Errors: TCP's connect to a closed port failed with %s after %s (the SYN was answered by a reset). UDP's sendto there returned %s; only the connected socket heard of the refusal, as %s on its next call (%s).",
    tostring(e.tcp.connect.code), fmt_time(e.tcp.connect.seconds), e.udp.sendto.bytes and (e.udp.sendto.bytes .. " bytes, no error") or tostring(e.udp.sendto.code),
    tostring(e.udp.next_call.code), e.udp.next_call.call)
  return lines
end

local function wrap(text, indent, limit)
  local out, line = {}, ""
  for word in text:gmatch("%S+") do
    if line ~= "" and width(line) + 1 + width(word) > limit then
      out[#out + 1] = line
      line = indent .. word
    else
      line = line == "" and word or line .. " " .. word
    end
  end
  out[#out + 1] = line
  return table.concat(out, "\n")
end

result.summary = summary()
print(string.format("TCP versus UDP on %s: %s, sizes %s", HOST, count_of(COUNT, "message"), list(sizes)))
print()
print(render_table())
print()
print("summary")
for _, line in ipairs(result.summary) do print(wrap("- " .. line, "  ", 78)) end

-- JSON and SVG.

local function write_file(path, text, what)
  local f, err = io.open(path, "w")
  if not f then
    io.stderr:write(string.format("compare.lua: cannot write %s: %s\n", what, tostring(err)))
    os.exit(1)
  end
  f:write(text)
  f:close()
end

if json_file then
  -- Durations in JSON are in seconds; the rows above are the same numbers.
  result.table = {}
  for _, r in ipairs(rows) do
    if r.title then
      result.table[#result.table + 1] = {section = r.title}
    else
      result.table[#result.table + 1] = {label = r[1], tcp = tostring(r[2]), udp = tostring(r[3])}
    end
  end
  write_file(json_file, json.encode(result, "  ") .. "\n", "the JSON")
  print("\nwrote " .. json_file)
end

local function svg_escape(s)
  return (tostring(s):gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;"}))
end

local TCP_COLOR, UDP_COLOR = "#2b6cb0", "#dd6b20"

-- nice_max rounds a maximum up to 1, 2 or 5 times a power of ten.
local function nice_max(x)
  if x <= 0 then return 1 end
  local p = 10 ^ math.floor(math.log10(x))
  for _, m in ipairs({1, 2, 5, 10}) do
    if x <= m * p then return m * p end
  end
  return 10 * p
end

-- bars draws a grouped bar chart (TCP and UDP side by side per group) in
-- the box x, y, w, h; groups[i] = {label, tcp, udp [, tcp_hi, udp_hi]}
-- where *_hi, when given, is drawn as a whisker above the bar.
local function bars(out, x, y, w, h, title, groups, fmt)
  local top = 0
  for _, g in ipairs(groups) do top = math.max(top, g[2] or 0, g[3] or 0, g[4] or 0, g[5] or 0) end
  top = nice_max(top)
  local add = function(s) out[#out + 1] = s end
  add(string.format('<text x="%d" y="%d" class="title">%s</text>', x, y - 8, svg_escape(title)))
  local px, py, pw, ph = x + 50, y + 10, w - 60, h - 45
  for i = 0, 4 do
    local v = top * i / 4
    local gy = py + ph - ph * i / 4
    add(string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>', px, gy, px + pw, gy))
    add(string.format('<text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>', px - 4, gy + 4, svg_escape(fmt(v))))
  end
  local gw = pw / #groups
  local bw = math.min(40, gw * 0.35)
  for i, g in ipairs(groups) do
    local gx = px + gw * (i - 1) + gw / 2
    for j, color in ipairs({TCP_COLOR, UDP_COLOR}) do
      local v = g[j + 1] or 0
      local bh = ph * v / top
      local bx = gx - bw + (j - 1) * bw
      add(string.format('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>', bx + 1, py + ph - bh, bw - 2, bh, color))
      local hi = g[j + 3]
      local label_y = py + ph - bh - 4
      if hi then
        local hy = py + ph - ph * hi / top
        add(string.format('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="whisker"/>', bx + bw / 2, py + ph - bh, bx + bw / 2, hy))
        add(string.format('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="whisker"/>', bx + bw / 2 - 5, hy, bx + bw / 2 + 5, hy))
        label_y = math.min(label_y, hy - 4)
      end
      add(string.format('<text x="%.1f" y="%.1f" class="value" text-anchor="middle">%s</text>', bx + bw / 2, label_y, svg_escape(fmt(v))))
    end
    add(string.format('<text x="%.1f" y="%d" class="label" text-anchor="middle">%s</text>', gx, py + ph + 16, svg_escape(g[1])))
  end
  add(string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" class="baseline"/>', px, py + ph, px + pw, py + ph))
end

-- strips draws the boundaries: the messages as sent, then what each TCP
-- read and each UDP recvfrom returned, with widths in proportion to bytes.
local function strips(out, x, y, w, b)
  local add = function(s) out[#out + 1] = s end
  local total = 0
  for _, n in ipairs(b.sizes) do total = total + n end
  local scale = (w - 130) / total
  local shades = {"#718096", "#a0aec0"}
  local function strip(row, label, segments, color)
    local sy = y + 12 + row * 34
    add(string.format('<text x="%d" y="%d" class="label">%s</text>', x, sy + 15, svg_escape(label)))
    local sx = x + 125
    for i, seg in ipairs(segments) do
      local sw = seg.bytes * scale
      local fill = color or shades[i % 2 + 1]
      if seg.bytes == 0 then
        add(string.format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="3"/>', sx + 1, sy - 2, sx + 1, sy + 24, fill))
        add(string.format('<text x="%.1f" y="%d" class="tiny">0</text>', sx + 4, sy - 3))
        sx = sx + 6
      else
        add(string.format('<rect x="%.1f" y="%d" width="%.1f" height="22" fill="%s" stroke="#fff"/>', sx, sy, sw, fill))
        if sw > 30 then
          add(string.format('<text x="%.1f" y="%d" class="inbar" text-anchor="middle">%d</text>', sx + sw / 2, sy + 15, seg.bytes))
        end
        sx = sx + sw
        if seg.cut and seg.cut > 0 then
          local cw = seg.cut * scale
          add(string.format('<rect x="%.1f" y="%d" width="%.1f" height="22" fill="none" stroke="%s" stroke-dasharray="4,3"/>', sx, sy, cw, fill))
          add(string.format('<text x="%.1f" y="%d" class="tiny" text-anchor="middle">%d B cut off</text>', sx + cw / 2, sy + 15, seg.cut))
          sx = sx + cw
        end
      end
    end
  end
  local sent = {}
  for i, n in ipairs(b.sizes) do sent[i] = {bytes = n} end
  strip(0, "sent (messages)", sent)
  strip(1, "TCP reads", b.tcp, TCP_COLOR)
  local udp = {}
  for i, d in ipairs(b.udp) do udp[i] = {bytes = d.bytes, cut = d.size - d.bytes} end
  strip(2, "UDP recvfroms", udp, UDP_COLOR)
end

local function render_svg()
  local W, H = 960, 800
  local out = {}
  local add = function(s) out[#out + 1] = s end
  add(string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">', W, H, W, H))
  add('<style>text{font-family:sans-serif;fill:#1a202c} .title{font-size:15px;font-weight:bold} .axis{font-size:11px;fill:#4a5568} .value{font-size:11px} .label{font-size:12px} .tiny{font-size:10px;fill:#4a5568} .inbar{font-size:11px;fill:#fff} .grid{stroke:#e2e8f0} .baseline{stroke:#4a5568} .whisker{stroke:#1a202c;stroke-width:1.5}</style>')
  add(string.format('<rect width="%d" height="%d" fill="#fff"/>', W, H))
  add(string.format('<text x="20" y="30" style="font-size:20px;font-weight:bold">TCP versus UDP on %s</text>', HOST))
  add(string.format('<text x="20" y="50" class="label">%s; UDP impairment: %s</text>', count_of(COUNT, "message"), svg_escape(impairment_text(result.delivery.udp.impairment))))
  -- legend
  add(string.format('<rect x="%d" y="18" width="14" height="14" fill="%s"/><text x="%d" y="30" class="label">TCP</text>', W - 160, TCP_COLOR, W - 140))
  add(string.format('<rect x="%d" y="18" width="14" height="14" fill="%s"/><text x="%d" y="30" class="label">UDP</text>', W - 90, UDP_COLOR, W - 70))

  local d = result.delivery
  bars(out, 20, 95, 450, 250, "Delivery (messages)", {
    {"sent", d.tcp.sent, d.udp.sent},
    {"received", d.tcp.received, d.udp.received},
    {"lost", d.tcp.lost, d.udp.lost},
    {"duplicated", d.tcp.duplicated, d.udp.duplicated},
    {"out of order", d.tcp.out_of_order, d.udp.out_of_order},
  }, function(v) return string.format("%d", math.floor(v + 0.5)) end)

  local tput = {}
  for i, s in ipairs(result.performance.by_size) do tput[i] = {fmt_size(s.size), s.tcp.mb_per_s, s.udp.mb_per_s} end
  bars(out, 490, 95, 450, 250, "Throughput (MB/s)", tput, function(v) return string.format("%.1f", v) end)

  local rtt = {}
  for i, s in ipairs(result.performance.by_size) do
    rtt[i] = {fmt_size(s.size), us(s.tcp.rtt_p50) or 0, us(s.udp.rtt_p50) or 0, us(s.tcp.rtt_p90) or 0, us(s.udp.rtt_p90) or 0}
  end
  bars(out, 20, 385, 450, 250, "Round trip (µs): median, whisker to p90", rtt, function(v) return string.format("%d", math.floor(v + 0.5)) end)

  local st = result.setup
  bars(out, 490, 385, 450, 250, "Setup (µs, median)", {
    {"connect()", us(st.tcp.connect), us(st.udp.connect)},
    {"accept()", us(st.tcp.accept), 0},
    {"socket to 1st message", us(st.tcp.first_message), us(st.udp.first_message)},
  }, function(v) return string.format("%d", math.floor(v + 0.5)) end)

  add(string.format('<text x="20" y="%d" class="title">Message boundaries: %d messages, %d-byte receive buffer</text>', 660, #result.boundaries.sizes, result.boundaries.buffer))
  strips(out, 20, 665, W - 40, result.boundaries)
  add("</svg>")
  return table.concat(out, "\n") .. "\n"
end

if svg_file then
  write_file(svg_file, render_svg(), "the SVG")
  print((json_file and "" or "\n") .. "wrote " .. svg_file)
end
