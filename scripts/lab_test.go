//go:build linux

package scripts_test

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockplay/internal/labtest"
	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
	"sockplay/sock/lab"
)

// runLab runs a lab script and checks that it left nothing behind.
func runLab(t *testing.T, timeout time.Duration, args ...string) scripttest.Result {
	t.Helper()
	w := labtest.Look(t)
	r := scripttest.Run(t, "", timeout, args...)
	// The child's namespaces carry its pid, which is gone: none may stay.
	for _, line := range strings.Split(lsNetns(t), "\n") {
		if strings.HasPrefix(line, "sockplay-") && !labAlive(line) {
			t.Errorf("a namespace outlived its sockplay: %s", line)
		}
	}
	w.Check(t, 0)
	return r
}

func lsNetns(t *testing.T) string {
	out, err := exec.Command(testpeer.Path(t, "ip"), "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	return string(out)
}

// labAlive reports whether the process a namespace's name carries runs.
func labAlive(name string) bool {
	f := strings.Split(name, "-")
	pid, err := strconv.Atoi(f[1])
	return err == nil && syscall.Kill(pid, 0) == nil
}

func TestLabTransparentProxyScript(t *testing.T) {
	testpeer.Need(t, "curl")
	r := runLab(t, 60*time.Second, scripttest.Script("lab_transparent_proxy.lua"))
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	wantAll(t, "output", r.Stdout,
		"client$ curl -sS -i http://server/",
		"HTTP/1.1 200 OK",
		"Via: 1.1 sockplay-transparent-proxy",
		// The server saw the router (the proxy), not the client.
		"hello from the server: you are 10.0.2.1:",
		"server: GET / from 10.0.2.1:",
		"redirect in eth0 tcp 80 -> :3128",
		"curl exited with status 0",
	)
	// The proxy's log names the client and the original destination.
	if !regexp.MustCompile(`proxy:  10\.0\.1\.2:\d+ -> 10\.0\.2\.2:80 \[server\] "GET / HTTP/1\.1" 200 \d+`).MatchString(r.Stdout) {
		t.Errorf("no proxy log line with the original destination:\n%s", r.Stdout)
	}
	if !regexp.MustCompile(`(?m)^\d+ +tcp +LISTEN .* router +0\.0\.0\.0:3128 `).MatchString(r.Stdout) {
		t.Errorf("fds() does not show the proxy's listener in the router:\n%s", r.Stdout)
	}

	r = runLab(t, 60*time.Second, scripttest.Script("lab_transparent_proxy.lua"), "--block", "server")
	if !strings.Contains(r.Stdout, "HTTP/1.1 403 Forbidden") || !strings.Contains(r.Stdout, "blocked (server)") || strings.Contains(r.Stdout, "server: GET") {
		t.Errorf("--block server: the proxy should refuse, the server hear nothing:\n%s", r.Stdout)
	}
}

func TestLabTCPvsUDPScript(t *testing.T) {
	r := runLab(t, 90*time.Second, scripttest.Script("lab_tcp_vs_udp.lua"), "--delay", "0.02", "--loss", "0.05", "--kib", "256", "--datagrams", "400")
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	m := regexp.MustCompile(`TCP  262144 of 262144 bytes arrived in [\d.]+ s, in order; (\d+) segments retransmitted; rtt ([\d.]+) ms`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no TCP summary:\n%s", r.Stdout)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("no retransmissions at 5%% loss:\n%s", r.Stdout)
	}
	if rtt, _ := strconv.ParseFloat(m[2], 64); rtt < 40 {
		t.Errorf("rtt %.1f ms across 20 ms each way; want at least 40", rtt)
	}
	if rows := regexp.MustCompile(`(?m)^ *\d+\.\d\ds +\d+ KiB +[\d.]+ms +\d+ +\d+$`).FindAllString(r.Stdout, -1); len(rows) < 2 {
		t.Errorf("the TCP table has %d rows:\n%s", len(rows), r.Stdout)
	}
	u := regexp.MustCompile(`UDP  (\d+) arrived, (\d+) lost`).FindStringSubmatch(r.Stdout)
	if u == nil {
		t.Fatalf("no UDP summary:\n%s", r.Stdout)
	}
	got, lost := atoi(u[1]), atoi(u[2])
	if got+lost != 400 || lost == 0 || lost > 60 {
		t.Errorf("UDP %d arrived, %d lost of 400 at 5%% loss", got, lost)
	}
	bad := scripttest.Run(t, "", 20*time.Second, scripttest.Script("lab_tcp_vs_udp.lua"), "--loss", "1.5")
	if bad.Code != 2 || !strings.Contains(bad.Stderr, "--loss must be between 0 and 1") {
		t.Errorf("--loss 1.5: exit %d, stderr %q", bad.Code, bad.Stderr)
	}
	bad = scripttest.Run(t, "", 20*time.Second, scripttest.Script("lab_tcp_vs_udp.lua"), "--rate", "fast")
	if bad.Code != 2 || !strings.Contains(bad.Stderr, `rate "fast"`) {
		t.Errorf("--rate fast: exit %d, stderr %q", bad.Code, bad.Stderr)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func TestLabLoadBalancerScript(t *testing.T) {
	testpeer.Need(t, "curl")
	r := runLab(t, 90*time.Second, scripttest.Script("lab_load_balancer.lua"))
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	served := regexp.MustCompile(`request +(\d+): 200, served by (web\d)`).FindAllStringSubmatch(r.Stdout, -1)
	if len(served) != 12 {
		t.Fatalf("%d of 12 requests served:\n%s", len(served), r.Stdout)
	}
	for _, m := range served {
		if n := atoi(m[1]); n > 4 && n <= 10 && m[2] == "web2" {
			t.Errorf("request %d went to web2 while its link was down:\n%s", n, r.Stdout)
		}
	}
	wantAll(t, "output", r.Stdout, "-- link balancer-web2 pulled out", "backend web2:80 marked down for 1s: connect timed out after 0.5s", "backend web2:80 is up again", "served: web1 5, web2 2, web3 5")
}

// transparent_proxy.lua run as its own program on a lab's router, in
// front of http_server.lua on the server, with curl on the client.
func TestTransparentProxyScriptOnARouter(t *testing.T) {
	curl := testpeer.Path(t, "curl")
	w := labtest.Look(t)
	defer w.Check(t, 0)
	l, err := lab.New()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, _ := l.AddHost("client", false)
	router, _ := l.AddHost("router", true)
	server, _ := l.AddHost("server", false)
	inside, _ := l.AddLink(client, router, lab.LinkOptions{})
	if _, err := l.AddLink(router, server, lab.LinkOptions{}); err != nil {
		t.Fatal(err)
	}
	start := func(h *lab.Host, args ...string) (*bytes.Buffer, func()) {
		cmd := exec.Command(scripttest.Binary(t), args...)
		cmd.Dir = scripttest.Root()
		var out bytes.Buffer
		cmd.Stderr = &out
		stdout, _ := cmd.StdoutPipe()
		if err := h.Start(cmd); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		if !strings.HasPrefix(line, "listening on ") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%v in %s: first line %q\n%s", args, h.Name, line, out.String())
		}
		var log bytes.Buffer
		done := make(chan struct{})
		go func() { r.WriteTo(&log); close(done) }()
		return &log, func() {
			cmd.Process.Signal(syscall.SIGINT)
			<-done
			cmd.Wait()
		}
	}
	_, stopWeb := start(server, scripttest.Script("http_server.lua"), "--host", "0.0.0.0", "--port", "80", "--root", scripttest.Script("testdata/www"))
	defer stopWeb()
	plog, stopProxy := start(router, scripttest.Script("transparent_proxy.lua"), "--port", "3128", "--block", "ads.example")
	if err := router.Redirect(inside.B, 80, 3128); err != nil {
		t.Fatal(err)
	}
	curlIn := func(args ...string) string {
		cmd := exec.Command(curl, append([]string{"-sS", "--max-time", "10"}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := client.Start(cmd); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		return out.String()
	}
	page := curlIn("-i", "http://server/notes.txt")
	blocked := curlIn("-i", "-H", "Host: www.ads.example", "http://server/")
	direct := curlIn("-i", "http://"+netip.MustParsePrefix(inside.B.Addr.String()).Addr().String()+":3128/")
	stopProxy()
	if !strings.Contains(page, "HTTP/1.1 200 OK") || !strings.Contains(page, "Via: 1.1 sockplay-transparent-proxy") {
		t.Errorf("curl through the unseen proxy:\n%s", page)
	}
	if !strings.Contains(blocked, "403 Forbidden") {
		t.Errorf("a blocked Host:\n%s", blocked)
	}
	if !strings.Contains(direct, "400 Bad Request") || !strings.Contains(direct, "transparent proxy") {
		t.Errorf("straight to the proxy's port:\n%s", direct)
	}
	for _, re := range []string{
		`10\.0\.1\.2:\d+ -> 10\.0\.2\.2:80 \[server\] "GET /notes\.txt HTTP/1\.1" 200 \d+ `,
		`10\.0\.1\.2:\d+ -> 10\.0\.2\.2:80 \[www\.ads\.example\] "GET / HTTP/1\.1" 403 \d+ .*blocked \(ads\.example\)`,
		`10\.0\.1\.2:\d+ came straight to the proxy, not redirected: 400`,
	} {
		if !regexp.MustCompile(re).MatchString(plog.String()) {
			t.Errorf("the proxy's log lacks %s:\n%s", re, plog.String())
		}
	}
}

// Ctrl-C takes the lab down; SIGKILL cannot, but the next lab removes
// what the killed process left. An uncaught error ends the script, and the
// lab with it.
func TestLabCleanUpAfterSignals(t *testing.T) {
	r := runLab(t, 20*time.Second, "-e", `net = assert(lab.new()); net:link(net:host("a"), net:router("r"), {delay = 0.01}); error("boom")`)
	if r.Code != 1 || !strings.Contains(r.Stderr, "boom") {
		t.Errorf("an uncaught error: exit %d, %q", r.Code, r.Stderr)
	}
	w := labtest.Look(t)
	const build = `net = assert(lab.new())
local a, r, b = net:host("a"), net:router("r"), net:host("b")
net:link(a, r); net:link(r, b, {delay = 0.01})
a:spawn(function() a:run{argv = {"sleep", "60"}} end)
local l = sock.listen_tcp("127.0.0.1", 0)
print("listening on 127.0.0.1:" .. select(2, l:getsockname()))
sleep(60)`
	script := filepath.Join(t.TempDir(), "lab_wait.lua")
	if err := os.WriteFile(script, []byte(build), 0o644); err != nil {
		t.Fatal(err)
	}
	s := scripttest.Start(t, script)
	if n := len(labtest.Namespaces(t, s.Pid())); n != 3 {
		t.Fatalf("%d namespaces while the lab runs, want 3", n)
	}
	if code := s.Stop(t); code != 130 {
		t.Errorf("exit %d after Ctrl-C, want 130\n%s", code, s.Stderr())
	}
	w.Check(t, s.Pid())

	s = scripttest.Start(t, script)
	pid := s.Pid()
	time.Sleep(200 * time.Millisecond) // the sleep inside a starts
	syscall.Kill(pid, syscall.SIGKILL)
	s.Wait(5 * time.Second)
	// (A lab started meanwhile by another package's tests may already
	// have removed them: that is the clean-up at work too.)
	if n := len(labtest.Namespaces(t, pid)); n != 3 && n != 0 {
		t.Fatalf("%d namespaces after SIGKILL, want the 3 it could not remove", n)
	}
	r = scripttest.Run(t, "", 20*time.Second, "-e", `assert(lab.new()):close()`)
	if r.Code != 0 {
		t.Fatalf("a new lab: exit %d: %s", r.Code, r.Stderr)
	}
	w.Check(t, pid)
	if out, _ := exec.Command("pgrep", "-f", "^sleep 60$").Output(); len(out) > 0 {
		t.Errorf("the program the killed sockplay ran in its lab still runs: %s", out)
	}
}

// Each lab script, and the proxy, answers --help without root and without
// making anything.
func TestLabScriptsHelp(t *testing.T) {
	for _, s := range []string{"lab_transparent_proxy.lua", "lab_tcp_vs_udp.lua", "lab_load_balancer.lua", "transparent_proxy.lua"} {
		r := scripttest.Run(t, "", 15*time.Second, scripttest.Script(s), "--help")
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "usage: "+s) || !strings.Contains(r.Stdout, "--help") {
			t.Errorf("%s --help: exit %d\n%s%s", s, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// Without the privilege, the lab says so in one line, and a lab script
// stops there.
func TestLabWithoutRoot(t *testing.T) {
	dir, nobody := scripttest.AsNobody(t, "lab_tcp_vs_udp.lua", "lib/args.lua")
	out, _ := nobody("-e", "print(lab.new())")
	if out != "nil\tthe lab needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run sockplay as root)\tEPERM\n" {
		t.Errorf("lab.new() as nobody printed %q", out)
	}
	out, code := nobody(filepath.Join(dir, "lab_tcp_vs_udp.lua"))
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "CAP_NET_ADMIN") {
		t.Errorf("lab_tcp_vs_udp.lua as nobody: exit %d, %q", code, out)
	}
}
