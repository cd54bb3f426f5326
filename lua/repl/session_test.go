package repl

import (
	"bufio"
	"context"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func run(t *testing.T, r *REPL) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := r.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("session still running after 30 s")
	}
	return code
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  int
	}{
		{"no error", []string{"x = 1", "x + 1"}, 0},
		{"runtime error", []string{"error('x')", "1"}, 1},
		{"syntax error", []string{"x = = 1"}, 1},
		{"unknown command", []string{".nope"}, 1},
		{"os.exit", []string{"os.exit(3)", "print('not here')"}, 3},
		{"background task failed", []string{"t = spawn(function() error('bg') end)", "wait(t)"}, 1},
		{"unfinished at end of input", []string{"function f()"}, 1},
		{"interrupted is no error", []string{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, out, _ := newSession(t, tt.lines, Options{})
			if got := run(t, r); got != tt.want {
				t.Errorf("status %d, want %d\n%s", got, tt.want, out.String())
			}
			if strings.Contains(out.String(), "not here") {
				t.Errorf("ran past os.exit:\n%s", out.String())
			}
		})
	}
}

// waitFor polls cond every 10 ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mainWaiting reports whether the prompt's chunk is blocked in call.
func mainWaiting(r *REPL, call string) bool {
	for _, row := range r.h.TaskRows()[1:] {
		if row[1] == Owner && strings.HasPrefix(row[3], call) {
			return true
		}
	}
	return false
}

// Ctrl-C during a blocking accept ends that chunk only, within the
// functional bound (generous: the machine is shared); the background
// server still answers afterwards, and the session goes on.
func TestInterruptBlockingAccept(t *testing.T) {
	lines := []string{
		`srv = sock.listen_tcp("127.0.0.1", 0)`,
		`port = select(2, srv:getsockname()); port`,
		`spawn(function() while true do local c = srv:accept(); c:write("still serving\n"); c:close() end end)`,
		`other = sock.listen_tcp("127.0.0.1", 0)`,
		`other:accept()`,
		`"after"`,
		`.exit`,
	}
	var (
		mu            sync.Mutex
		interruptedAt time.Time
	)
	r, out, in := newSession(t, lines, Options{})
	in.before = func(i int) {
		if i != 5 {
			return
		}
		mu.Lock()
		at := interruptedAt
		mu.Unlock()
		if at.IsZero() {
			t.Error("the accept ended without Ctrl-C")
			return
		}
		if d := time.Since(at); d > 2*time.Second {
			t.Errorf("the prompt came back %s after Ctrl-C", d)
		}
		port := regexp.MustCompile(`(?m)^(\d+)$`).FindString(out.String())
		if reply := dialLine(t, "127.0.0.1:"+port); reply != "still serving" {
			t.Errorf("background server answered %q after the interrupt", reply)
		}
	}
	go func() {
		waitFor(t, "the prompt's accept to block", 10*time.Second, func() bool { return mainWaiting(r, "accept") })
		mu.Lock()
		interruptedAt = time.Now()
		mu.Unlock()
		if !r.Interrupt() {
			t.Error("Interrupt found nothing running")
		}
	}()
	if code := run(t, r); code != 0 {
		t.Errorf("status %d", code)
	}
	if text := out.String(); !strings.Contains(text, "> other:accept()\ninterrupted\n> \"after\"\n\"after\"\n") {
		t.Errorf("want interrupted, then the session going on:\n%s", text)
	}
	if r.Interrupt() {
		t.Error("Interrupt at the prompt says it stopped something")
	}
}

func dialLine(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Errorf("dial %s: %v", addr, err)
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Errorf("read from %s: %v", addr, err)
	}
	return strings.TrimSuffix(line, "\n")
}

// A busy loop never blocks, so only the VM's context check can stop it.
func TestInterruptBusyLoop(t *testing.T) {
	r, out, _ := newSession(t, []string{"while true do end", "'next'"}, Options{})
	go func() {
		waitFor(t, "the loop to run", 10*time.Second, func() bool { return mainWaiting(r, "") })
		time.Sleep(20 * time.Millisecond) // let it spin
		r.Interrupt()
	}()
	run(t, r)
	if !strings.Contains(out.String(), "> while true do end\ninterrupted\n> 'next'\n\"next\"\n") {
		t.Errorf("transcript:\n%s", out.String())
	}
}

// A __tostring that never returns is stopped too: printing is part of
// the chunk.
func TestInterruptPrinting(t *testing.T) {
	r, out, _ := newSession(t, []string{`setmetatable({}, {__tostring = function() while true do end end})`, "'next'"}, Options{})
	go func() {
		waitFor(t, "the printing to run", 10*time.Second, r.running)
		time.Sleep(50 * time.Millisecond)
		r.Interrupt()
	}()
	run(t, r)
	if !strings.Contains(out.String(), "interrupted\n> 'next'\n\"next\"\n") {
		t.Errorf("transcript:\n%s", out.String())
	}
}

func TestComplete(t *testing.T) {
	r, _, _ := newSession(t, []string{`s = sock.tcp()`, `conf = {port = 1, host = "h"}`}, Options{})
	run(t, r)
	tests := []struct {
		line     string
		head     string
		contains []string
		exact    []string
	}{
		{line: "sock.re", contains: []string{"sock.read", "sock.read_all", "sock.recvfrom"}},
		{line: "x = sock.listen_t", head: "x = ", exact: []string{"sock.listen_tcp"}},
		{line: "s:getso", exact: []string{"s:getsockname"}},
		{line: "s.f", exact: []string{"s.fd"}},
		{line: "conf.", exact: []string{"conf.host", "conf.port"}},
		{line: "pri", exact: []string{"print"}},
		{line: "fun", exact: []string{"function"}},
		{line: ".wa", exact: []string{".watch"}},
		{line: ".", contains: []string{".fds", ".help", ".tour", ".watch"}},
		{line: `print("sock.re`, head: `print("`},
		{line: "nosuch.x", head: ""},
	}
	for _, tt := range tests {
		head, got, tail := r.Complete(tt.line, len(tt.line))
		if tail != "" {
			t.Errorf("%q: tail %q", tt.line, tail)
		}
		if tt.head != "" && head != tt.head {
			t.Errorf("%q: head %q, want %q", tt.line, head, tt.head)
		}
		if tt.exact != nil && strings.Join(got, " ") != strings.Join(tt.exact, " ") {
			t.Errorf("%q: completions %q, want %q", tt.line, got, tt.exact)
		}
		for _, c := range tt.contains {
			found := false
			for _, g := range got {
				found = found || g == c
			}
			if !found {
				t.Errorf("%q: completions %q lack %q", tt.line, got, c)
			}
		}
		if tt.exact == nil && tt.contains == nil && len(got) > 0 {
			t.Errorf("%q: want no completions, got %q", tt.line, got)
		}
	}
	// The cursor in the middle keeps the text after it.
	head, got, tail := r.Complete("sock.listen_t(x)", len("sock.listen_t"))
	if head != "" || tail != "(x)" || len(got) != 1 || got[0] != "sock.listen_tcp" {
		t.Errorf("mid-line: %q %q %q", head, got, tail)
	}
}

// The tour runs straight through without a terminal and shows what it
// promises: both ends in the table, the line arriving, the states changing.
func TestTour(t *testing.T) {
	r, out, _ := newSession(t, []string{".tour", ".exit"}, Options{})
	if code := run(t, r); code != 0 {
		t.Errorf("status %d\n%s", code, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"[1/8]", "> srv = sock.listen_tcp(\"127.0.0.1\", 0)", "LISTEN",
		"conn, repl", "c, task", "ESTABLISHED", "\"hi from the client\"", "client read: hello",
		"CLOSE_WAIT", "FIN_WAIT2", "TIME_WAIT", "That was the tour.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("tour output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "tour stopped") || regexp.MustCompile(`stdin:\d+: `).MatchString(text) {
		t.Errorf("tour failed:\n%s", text)
	}
}

// .fds marks sockplay's sockets with the variables that hold them, numbers
// too unless they are named like counters, and aligns its columns.
func TestFdsNames(t *testing.T) {
	r, out, _ := newSession(t, []string{
		`srv = sock.listen_tcp("127.0.0.1", 0)`,
		`lfd = sock.open("udp")`,
		`n = lfd`,
		`.fds`,
		`.fds all`,
	}, Options{})
	run(t, r)
	text := out.String()
	table := text[strings.Index(text, "> .fds\n")+len("> .fds\n") : strings.Index(text, "> .fds all")]
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf(".fds: want a header and 2 rows:\n%s", table)
	}
	for _, want := range []string{"srv, repl", "lfd, repl"} {
		if !strings.Contains(table, want) {
			t.Errorf(".fds lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "n, repl") {
		t.Errorf(".fds names a counter-like variable:\n%s", table)
	}
	// Every column starts at the same offset in every line.
	for _, col := range []string{"STATE", "LOCAL", "OWNER"} {
		at := strings.Index(lines[0], col)
		for _, l := range lines[1:] {
			if len(l) <= at || l[at-1] != ' ' || l[at] == ' ' {
				t.Errorf("column %s not aligned at %d:\n%s", col, at, table)
			}
		}
	}
	all := text[strings.Index(text, "> .fds all\n"):]
	if !regexp.MustCompile(`(?m)^0 `).MatchString(all) {
		t.Errorf(".fds all lacks fd 0:\n%s", all)
	}
}
