//go:build linux

package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// --trace --capture: the calls and the packets they cause, one stream in
// time order, each packet with its fd and call, the counters at the end;
// --pcap writes the same packets for tcpdump -r.
func TestCaptureFlags(t *testing.T) {
	testpeer.Root(t)
	tcpdump := testpeer.Path(t, "tcpdump")
	file := filepath.Join(t.TempDir(), "run.pcap")
	var out, errb bytes.Buffer
	status := run([]string{"--trace", "--capture", "--pcap", file, "testdata/capture_exchange.lua"}, strings.NewReader(""), &out, &errb)
	if status != 0 || out.String() != "hello world\n" {
		t.Fatalf("status %d, stdout %q\nstderr:\n%s", status, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
	var packets, order []string
	for _, l := range lines {
		switch {
		case strings.Contains(l, " IP 127.0.0.1."):
			packets = append(packets, l)
			tcpFlags := regexp.MustCompile(`Flags \[(\S+)\]`).FindStringSubmatch(l)
			_, call, _ := strings.Cut(l, "): ")
			order = append(order, "packet "+tcpFlags[1]+" "+call)
		case strings.Contains(l, "connect("), strings.Contains(l, "write("), strings.Contains(l, "close("):
			order = append(order, strings.Fields(l)[1][:strings.Index(strings.Fields(l)[1], "(")])
		}
	}
	got := strings.Join(order, "\n")
	// The client's calls and what they send, in the order they happened;
	// the server task's calls come in between, and a close can come with
	// the other side's FIN before it: check the pairs that must hold.
	for _, pair := range [][2]string{
		{"connect", "packet S connect"},
		{"packet S connect", "packet S. kernel"},
		{"write", "packet P. write"},
	} {
		i, j := strings.Index(got, pair[0]), strings.Index(got, pair[1])
		if i < 0 || j < 0 || i > j {
			t.Errorf("%q should come before %q in:\n%s", pair[0], pair[1], got)
		}
	}
	if n := strings.Count(got, "packet F. close"); n != 2 {
		t.Errorf("%d FINs sent by close, want 2:\n%s", n, got)
	}
	if strings.Count(got, "packet P. write") != 2 {
		t.Errorf("want two data segments sent by write:\n%s", got)
	}
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^capture: 10 packets shown, \d+ received by the filter, 0 dropped by the kernel$`).MatchString(last) {
		t.Errorf("last line %q, want the counters", last)
	}
	// The packet lines are tcpdump's for the pcap written alongside.
	read, err := exec.Command(tcpdump, "-nn", "-r", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	theirs := strings.Split(strings.TrimRight(string(read), "\n"), "\n")
	if len(theirs) != len(packets) {
		t.Fatalf("tcpdump -r read %d packets, %d shown", len(theirs), len(packets))
	}
	for i, p := range packets {
		mine, _, _ := strings.Cut(p[16:], "  -- ")
		if mine != theirs[i][16:] {
			t.Errorf("packet %d:\n\t%s\ntcpdump -r:\n\t%s", i+1, mine, theirs[i][16:])
		}
	}
}

func TestCaptureFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
		root bool
	}{
		{[]string{"--capture=port x", "-e", ""}, "sockplay: capture: filter: expected a port number at position 6: \"port x\"\n", false},
		{[]string{"--pcap"}, "sockplay: '--pcap' needs argument\n" + usage, false},
		{[]string{"--pcap", "/nonexistent/dir/x.pcap", "-e", ""}, "sockplay: --pcap: /nonexistent/dir/x.pcap: no such file or directory\n", false},
		{[]string{"--iface", "nosuch0", "--capture", "-e", ""}, "sockplay: capture: no interface named \"nosuch0\" (there are: ", true},
	} {
		if tt.root {
			testpeer.Root(t)
		}
		var out, errb bytes.Buffer
		status := run(tt.args, strings.NewReader(""), &out, &errb)
		if status != 1 || !strings.HasPrefix(errb.String(), tt.want) || strings.Count(errb.String(), "\n") != strings.Count(tt.want, "\n")+boolInt(tt.root) {
			t.Errorf("%q: status %d, stderr %q, want %q", tt.args, status, errb.String(), tt.want)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Without CAP_NET_RAW, one line says so.
func TestCaptureWithoutPrivilege(t *testing.T) {
	_, nobody := scripttest.AsNobody(t)
	for _, args := range [][]string{{"--capture", "-e", "print('not here')"}, {"-e", "print(capture.open())"}} {
		out, _ := nobody(args...)
		want := "sockplay: capture: capturing packets needs CAP_NET_RAW (run sockplay as root)\n"
		if args[0] == "-e" {
			want = "nil\tcapturing packets needs CAP_NET_RAW (run sockplay as root)\tEPERM\n"
		}
		if string(out) != want {
			t.Errorf("%q as nobody: %q, want %q", args, out, want)
		}
	}
}

// .capture in a real terminal: packet lines appear above the prompt while
// a line is half typed, and the line survives.
func TestTerminalCapture(t *testing.T) {
	testpeer.Root(t)
	tm := startTerm(t, t.TempDir())
	tm.line(".capture on")
	tm.waitText("capture on lo: the packets of this session's sockets appear as they pass")
	port := tm.port(`srv = sock.listen_tcp("127.0.0.1", 0); port = select(2, srv:getsockname()); port`)
	tm.line(`spawn(function() local c = srv:accept(); c:write("pong\n"); c:close() end)`)
	tm.waitPrompt(">")
	tm.typeText("x = 40")
	tm.waitPrompt("> x = 40")
	if got := nc(t, port, ""); got != "pong\n" {
		t.Fatalf("nc got %q", got)
	}
	s := tm.waitFor("packet lines above the redrawn prompt", func(s string) bool {
		// (Long lines wrap: the terminal is 120 columns wide.)
		return strings.Contains(s, "Flags [F.]") && strings.Contains(s, ": close") && lastLine(s) == "> x = 40"
	})
	for _, want := range []string{"." + port + ": Flags [S]", ".", port + " > 127.0.0.1.", ": write", ": kernel"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q on the screen:\n%s", want, s)
		}
	}
	if strings.Count(s, "x = 40") != 1 {
		t.Errorf("the typed text appears more than once:\n%s", s)
	}
	tm.typeText(" + 2")
	tm.keys("Enter")
	tm.eval("x", "42")
	tm.line(".capture off")
	tm.waitFor("the counters", func(s string) bool {
		return regexp.MustCompile(`capture: \d+ packets shown, \d+ received by the filter, 0 dropped by the kernel`).MatchString(s)
	})
}
