package scripts_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// osi_walk.lua against the project's HTTP server, with tcpdump capturing
// alongside: the sizes the walk reads from its own capture (each header,
// the data, the frame) add up, and are the lengths tcpdump sees.
func TestOSIWalk(t *testing.T) {
	tcpdump := testpeer.Path(t, "tcpdump")
	testpeer.Root(t)
	srv := scripttest.Start(t, scripttest.Script("http_server.lua"), "--root", "scripts/testdata/www", "--port", "0")
	file := filepath.Join(t.TempDir(), "walk.pcap")
	stop := testpeer.Tcpdump(t, "-i", "lo", "-w", file, "tcp port "+srv.Port)
	r := scripttest.Run(t, "", 30*time.Second, scripttest.Script("osi_walk.lua"), "http://"+srv.Addr+"/notes.txt")
	stop()
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !regexp.MustCompile(`(?m)^GET /notes.txt from 127.0.0.1:\d+: HTTP/1.1 200 OK, \d+ bytes; \d+ packets captured on lo$`).MatchString(r.Stdout) {
		t.Errorf("no summary line in\n%s", r.Stdout)
	}
	frames := dataFrames(t, tcpdump, file, srv.Port)
	checkWalk(t, r.Stdout, "The request", "GET /notes.txt HTTP/1.1", frames["request"])
	checkWalk(t, r.Stdout, "The response", "HTTP/1.1 200 OK", frames["response"])
}

// Without CAP_NET_RAW, one line says so.
func TestOSIWalkWithoutPrivilege(t *testing.T) {
	_, nobody := scripttest.AsNobody(t, "osi_walk.lua", "lib/args.lua", "lib/http.lua")
	out, code := nobody("osi_walk.lua", "http://127.0.0.1:9/")
	if want := "osi_walk.lua: capturing packets needs CAP_NET_RAW (run sockplay as root)\n"; out != want || code == 0 {
		t.Fatalf("as nobody: %q (exit %d), want %q and exit status 1", out, code, want)
	}
}

// tcpFrame is what tcpdump -e says of a TCP segment with data: the
// frame's length and the data's.
type tcpFrame struct{ frame, data int }

// dataFrames reads file with tcpdump -e and returns the first segment
// with data to the server's port ("request") and from it ("response").
func dataFrames(t *testing.T, tcpdump, file, port string) map[string]tcpFrame {
	t.Helper()
	out, err := exec.Command(tcpdump, "-e", "-nn", "-r", file).Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("tcpdump -r: %v", err)
	}
	frames := map[string]tcpFrame{}
	line := regexp.MustCompile(`length (\d+): [\d.]+\.(\d+) > [\d.]+\.\d+: .* length (\d+)`)
	for _, m := range line.FindAllStringSubmatch(string(out), -1) {
		frame, _ := strconv.Atoi(m[1])
		data, _ := strconv.Atoi(m[3])
		key := "request"
		if m[2] == port {
			key = "response"
		}
		if _, seen := frames[key]; !seen && data > 0 {
			frames[key] = tcpFrame{frame, data}
		}
	}
	if len(frames) != 2 {
		t.Fatalf("tcpdump saw no request and response:\n%s", out)
	}
	return frames
}

// checkWalk finds the block that begins with title in the walk's output
// and checks its sizes against tcpdump's frame.
func checkWalk(t *testing.T, out, title, first string, f tcpFrame) {
	t.Helper()
	i := strings.Index(out, title+": ")
	if i < 0 {
		t.Fatalf("no %q block in\n%s", title, out)
	}
	block := out[i:]
	if j := strings.Index(block, "\n\n"); j > 0 {
		block = block[:j]
	}
	want := []string{
		`^` + title + `: ` + strconv.Itoa(f.data) + ` bytes of HTTP, down .*:`,
		`application  HTTP +` + strconv.Itoa(f.data) + ` bytes  ` + regexp.QuoteMeta(first),
		`transport    \+ TCP header +32 bytes +` + strconv.Itoa(f.data+32) + ` bytes  a segment: ports \d+ > \d+, ACK PSH`,
		`network      \+ IPv4 header +20 bytes +` + strconv.Itoa(f.data+52) + ` bytes  a packet: 127.0.0.1 > 127.0.0.1, TTL 64`,
		`link         \+ Ethernet header +14 bytes +` + strconv.Itoa(f.frame) + ` bytes  a frame: type 0x0800 \(IPv4\)`,
		` ` + strconv.Itoa(f.frame) + ` bytes cross lo`,
		`link         - Ethernet header +14 bytes +` + strconv.Itoa(f.frame-14) + ` bytes`,
		`transport    - TCP header +32 bytes +` + strconv.Itoa(f.data) + ` bytes`,
		`\(66 bytes of headers carried ` + strconv.Itoa(f.data) + ` bytes of data\)`,
	}
	for _, w := range want {
		if !regexp.MustCompile(`(?m)` + w).MatchString(block) {
			t.Errorf("%s: no %q in\n%s", title, w, block)
		}
	}
}
