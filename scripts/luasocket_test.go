package scripts_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// The LuaSocket scripts, run as users run them: under sockplay against
// nc and socat, and the same scripts under lua5.1 with Debian's LuaSocket
// (and Copas), whose logs must read the same.

// lua51 runs scripts the way the lua command does, with scripts/lib on
// LUA_PATH (sockplay finds it beside the script by itself).
func lua51(t *testing.T) (string, []string) {
	t.Helper()
	path := testpeer.Path(t, "lua5.1")
	testpeer.NeedFile(t, "/usr/share/lua/5.1/socket.lua", "lua-socket")
	return path, []string{"LUA_PATH=" + filepath.Join(scripttest.Root(), "scripts", "lib", "?.lua") + ";;"}
}

// peersRE hides what changes from run to run: ephemeral ports.
var peersRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)

func scrubPorts(s string) string { return peersRE.ReplaceAllString(s, "127.0.0.1:PORT") }

// waitFor waits until the server's log holds want, at most 10 s.
func waitFor(t *testing.T, srv *scripttest.Server, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.Output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never logged %q:\n%s\nstderr:\n%s", want, srv.Output(), srv.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The LuaSocket echo server (select over every client) serves nc over TCP
// and UDP, under sockplay and under lua5.1 alike.
func TestLuaSocketEchoServerWithNc(t *testing.T) {
	lua, env := lua51(t)
	for _, run := range []struct {
		name  string
		start func(args ...string) *scripttest.Server
	}{
		{"sockplay", func(args ...string) *scripttest.Server { return scripttest.Start(t, args...) }},
		{"lua5.1", func(args ...string) *scripttest.Server { return scripttest.StartProgram(t, env, lua, args...) }},
	} {
		t.Run(run.name, func(t *testing.T) {
			stop := func(srv *scripttest.Server) {
				if run.name == "lua5.1" {
					srv.Terminate() // lua5.1 retries LuaSocket's calls on Ctrl-C's EINTR
				} else {
					srv.Stop(t)
				}
			}
			srv := run.start(scripttest.Script("luasocket_echo.lua"), "--port", "0")
			if got := peer(t, "hello\nworld\n", "nc", "-N", "-w", "5", srv.Host, srv.Port); got != "hello\nworld\n" {
				t.Errorf("nc got %q", got)
			}
			big := strings.Repeat("0123456789", 20000) + "\n"
			if got := peer(t, big, "nc", "-N", "-w", "5", srv.Host, srv.Port); got != big {
				t.Errorf("a 200 kB echo came back as %d bytes", len(got))
			}
			waitFor(t, srv, "closed after 200001 bytes")
			stop(srv)
			want := "127.0.0.1:PORT connected (1 open)\n127.0.0.1:PORT closed after 12 bytes (0 open)\n" +
				"127.0.0.1:PORT connected (1 open)\n127.0.0.1:PORT closed after 200001 bytes (0 open)\n"
			if got := scrubPorts(srv.Output()); !strings.HasPrefix(got, want) {
				t.Errorf("server log:\n%s\nwant:\n%s", got, want)
			}

			udp := run.start(scripttest.Script("luasocket_echo.lua"), "--udp", "--port", "0")
			if got := peer(t, "ping\n", "nc", "-u", "-w", "1", udp.Host, udp.Port); got != "ping\n" {
				t.Errorf("nc -u got %q", got)
			}
			waitFor(t, udp, "sent 5 bytes")
			stop(udp)
		})
	}
}

// The LuaSocket echo client talks to socat's echo servers, TCP and UDP,
// and prints the same under sockplay and under lua5.1.
func TestLuaSocketEchoClientAgainstSocat(t *testing.T) {
	lua, env := lua51(t)
	for _, proto := range []string{"tcp", "udp"} {
		port := socatServer(t, proto)
		if proto == "udp" {
			waitUDPEcho(t, port)
		}
		args := []string{scripttest.Script("luasocket_echo.lua"), "--client", "--port", port, "--timeout", "2", "alpha", "two words"}
		if proto == "udp" {
			args = append(args, "--udp")
		}
		r := scripttest.Run(t, "", 15*time.Second, args...)
		if r.Code != 0 || r.Stdout != "alpha\ntwo words\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", proto, r.Code, r.Stdout, r.Stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cmd := exec.CommandContext(ctx, lua, args...)
		cmd.Env = append(cmd.Environ(), env...)
		out, err := cmd.Output()
		cancel()
		if err != nil || string(out) != r.Stdout {
			t.Errorf("%s: lua5.1 printed %q (%v), sockplay %q", proto, out, err, r.Stdout)
		}
	}
	// Refused: the error in LuaSocket's words.
	r := scripttest.Run(t, "", 15*time.Second, scripttest.Script("luasocket_echo.lua"), "--client", "--port", freePort(t, "tcp"), "x")
	if r.Code != 1 || !strings.HasSuffix(r.Stderr, ": connection refused\n") {
		t.Errorf("refused: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// waitUDPEcho waits until a UDP echo server answers on port: a datagram
// sent before it binds would come back as "connection refused".
func waitUDPEcho(t *testing.T, port string) {
	t.Helper()
	c, err := net.Dial("udp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 16)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		c.Write([]byte("probe"))
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "probe" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no UDP echo server on port %s", port)
}

// ncSession is one nc client kept open: lines go in, echoes come out.
type ncSession struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startNc(t *testing.T, host, port string) *ncSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	cmd := exec.CommandContext(ctx, testpeer.Path(t, "nc"), "-N", host, port)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	return &ncSession{cmd: cmd, in: in, out: bufio.NewReader(stdout)}
}

func (s *ncSession) echo(t *testing.T, line string) {
	t.Helper()
	io.WriteString(s.in, line+"\n")
	got, err := s.out.ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Errorf("nc sent %q, got back %q (%v)", line, got, err)
	}
}

// Copas (Debian's lua-copas) serves several nc clients at once on
// sockplay: all five are connected together, each is answered in turn,
// and the log reads as under lua5.1.
func TestCopasEchoServerManyClients(t *testing.T) {
	testpeer.NeedFile(t, "/usr/share/lua/5.1/copas.lua", "lua-copas")
	lua, env := lua51(t)
	logs := map[string]string{}
	for _, run := range []struct {
		name  string
		start func(args ...string) *scripttest.Server
	}{
		{"sockplay", func(args ...string) *scripttest.Server { return scripttest.Start(t, args...) }},
		{"lua5.1", func(args ...string) *scripttest.Server { return scripttest.StartProgram(t, env, lua, args...) }},
	} {
		srv := run.start(scripttest.Script("copas_echo_server.lua"), "--port", "0")
		var clients []*ncSession
		for i := 0; i < 5; i++ {
			clients = append(clients, startNc(t, srv.Host, srv.Port))
			waitFor(t, srv, "("+string(rune('1'+i))+" open)")
		}
		// Every client is connected; they talk in reverse order, twice.
		for round := 0; round < 2; round++ {
			for i := len(clients) - 1; i >= 0; i-- {
				clients[i].echo(t, strings.Repeat("x", i+1)+" from client "+string(rune('1'+i)))
			}
		}
		for i, c := range clients {
			c.in.Close()
			c.cmd.Wait()
			waitFor(t, srv, "("+string(rune('0'+4-i))+" open)")
		}
		if run.name == "lua5.1" {
			srv.Terminate()
		} else {
			srv.Stop(t)
		}
		logs[run.name] = scrubPorts(srv.Output())
		if !strings.Contains(logs[run.name], "connected (5 open)") || strings.Count(logs[run.name], "closed after 2 lines") != 5 {
			t.Errorf("%s: server log:\n%s\nstderr:\n%s", run.name, logs[run.name], srv.Stderr())
		}
	}
	if logs["sockplay"] != logs["lua5.1"] {
		t.Errorf("logs differ\nsockplay:\n%s\nlua5.1:\n%s", logs["sockplay"], logs["lua5.1"])
	}
}

func TestLuaSocketScriptsHelp(t *testing.T) {
	for _, s := range []string{"luasocket_echo.lua", "copas_echo_server.lua"} {
		if s == "copas_echo_server.lua" {
			testpeer.NeedFile(t, "/usr/share/lua/5.1/copas.lua", "lua-copas")
		}
		r := scripttest.Run(t, "", 15*time.Second, scripttest.Script(s), "--help")
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "usage: "+s) || !strings.Contains(r.Stdout, "--port PORT") {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", s, r.Code, r.Stdout, r.Stderr)
		}
		r = scripttest.Run(t, "", 15*time.Second, scripttest.Script(s), "--port", "70000")
		if r.Code != 2 || r.Stderr != s+": port 70000 is out of range 0-65535 (try --help)\n" {
			t.Errorf("%s --port 70000: exit %d, stderr %q", s, r.Code, r.Stderr)
		}
	}
}
