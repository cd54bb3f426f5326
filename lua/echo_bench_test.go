package lua

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	glua "github.com/yuin/gopher-lua"
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

// The UDP echo benchmarks: the loop of scripts/udp_echo_server.lua against
// a native Go one, each answering udpClients sockets that keep one
// datagram in flight.
//
//	go test -run XXX -bench 'UDPEcho' -benchmem -cpu 1 ./lua/
const udpClients = 16

func BenchmarkUDPEchoGo(b *testing.B) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	udpEchoLoad(b, c.LocalAddr().String())
}

func BenchmarkUDPEchoLua(b *testing.B) {
	h := New(Options{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
	defer h.Close()
	vals, err := h.Eval(nil, "echo", `
		local s = assert(sock.bind_udp("127.0.0.1", 0))
		local fd = s.fd
		spawn(function()
			while true do
				local data, host, port = sock.recvfrom(fd, 65535)
				if not data then return end
				sock.sendto(fd, data, host, port)
			end
		end)
		local host, port = s:getsockname()
		return host .. ":" .. port`)
	if err != nil {
		b.Fatal(FormatError(err))
	}
	udpEchoLoad(b, vals[0].String())
}

// udpEchoLoad spreads b.N round trips over udpClients connected UDP
// sockets. A datagram lost on loopback (a full receive buffer) is sent
// again after 200 ms.
func udpEchoLoad(b *testing.B, addr string) {
	conns := make([]net.Conn, udpClients)
	for i := range conns {
		c, err := net.Dial("udp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range conns {
		n := b.N / udpClients
		if i < b.N%udpClients {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 64)
			for done := 0; done < n; {
				if _, err := c.Write(msg); err != nil {
					b.Error(err)
					return
				}
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := c.Read(msg); err == nil {
					done++
				} else if !errors.Is(err, os.ErrDeadlineExceeded) {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
}

// BenchmarkConnectAcceptClose is a client and a server in one script: the
// main task connects and closes b.N times while a task accepts and
// closes each connection. Every connection must be accepted.
//
//	go test -run XXX -bench ConnectAcceptClose ./lua/
func BenchmarkConnectAcceptClose(b *testing.B) {
	h := New(Options{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
	defer h.Close()
	b.ResetTimer()
	vals, err := h.Eval(nil, "cycle", fmt.Sprintf(`
		local n = %d
		local l = assert(sock.listen_tcp("127.0.0.1", 0))
		local _, port = l:getsockname()
		local accepted = 0
		local acc = spawn(function()
			while accepted < n do
				local c = assert(l:accept())
				accepted = accepted + 1
				c:close()
			end
		end)
		for _ = 1, n do
			local c = assert(sock.dial_tcp("127.0.0.1", port))
			c:close()
		end
		wait(acc, 10)
		l:close()
		return accepted`, b.N))
	b.StopTimer()
	if err != nil {
		b.Fatal(FormatError(err))
	}
	if got := int(vals[0].(glua.LNumber)); got != b.N {
		b.Fatalf("%d of %d connections accepted", got, b.N)
	}
}
