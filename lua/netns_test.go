package lua

import (
	"context"
	"strings"
	"testing"
	"time"

	"sockplay/internal/testpeer"
)

// sock.netns from Lua: real kernel loss in a namespace of the script's own;
// TCP delivers everything and counts retransmissions, UDP just loses.
func TestNetnsFromLua(t *testing.T) {
	testpeer.Root(t)
	base := takeBaseline()
	func() {
		h, out := newTestHost(t)
		defer h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := h.Eval(ctx, "netns", `
			local ns = assert(sock.netns())
			expect.match(tostring(ns), "^<netns fd=%d+ loss=0%%>$")
			assert(ns:loss(0.1))
			expect.match(tostring(ns), "loss=10%%>$")
			local l = ns:open("tcp")
			assert(sock.bind(l, "127.0.0.1", 0)); assert(sock.listen(l))
			local _, port = sock.getsockname(l)
			local c = ns:open("tcp")
			sock.settimeout(c, 60); sock.settimeout(l, 60)
			assert(sock.connect(c, "127.0.0.1", port))
			local a = assert(sock.accept(l))
			sock.settimeout(a, 60)
			local data = string.rep("0123456789abcdef", 32768) -- 512 KiB
			local reader = spawn(function() return sock.read_exact(a, #data) end)
			assert(sock.write(c, data))
			local got = wait(reader)
			expect.ok(got == data, "every byte, in order, despite the loss")
			expect.ok(sock.info(c).retrans > 0, "the kernel retransmitted")

			local u1, u2 = ns:open("udp"), ns:open("udp")
			assert(sock.bind(u1, "127.0.0.1", 0))
			sock.setopt(u1, "rcvbuf", 4 * 1024 * 1024) -- no drops from a full buffer
			local _, uport = sock.getsockname(u1)
			for i = 1, 500 do sock.sendto(u2, "d" .. i, "127.0.0.1", uport) end
			sock.settimeout(u1, 0.2)
			local n = 0
			while sock.recvfrom(u1) do n = n + 1 end
			expect.ok(n < 500 and n > 350, "UDP lost some of 500 datagrams: got " .. n)
			print("udp received", n)
			expect.fails(function() ns:loss(2) end, "between 0 and 1")
			for _, fd in ipairs({l, c, a, u1, u2}) do sock.close(fd) end
			expect.eq(ns:close(), true)
			expect.eq(select(3, ns:open("tcp")), "EBADF")`)
		if err != nil {
			t.Fatal(FormatError(err))
		}
		for _, f := range h.testFailures() {
			t.Error(f)
		}
		if !strings.Contains(out.String(), "udp received") {
			t.Errorf("output: %s", out.String())
		}
	}()
	base.check(t)
}
