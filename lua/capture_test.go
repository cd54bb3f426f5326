//go:build linux

package lua

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sockplay/internal/testpeer"
)

// evalLua runs a chunk on a fresh host (with expect) and reports failures.
func evalLua(t *testing.T, name, code string) string {
	t.Helper()
	base := takeBaseline()
	var output string
	func() {
		h, out := newTestHost(t)
		defer h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := h.Eval(ctx, name, code); err != nil {
			t.Error(FormatError(err))
		}
		h.Wait(ctx)
		for _, f := range h.testFailures() {
			t.Error(f)
		}
		output = out.String()
	}()
	base.check(t)
	if t.Failed() {
		t.Logf("output:\n%s", output)
	}
	return output
}

// The capture module from Lua: a capture of the script's own exchange,
// each packet a table of layers with fields and offsets, the fd and the
// call; the connection of one fd; pcap files out and back in.
func TestCaptureFromLua(t *testing.T) {
	testpeer.Root(t)
	dir := t.TempDir()
	evalLua(t, "capture", `
		local dir = "`+dir+`"
		local cap = assert(capture.open{queue = 100})
		expect.match(tostring(cap), "^<capture fd=%d+ lo own sockets: 0 kept, 0 dropped>$")
		expect.eq(fd(cap.fd).kind, "packet")
		expect.eq(fd(cap.fd).iface, "lo")
		local l = sock.listen_tcp("127.0.0.1", 0)
		local _, port = l:getsockname()
		local server = spawn(function()
			local c = l:accept()
			c:read_line()
			c:write("pong\n")
			c:close()
		end)
		local c = sock.dial_tcp("127.0.0.1", port)
		local cfd = c.fd
		c:write("ping\n")
		expect.eq(c:read_line(), "pong")
		wait(server)
		c:close()
		l:close()

		local syn = assert(cap:next(5))
		expect.eq(syn.fd, cfd)
		expect.eq(syn.call, "connect")
		expect.match(syn.line, "^%d%d:%d%d:%d%d%.%d%d%d%d%d%d IP 127%.0%.0%.1%.%d+ > 127%.0%.0%.1%." .. port .. ": Flags %[S%], seq %d+, win %d+, options %[.*%], length 0$")
		expect.match(tostring(syn), "%-%- fd " .. cfd .. " %(.-%) > fd %d+ %(.-%): connect$")
		expect.eq(#syn.layers, 3)
		local eth, ip, tcp = syn.layers[1], syn.layers[2], syn.layers[3]
		expect.eq(eth.name .. " " .. ip.name .. " " .. tcp.name, "Ethernet IPv4 TCP")
		expect.eq(eth.level .. " " .. ip.level .. " " .. tcp.level, "link network transport")
		expect.eq(ip.offset, 14)
		expect.eq(tcp.offset, 34)
		expect.eq(syn.TCP, tcp)
		expect.eq(tcp["destination port"], tostring(port))
		local dport
		for _, f in ipairs(tcp.fields) do
			if f.name == "destination port" then dport = f end
		end
		expect.eq(dport.offset, 36)
		expect.eq(dport.length, 2)
		local b1, b2 = syn.data:byte(dport.offset + 1, dport.offset + 2)
		expect.eq(b1 * 256 + b2, port)

		-- The rest of the exchange, in order: the client's data comes from write.
		local calls = {}
		for i = 2, 10 do
			local p, msg, code = cap:next(10)
			if not p then expect.eq(code, "nothing: packet " .. i); break end
			calls[#calls + 1] = (p.fd == cfd and "client " or "server ") .. (p.call or "?")
			if p.call == "write" and p.fd == cfd then
				expect.eq(p.layers[4].name, "payload")
				expect.eq(p.data:sub(p.layers[4].offset + 1), "ping\n")
			end
		end
		expect.eq(table.concat(calls, ","), "server kernel,client kernel,client write,server kernel,server write,client kernel,server close,client close,server kernel")
		local extra, _, code = cap:next(0.2)
		expect.eq(code, "ETIMEDOUT")

		local conn = cap:connection(cfd)
		expect.eq(#conn, 10)
		expect.eq(conn[1].line, syn.line)
		expect.eq(#cap:recent(), 10)
		local st = cap:stats()
		expect.eq(st.kept, 10)
		expect.eq(st.dropped, 0)

		-- pcap out and back in: the same lines.
		expect.eq(cap:write_pcap(dir .. "/conn.pcap"), 10)
		local back, damage = assert(capture.read_pcap(dir .. "/conn.pcap"))
		expect.eq(damage, nil)
		expect.eq(#back, 10)
		for i = 1, 10 do expect.eq(back[i].line, conn[i].line) end
		expect.eq(back[1].fd, nil) -- a file knows no fds
		expect.eq(capture.write_pcap(dir .. "/again.pcap", back), 10)

		-- A file cut short: the packets before the damage, and the damage.
		local fh = assert(io.open(dir .. "/conn.pcap", "rb"))
		local whole = fh:read("*a")
		fh:close()
		local f = assert(io.open(dir .. "/cut.pcap", "wb")); f:write(whole:sub(1, #whole - 20)); f:close()
		local cut, dmg = capture.read_pcap(dir .. "/cut.pcap")
		expect.eq(#cut, 9)
		expect.eq(dmg.packet, 10)
		expect.match(dmg.message, "the file ends inside the packet")
		expect.ok(#dmg.rest > 0, "the damaged bytes are given")

		expect.eq(cap:stop(), true)
		expect.eq(select(3, cap:next()), "EOF")
		expect.eq(fd(cap.fd), nil)
	`)
	out, err := exec.Command(testpeer.Path(t, "tcpdump"), "-nn", "-r", filepath.Join(dir, "again.pcap")).Output()
	if err != nil || strings.Count(string(out), "\n") != 10 {
		t.Errorf("tcpdump -r on the pcap written from Lua: %v\n%s", err, out)
	}
}

// Mistakes raise; the world's failures return nil, msg, code.
func TestCaptureErrorsFromLua(t *testing.T) {
	testpeer.Root(t)
	evalLua(t, "capture errors", `
		expect.fails(function() capture.open{filter = "port x"} end,
			[[bad argument #1 to 'open' %(capture: filter: expected a port number at position 6: "port x"%)]])
		expect.fails(function() capture.open{ifase = "lo"} end, "unknown option \"ifase\"")
		expect.fails(function() capture.open{netns = 3} end, "a sock.netns%(%) or a lab host expected")
		expect.fails(function() capture.open{snaplen = "big"} end, "field snaplen")
		local c, msg, code = capture.open{iface = "nosuch0"}
		expect.eq(c, nil)
		expect.eq(code, "ENODEV")
		expect.match(msg, [[^no interface named "nosuch0" %(there are: .*lo.*%)$]])
		local p, msg, code = capture.read_pcap("/nonexistent.pcap")
		expect.eq(code, "ENOENT")
		local p, msg, code = capture.read_pcap("/etc/hostname")
		expect.eq(code, "EINVAL")
		expect.match(msg, "not a pcap file")
		-- A capture's fd is read by the capture: sock.read on it says so
		-- at once instead of queueing behind the capture for ever.
		local cap = assert(capture.open{filter = "udp port 9"})
		local data, msg, code = sock.read(cap.fd)
		expect.eq(data, nil)
		expect.eq(code, "EINVAL")
		expect.match(msg, "is a packet capture")
		expect.eq(select(3, sock.accept(cap.fd)), "EINVAL")
		cap:stop()
	`)
}

// A capture inside a namespace sockplay made sees that namespace's
// loopback, and its sockets as the script's.
func TestCaptureInNetns(t *testing.T) {
	testpeer.Root(t)
	evalLua(t, "capture netns", `
		local ns = assert(sock.netns())
		local cap = assert(capture.open{netns = ns, queue = 10})
		local u1, u2 = ns:open("udp"), ns:open("udp")
		assert(sock.bind(u1, "127.0.0.1", 0))
		local _, port = sock.getsockname(u1)
		assert(sock.sendto(u2, "inside", "127.0.0.1", port))
		local p = assert(cap:next(5))
		expect.eq(p.fd, u2)
		expect.eq(p.peer_fd, u1)
		expect.eq(p.call, "sendto")
		expect.match(p.line, "UDP, length 6$")
		sock.close(u1); sock.close(u2)
		cap:stop()
		ns:close()
	`)
}

// The capture is an fd like any other: the script's end closes it.
func TestCaptureClosedAtScriptEnd(t *testing.T) {
	testpeer.Root(t)
	file := filepath.Join(t.TempDir(), "left.pcap")
	evalLua(t, "capture left open", `c = assert(capture.open{pcap = "`+file+`"})
		local u = sock.udp(); u:sendto("x", "127.0.0.1", 9)`)
	// The host closed the socket first, then the capture: the datagram is
	// in the file, and evalLua checked that no fd or goroutine is left.
	out, err := exec.Command(testpeer.Path(t, "tcpdump"), "-nn", "-r", file).Output()
	if err != nil || !strings.Contains(string(out), ".9: UDP, length 1") {
		t.Errorf("tcpdump -r %s: %v\n%s", file, err, out)
	}
}

// A capture on a lab host's link: the host's own interface, Ethernet
// frames with ARP, its sockets' packets named, sent ones marked out.
func TestCaptureInLabHost(t *testing.T) {
	testpeer.Root(t)
	evalLua(t, "capture lab", `
		local net = assert(lab.new())
		local a, b = net:host("a"), net:host("b")
		net:link(a, b)
		local cap = assert(capture.open{netns = a, iface = "eth0", filter = "tcp port 7000", queue = 100})
		local srv = b:call(sock.listen_tcp, "0.0.0.0", 7000)
		local server = b:spawn(function() local c = srv:accept(); c:write(c:read_line() .. "\n"); c:close() end)
		local c = a:call(sock.dial_tcp, "b", 7000)
		c:write("over the link\n")
		expect.eq(c:read_line(), "over the link")
		wait(server)
		local syn = assert(cap:next(10))
		expect.match(syn.line, "IP 10%.%d+%.%d+%.%d+%.%d+ > 10%.%d+%.%d+%.%d+%.7000: Flags %[S%]")
		expect.eq(syn.fd, c.fd)
		expect.eq(syn.call, "connect")
		expect.eq(syn.out, true)
		expect.eq(syn.iface, "eth0")
		local synack = assert(cap:next(10))
		expect.eq(synack.out, nil)
		expect.eq(synack.fd, c.fd) -- b's sockets live in another namespace: the receiver names it
		c:close(); srv:close()
		cap:stop()
		net:close()
	`)
}
