// Command echobench measures sockplay's Lua TCP echo server against a native
// Go goroutine-per-connection echo server, in the same run, on loopback:
//
//	go run ./bench/echobench -sockplay /tmp/sockplay            round trips per second
//	go run ./bench/echobench -sockplay /tmp/sockplay -mem 10000 resident memory per connection
//
// Each server runs as its own process pinned to CPU 0 (taskset) and the load
// generator to CPU 1, so the two servers get the same core. Every run is
// bounded by -d and every connection has a deadline.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	sockplay = flag.String("sockplay", "", "path to the sockplay binary (required)")
	conns    = flag.Int("c", 50, "concurrent connections")
	size     = flag.Int("size", 64, "message size in bytes")
	duration = flag.Duration("d", 5*time.Second, "measuring time per server")
	rounds   = flag.Int("rounds", 3, "alternating rounds per server (the best is kept)")
	memConns = flag.Int("mem", 0, "instead of speed: hold this many idle connections and report memory per connection")
	serveGo  = flag.Bool("serve-go", false, "internal: run the native Go echo server")
	noPin    = flag.Bool("nopin", false, "do not pin with taskset")
)

func main() {
	flag.Parse()
	if *serveGo {
		serveGoEcho()
		return
	}
	if *sockplay == "" {
		fmt.Fprintln(os.Stderr, "echobench: -sockplay PATH is required (go build -o /tmp/sockplay ./cmd/sockplay)")
		os.Exit(2)
	}
	raiseFileLimit()
	if *memConns > 0 {
		memory()
		return
	}
	speed()
}

// serveGoEcho is the reference: the idiomatic Go echo server.
func serveGoEcho() {
	runtime.GOMAXPROCS(1) // pinned to one core like the Lua server
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64*1024)
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
}

type server struct {
	name string
	cmd  *exec.Cmd
	addr string
}

func start(name string, args ...string) *server {
	if !*noPin {
		if p, err := exec.LookPath("taskset"); err == nil {
			args = append([]string{p, "-c", "0"}, args...)
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil {
		fail(fmt.Errorf("%s: no first line: %v", name, err))
	}
	go io.Copy(io.Discard, r)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		fail(fmt.Errorf("%s: first line %q", name, line))
	}
	return &server{name: name, cmd: cmd, addr: addr}
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func luaServer() *server {
	script := filepath.Join(repoRoot(), "scripts", "tcp_echo_server.lua")
	return start("sockplay", *sockplay, script, "--port", "0", "--quiet")
}

func goServer() *server {
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	return start("go", self, "-serve-go")
}

// load runs c connections doing write-then-read round trips for d and
// returns round trips per second and the server's CPU time (user + system)
// per round trip, which a busy machine disturbs far less than the rate.
func load(addr string, pid int) (float64, time.Duration) {
	pinSelf()
	var total atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(*duration)
	msg := make([]byte, *size)
	for i := range msg {
		msg[i] = byte('a' + i%26)
	}
	start := time.Now()
	cpu0 := cpuTime(pid)
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				fmt.Fprintln(os.Stderr, "dial:", err)
				return
			}
			defer c.Close()
			c.(*net.TCPConn).SetNoDelay(true)
			c.SetDeadline(stop.Add(10 * time.Second))
			buf := make([]byte, len(msg))
			n := int64(0)
			for time.Now().Before(stop) {
				if _, err := c.Write(msg); err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					fmt.Fprintln(os.Stderr, "read:", err)
					return
				}
				n++
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	cpu := cpuTime(pid) - cpu0
	n := total.Load()
	if n == 0 {
		return 0, 0
	}
	return float64(n) / time.Since(start).Seconds(), cpu / time.Duration(n)
}

// cpuTime reads a process's user + system CPU time from /proc.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100
}

func speed() {
	fmt.Printf("echo round trips: %d connections, %d-byte messages, %s per run, best of %d\n", *conns, *size, *duration, *rounds)
	var bestLua, bestGo float64
	cpuLua, cpuGo := time.Duration(1<<62), time.Duration(1<<62)
	for r := 0; r < *rounds; r++ {
		for _, mk := range []func() *server{goServer, luaServer} {
			s := mk()
			rate, cpu := load(s.addr, s.cmd.Process.Pid)
			s.stop()
			fmt.Printf("  round %d  %-8s %10.0f round trips/s  %6.2f us server CPU per round trip\n", r+1, s.name, rate, float64(cpu)/1e3)
			if s.name == "go" {
				bestGo, cpuGo = max(bestGo, rate), min(cpuGo, cpu)
			} else {
				bestLua, cpuLua = max(bestLua, rate), min(cpuLua, cpu)
			}
		}
	}
	fmt.Printf("round trips/s, best round: native Go %.0f, sockplay Lua %.0f: ratio %.2fx\n", bestGo, bestLua, bestLua/bestGo)
	fmt.Printf("server CPU per round trip, best round: native Go %.2f us, sockplay Lua %.2f us: ratio %.2fx\n",
		float64(cpuGo)/1e3, float64(cpuLua)/1e3, float64(cpuGo)/float64(cpuLua))
}

// memory holds n idle connections to each server and reports the growth
// of the server's resident set divided by n.
func memory() {
	n := *memConns
	fmt.Printf("memory: %d idle connections, each held by its own task (Lua) or goroutine (Go)\n", n)
	for _, mk := range []func() *server{goServer, luaServer} {
		s := mk()
		time.Sleep(200 * time.Millisecond)
		before := rss(s.cmd.Process.Pid)
		var held []net.Conn
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
			if err != nil {
				fmt.Fprintf(os.Stderr, "dial %d: %v\n", i, err)
				break
			}
			held = append(held, c)
		}
		// One round trip on every connection proves each is being served.
		buf := make([]byte, 1)
		ok := 0
		for _, c := range held {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte("x")); err == nil {
				if _, err := io.ReadFull(c, buf); err == nil {
					ok++
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
		after := rss(s.cmd.Process.Pid)
		fmt.Printf("  %-8s %d connections served; RSS %6.1f MiB -> %6.1f MiB: %.1f KiB per connection\n",
			s.name, ok, float64(before)/1024, float64(after)/1024, float64(after-before)/float64(len(held)))
		for _, c := range held {
			c.Close()
		}
		s.stop()
	}
}

// rss reads VmRSS (KiB) of a process.
func rss(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		fail(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// pinSelf moves the load generator to CPU 1, away from the servers.
func pinSelf() {
	if *noPin {
		return
	}
	if p, err := exec.LookPath("taskset"); err == nil {
		exec.Command(p, "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).Run()
	}
}

func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "echobench:", err)
	os.Exit(1)
}
