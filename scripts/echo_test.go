// Package scripts_test runs the scripts in scripts/ the way users do: the
// built sockplay binary against real peers (nc, socat, curl, dig ...).
package scripts_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// peer runs a real program with a deadline and returns its stdout.
func peer(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	path := testpeer.Path(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: no answer within 10 s (got %q)", name, strings.Join(args, " "), out)
	}
	if err != nil {
		t.Fatalf("%s %s: %v (got %q)", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestTCPEchoServerWithNc(t *testing.T) {
	srv := scripttest.Start(t, scripttest.Script("tcp_echo_server.lua"), "--port", "0")
	// -N: shut down the write side at end of input, so the server sees EOF
	// and closes; nc then exits with everything echoed.
	got := peer(t, "hello\nworld\n", "nc", "-N", "-w", "5", srv.Host, srv.Port)
	if got != "hello\nworld\n" {
		t.Errorf("nc got %q, want the two lines back", got)
	}
	// A second client while the first is gone: the server keeps serving.
	big := strings.Repeat("0123456789", 10000) + "\n"
	if got := peer(t, big, "nc", "-N", "-w", "5", srv.Host, srv.Port); got != big {
		t.Errorf("100 kB echo came back as %d bytes", len(got))
	}
	if code := srv.Stop(t); code != 130 {
		t.Errorf("exit status after Ctrl-C: %d, want 130", code)
	}
	if log := srv.Output(); !strings.Contains(log, "closed after 12 bytes") {
		t.Errorf("server log lacks the first connection's byte count:\n%s", log)
	}
}

func TestUDPEchoServerWithNc(t *testing.T) {
	srv := scripttest.Start(t, scripttest.Script("udp_echo_server.lua"), "--port", "0")
	// nc -u sends the line as one datagram; -w1 waits a second for the echo
	// (with -q, netcat-openbsd quits before the answer arrives).
	got := peer(t, "ping\n", "nc", "-u", "-w", "1", srv.Host, srv.Port)
	if got != "ping\n" {
		t.Errorf("nc -u got %q, want %q", got, "ping\n")
	}
	srv.Stop(t)
	if log := srv.Output(); !strings.Contains(log, "sent 5 bytes") {
		t.Errorf("server log lacks the datagram:\n%s", log)
	}
}

// socatServer starts socat as an echo server and returns its port.
func socatServer(t *testing.T, proto string) string {
	t.Helper()
	path := testpeer.Path(t, "socat")
	port := freePort(t, proto)
	addr := fmt.Sprintf("%s-LISTEN:%s,bind=127.0.0.1,reuseaddr,fork", strings.ToUpper(proto), port)
	if proto == "udp" {
		addr = fmt.Sprintf("UDP-RECVFROM:%s,bind=127.0.0.1,fork", port)
	}
	cmd := exec.Command(path, addr, "EXEC:cat")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if proto == "tcp" { // wait until it accepts
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("socat did not listen on %s", port)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return port
}

func freePort(t *testing.T, proto string) string {
	t.Helper()
	if proto == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return fmt.Sprint(c.LocalAddr().(*net.UDPAddr).Port)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func TestTCPEchoClientAgainstSocat(t *testing.T) {
	port := socatServer(t, "tcp")
	r := scripttest.Run(t, "", 15*time.Second, scripttest.Script("tcp_echo_client.lua"), "--port", port, "one", "two words")
	if r.Code != 0 || r.Stdout != "one\ntwo words\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = scripttest.Run(t, "from\nstdin\n", 15*time.Second, scripttest.Script("tcp_echo_client.lua"), "--port", port)
	if r.Code != 0 || r.Stdout != "from\nstdin\n" {
		t.Errorf("stdin lines: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

func TestUDPEchoClientAgainstSocat(t *testing.T) {
	port := socatServer(t, "udp")
	r := scripttest.Run(t, "", 15*time.Second, scripttest.Script("udp_echo_client.lua"), "--port", port, "--timeout", "2", "alpha", "beta")
	if r.Code != 0 || r.Stdout != "alpha\nbeta\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

func TestEchoClientsReportRefusal(t *testing.T) {
	port := freePort(t, "tcp")
	r := scripttest.Run(t, "", 15*time.Second, scripttest.Script("tcp_echo_client.lua"), "--port", port, "x")
	want := "tcp_echo_client: cannot connect to 127.0.0.1:" + port + ": connection refused (ECONNREFUSED)\n"
	if r.Code != 1 || r.Stderr != want {
		t.Errorf("exit %d, stderr %q, want 1 and %q", r.Code, r.Stderr, want)
	}
	r = scripttest.Run(t, "", 15*time.Second, scripttest.Script("udp_echo_client.lua"), "--port", freePort(t, "udp"), "x")
	if r.Code != 1 || r.Stderr != "udp_echo_client: connection refused (ECONNREFUSED)\n" {
		t.Errorf("udp: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func TestEchoScriptsHelpAndBadArguments(t *testing.T) {
	for _, s := range []string{"tcp_echo_server.lua", "tcp_echo_client.lua", "udp_echo_server.lua", "udp_echo_client.lua"} {
		r := scripttest.Run(t, "", 15*time.Second, scripttest.Script(s), "--help")
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "usage: "+s) || !strings.Contains(r.Stdout, "--port PORT") {
			t.Errorf("%s --help: exit %d, stdout %q", s, r.Code, r.Stdout)
		}
		r = scripttest.Run(t, "", 15*time.Second, scripttest.Script(s), "--port", "70000")
		if r.Code != 2 || r.Stderr != s+": port 70000 is out of range 0-65535 (try --help)\n" {
			t.Errorf("%s --port 70000: exit %d, stderr %q", s, r.Code, r.Stderr)
		}
		r = scripttest.Run(t, "", 15*time.Second, scripttest.Script(s), "--frobnicate")
		if r.Code != 2 || !strings.Contains(r.Stderr, "unknown option --frobnicate") {
			t.Errorf("%s --frobnicate: exit %d, stderr %q", s, r.Code, r.Stderr)
		}
	}
}

func TestServerReportsPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	r := scripttest.Run(t, "", 15*time.Second, scripttest.Script("tcp_echo_server.lua"), "--port", port)
	want := "tcp_echo_server: cannot bind 127.0.0.1:" + port + ": address already in use (EADDRINUSE)\n"
	if r.Code != 1 || r.Stderr != want {
		t.Errorf("exit %d, stderr %q, want %q", r.Code, r.Stderr, want)
	}
}
