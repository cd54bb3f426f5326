// Command echobench measures sockplay's Lua echo servers against the echo
// servers of native Go, Node and Python's asyncio, in the same run, on
// loopback:
//
//	go run ./bench/echobench -sockplay /tmp/sockplay                     TCP, 50 connections
//	go run ./bench/echobench -sockplay /tmp/sockplay -proto udp -c 1     UDP, one client
//	go run ./bench/echobench -sockplay /tmp/sockplay -servers go,sockplay,node,python
//	go run ./bench/echobench -sockplay /tmp/sockplay -mem 10000          memory per held connection
//	go run ./bench/echobench -sockplay /tmp/sockplay -burst 10000        10,000 connections opened at once
//
// Each server runs as its own process pinned to CPU 0 (taskset) with
// GOMAXPROCS=1 and the load generator on CPU 1, so every server gets the
// same core. Servers take turns, round after round, so a change in the
// machine's load touches them alike. Every run is bounded by -d and every
// connection has a deadline.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	sockplay  = flag.String("sockplay", "", "path to the sockplay binary (required)")
	spArgs    = flag.String("sockplay-args", "", "extra arguments for the sockplay server, before the script (e.g. \"--pcap /tmp/x.pcap\")")
	proto     = flag.String("proto", "tcp", "tcp or udp")
	servers   = flag.String("servers", "go,sockplay", "servers to compare, in turn: go, sockplay, luasocket, copas, lua5.1-luasocket, lua5.1-copas, node, python")
	conns     = flag.Int("c", 50, "concurrent clients (TCP connections or UDP sockets), each with one message in flight")
	size      = flag.Int("size", 64, "message size in bytes")
	duration  = flag.Duration("d", 5*time.Second, "measuring time per server and round")
	rounds    = flag.Int("rounds", 3, "rounds; each server runs once per round (the best is kept)")
	memConns  = flag.Int("mem", 0, "instead of speed: hold this many idle connections and report memory per connection")
	burst     = flag.Int("burst", 0, "instead of speed: open this many connections at once, count dial errors, and check each is served")
	serveGo   = flag.String("serve-go", "", "internal: run the native Go echo server for this protocol")
	noPin     = flag.Bool("nopin", false, "do not pin with taskset")
	showSpeed = flag.Bool("v", false, "print every round")
)

func main() {
	flag.Parse()
	if *serveGo != "" {
		serveGoEcho(*serveGo)
		return
	}
	if *sockplay == "" && strings.Contains(*servers, "sockplay") {
		fmt.Fprintln(os.Stderr, "echobench: -sockplay PATH is required (CGO_ENABLED=0 go build -o /tmp/sockplay ./cmd/sockplay)")
		os.Exit(2)
	}
	if *proto != "tcp" && *proto != "udp" {
		fail(fmt.Errorf("-proto %q: want tcp or udp", *proto))
	}
	raiseFileLimit()
	switch {
	case *memConns > 0:
		memory(*memConns)
	case *burst > 0:
		bursts(*burst)
	default:
		speed()
	}
}

type server struct {
	name string
	cmd  *exec.Cmd
	addr string
}

// starters maps a server's name to how it starts.
var starters = map[string]func() *server{
	"go": func() *server {
		self, err := os.Executable()
		if err != nil {
			fail(err)
		}
		return start("go", self, "-serve-go", *proto)
	},
	"sockplay": func() *server {
		script := filepath.Join(repoRoot(), "scripts", *proto+"_echo_server.lua")
		args := append([]string{*sockplay}, strings.Fields(*spArgs)...)
		return start("sockplay", append(args, script, "--port", "0", "--quiet")...)
	},
	// LuaSocket programs: the same scripts on sockplay and on lua5.1 with
	// Debian's LuaSocket and Copas.
	"luasocket":        luaServer("luasocket", "", "luasocket_echo.lua"),
	"copas":            luaServer("copas", "", "copas_echo_server.lua"),
	"lua5.1-luasocket": luaServer("lua5.1-luasocket", "lua5.1", "luasocket_echo.lua"),
	"lua5.1-copas":     luaServer("lua5.1-copas", "lua5.1", "copas_echo_server.lua"),
	"node": func() *server {
		src := nodeTCP
		if *proto == "udp" {
			src = nodeUDP
		}
		return start("node", need("node"), "-e", src)
	},
	"python": func() *server {
		src := pythonTCP
		if *proto == "udp" {
			src = pythonUDP
		}
		return start("python", need("python3"), "-c", src)
	},
}

// luaServer starts a LuaSocket script of scripts/ with interp (lua5.1),
// or with sockplay when interp is "".
func luaServer(name, interp, script string) func() *server {
	return func() *server {
		path := filepath.Join(repoRoot(), "scripts", script)
		args := []string{path, "--port", "0"}
		if *proto == "udp" {
			if script != "luasocket_echo.lua" {
				fail(fmt.Errorf("%s: TCP only", name))
			}
			args = append(args, "--udp")
		}
		if interp == "" {
			return start(name, append([]string{*sockplay}, args...)...)
		}
		// lua5.1 finds the scripts' own library only on LUA_PATH.
		os.Setenv("LUA_PATH", filepath.Join(repoRoot(), "scripts", "lib", "?.lua")+";;")
		return start(name, append([]string{need(interp)}, args...)...)
	}
}

func serverList() []string {
	var out []string
	for _, name := range strings.Split(*servers, ",") {
		name = strings.TrimSpace(name)
		if _, ok := starters[name]; !ok {
			fail(fmt.Errorf("unknown server %q (want go, sockplay, luasocket, copas, lua5.1-luasocket, lua5.1-copas, node, python)", name))
		}
		out = append(out, name)
	}
	return out
}

func need(prog string) string {
	p, err := exec.LookPath(prog)
	if err != nil {
		fail(fmt.Errorf("%s is not installed", prog))
	}
	return p
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

func (s *server) pid() int { return s.cmd.Process.Pid }

// speed runs each server in turn for -rounds rounds and prints the best
// rate and the least CPU per round trip of each, against native Go's.
func speed() {
	names := serverList()
	fmt.Printf("%s echo: %d clients, %d-byte messages, %s per run, best of %d rounds\n", strings.ToUpper(*proto), *conns, *size, *duration, *rounds)
	best := map[string]float64{}
	cpu := map[string]time.Duration{}
	for r := 0; r < *rounds; r++ {
		for _, name := range names {
			s := starters[name]()
			var rate float64
			var c time.Duration
			if *proto == "udp" {
				rate, c = loadUDP(s.addr, s.pid())
			} else {
				rate, c = loadTCP(s.addr, s.pid())
			}
			s.stop()
			if *showSpeed {
				fmt.Printf("  round %d  %-8s %10.0f round trips/s  %6.2f us server CPU per round trip\n", r+1, name, rate, float64(c)/1e3)
			}
			best[name] = max(best[name], rate)
			if old, ok := cpu[name]; !ok || (c > 0 && c < old) {
				cpu[name] = c
			}
		}
	}
	ref := best["go"]
	for _, name := range names {
		line := fmt.Sprintf("  %-8s %10.0f round trips/s  %6.2f us server CPU each", name, best[name], float64(cpu[name])/1e3)
		if ref > 0 && name != "go" {
			line += fmt.Sprintf("   %.2fx Go by rate, %.2fx by CPU", best[name]/ref, float64(cpu["go"])/float64(cpu[name]))
		}
		fmt.Println(line)
	}
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
