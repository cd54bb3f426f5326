package lua

import (
	"fmt"
	"runtime"
	"testing"
)

// A task parked in a read holds its goroutine's stack for as long as the
// connection is idle: at 10,000 connections every KiB of it is 10 MiB.
// The frames below a parked call (VM, binding, sockCall, the sock package,
// the poller) must fit the 4 KiB a goroutine's stack starts at after its
// first shrink; one closure too many in the binding doubles it to 8.
func TestIdleTaskStackFits(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation makes every frame larger")
	}
	h, out := newTestHost(t)
	defer h.Close()
	const n = 300
	stack := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.StackInuse
	}
	runLua(t, h, out, `
		l = assert(sock.listen_tcp("127.0.0.1", 0))
		local _, port = l:getsockname()
		clients, idle = {}, 0
		function connect(n)
			for i = 1, n do
				clients[i] = assert(sock.dial_tcp("127.0.0.1", port, 5))
				local a = assert(l:accept())
				spawn(function() a:write(a:read(1)); idle = idle + 1; a:read(1) end)
			end
			for _, c in ipairs(clients) do assert(c:write("x")); assert(c:read(1)) end
			while idle < n do sleep(0.001) end
		end`)
	before := stack()
	runLua(t, h, out, fmt.Sprintf("connect(%d)", n))
	per := float64(stack()-before) / n / 1024
	t.Logf("%.2f KiB of stack per parked task", per)
	if per > 5 {
		t.Fatalf("a task parked in read holds %.2f KiB of stack; want 4 (see sockCall)", per)
	}
	runLua(t, h, out, `for _, c in ipairs(clients) do c:close() end; l:close()`)
}
