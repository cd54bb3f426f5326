package lua

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// The echo benchmarks put the Lua binding path beside a native Go server in
// one process: both serve the same 50 connections doing 64-byte round
// trips, so the difference in ns/op and allocs/op is what the interpreter,
// the sock module and the task machinery add. Run with -cpu 1 to match
// bench/echobench, where the server has one core:
//
//	go test -run XXX -bench 'Echo' -benchmem -cpu 1 ./lua/
//
// The load of 50 client goroutines is in both figures alike.
const echoConns = 50

func BenchmarkEchoGo(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 65536)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	echoLoad(b, l.Addr().String())
	wg.Wait()
}

func BenchmarkEchoLua(b *testing.B) {
	h := New(Options{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
	defer h.Close()
	// The loop of scripts/tcp_echo_server.lua.
	vals, err := h.Eval(nil, "echo", `
		local l = assert(sock.listen_tcp("127.0.0.1", 0, 128))
		local function serve(cfd)
			while true do
				local data, err, code = sock.read(cfd, 65536)
				if not data then break end
				local n = sock.write(cfd, data)
				if not n then break end
			end
			sock.close(cfd)
		end
		spawn(function()
			while true do
				local cfd = sock.accept(l.fd)
				if not cfd then return end
				sock.setopt(cfd, "nodelay", true)
				spawn(serve, cfd)
			end
		end)
		local host, port = l:getsockname()
		return host .. ":" .. port`)
	if err != nil {
		b.Fatal(FormatError(err))
	}
	echoLoad(b, vals[0].String())
}

// echoLoad spreads b.N round trips over echoConns connections to addr and
// closes them, so the server's tasks end.
func echoLoad(b *testing.B, addr string) {
	conns := make([]net.Conn, echoConns)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range conns {
		n := b.N / echoConns
		if i < b.N%echoConns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 64)
			for range n {
				if _, err := c.Write(msg); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(c, msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	for _, c := range conns {
		c.Close()
	}
}
