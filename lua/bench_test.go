package lua

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// BenchmarkNewHost is the host's share of `sockplay -e ”` start-up time.
func BenchmarkNewHost(b *testing.B) {
	for i := 0; i < b.N; i++ {
		h := New(Options{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
		h.Close()
	}
}

// BenchmarkIdleTaskMemory holds b.N connections, each served by a task
// blocked in a read, and reports the Go stack and heap they cost per task.
// The resident-memory figure at 10,000 connections comes from
// bench/echobench -mem 10000; this one says where the bytes go.
func BenchmarkIdleTaskMemory(b *testing.B) {
	const n = 2000
	if os.Getenv("SOCKPLAY_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, for exact figures
	}
	h := New(Options{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
	defer h.Close()
	if _, err := h.Eval(nil, "setup", `
		l = assert(sock.listen_tcp("127.0.0.1", 0, 4096))
		local _, port = l:getsockname()
		clients = {}
		function connect(n)
			for i = 1, n do
				clients[#clients + 1] = assert(sock.dial_tcp("127.0.0.1", port, 5))
				local a = assert(l:accept())
				spawn(function() a:write(a:read(1)); a:read(1) end)
			end
			-- One round trip on each, as echobench -mem makes: every task
			-- has woken, answered and gone back to waiting.
			for _, c in ipairs(clients) do
				assert(c:write("x")); assert(c:read(1))
			end
		end`); err != nil {
		b.Fatal(FormatError(err))
	}
	measure := func() (stack, heap uint64) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.StackInuse, ms.HeapAlloc
	}
	s0, h0 := measure()
	if _, err := h.Eval(nil, "connect", fmt.Sprintf("connect(%d)", n)); err != nil {
		b.Fatal(FormatError(err))
	}
	time.Sleep(100 * time.Millisecond) // let every task reach its read
	s1, h1 := measure()
	if path := os.Getenv("SOCKPLAY_HEAPPROFILE"); path != "" {
		// go tool pprof -sample_index=inuse_space lua.test FILE: what the
		// idle tasks hold.
		if f, err := os.Create(path); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	b.ReportMetric(float64(s1-s0)/n/1024, "stack-KiB/task")
	b.ReportMetric(float64(h1-h0)/n/1024, "heap-KiB/task")
	for i := 0; i < b.N; i++ {
	}
}
