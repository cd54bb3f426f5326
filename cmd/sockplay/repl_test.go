package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// The REPL without a terminal, through the built binary: no banner, no
// prompts, values printed, errors on stderr, the status says whether one
// happened.
func TestPipedREPL(t *testing.T) {
	stdin := strings.Join([]string{
		"1 + 1",
		"function f()",
		"  return 'multi', 'line'",
		"end",
		"f()",
		"error('boom')",
		"t = spawn(function() print('from a task') end); wait(t)",
		".tasks",
		"'last'",
	}, "\n") + "\n"
	res := scripttest.Run(t, stdin, 30*time.Second)
	wantOut := "2\n\"multi\"\t\"line\"\nfrom a task\n(no tasks running)\n\"last\"\n"
	if res.Stdout != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", res.Stdout, wantOut)
	}
	if res.Stderr != "stdin:1: boom\n" {
		t.Errorf("stderr: %q", res.Stderr)
	}
	if res.Code != 1 {
		t.Errorf("status %d, want 1", res.Code)
	}
	if res := scripttest.Run(t, "x = 1\nx\n", 30*time.Second); res.Code != 0 || res.Stdout != "1\n" || res.Stderr != "" {
		t.Errorf("clean session: %+v", res)
	}
}

// tmuxTerm is sockplay running in a real terminal: a tmux session of its
// own (its own server socket, so tests never collide), typed into with
// send-keys and read with capture-pane.
type tmuxTerm struct {
	t    *testing.T
	tmux string
	sock string
}

var tmuxN atomic.Int32

// startTerm runs sockplay in a new tmux server with HOME and
// XDG_STATE_HOME set to home, and waits for the banner.
func startTerm(t *testing.T, home string) *tmuxTerm {
	t.Helper()
	tm := &tmuxTerm{
		t:    t,
		tmux: testpeer.Path(t, "tmux"),
		sock: fmt.Sprintf("sockplay-test-%d-%d", os.Getpid(), tmuxN.Add(1)),
	}
	bin := scripttest.Binary(t)
	tm.run("-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", "-s", "main", "-c", t.TempDir(),
		"env", "HOME="+home, "XDG_STATE_HOME="+filepath.Join(home, "state"), "TERM=xterm", bin)
	socketPath := strings.TrimSpace(tm.run("display-message", "-p", "#{socket_path}"))
	t.Cleanup(func() {
		exec.Command(tm.tmux, "-L", tm.sock, "kill-server").Run()
		os.Remove(socketPath) // tmux leaves it behind
	})
	tm.run("set-option", "-t", "main", "remain-on-exit", "on")
	tm.waitFor("the banner", func(s string) bool { return strings.Contains(s, "sockplay 0.1.0") && lastLine(s) == ">" })
	return tm
}

func (tm *tmuxTerm) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command(tm.tmux, append([]string{"-L", tm.sock}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// typeText types text literally (no key names).
func (tm *tmuxTerm) typeText(text string) {
	tm.t.Helper()
	tm.run("send-keys", "-t", "main", "-l", text)
}

// keys presses named keys: Enter, Tab, C-c, Up ...
func (tm *tmuxTerm) keys(keys ...string) {
	tm.t.Helper()
	tm.run(append([]string{"send-keys", "-t", "main"}, keys...)...)
}

// line types text and presses Enter.
func (tm *tmuxTerm) line(text string) { tm.t.Helper(); tm.typeText(text); tm.keys("Enter") }

func (tm *tmuxTerm) screen() string {
	tm.t.Helper()
	return tm.run("capture-pane", "-p", "-t", "main")
}

// waitFor polls the screen every 50 ms until cond holds (20 s at most:
// the machine is shared and the binary may be built with -race).
func (tm *tmuxTerm) waitFor(what string, cond func(screen string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tm.screen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (tm *tmuxTerm) waitText(text string) string {
	tm.t.Helper()
	return tm.waitFor(fmt.Sprintf("%q", text), func(s string) bool { return strings.Contains(s, text) })
}

// lastLine is the screen's last non-empty line (the prompt, usually).
func lastLine(screen string) string {
	lines := strings.Split(strings.TrimRight(screen, "\n "), "\n")
	return lines[len(lines)-1]
}

// waitPrompt waits until the last line is exactly want.
func (tm *tmuxTerm) waitPrompt(want string) string {
	tm.t.Helper()
	return tm.waitFor(fmt.Sprintf("last line %q", want), func(s string) bool { return lastLine(s) == want })
}

// eval types a line and waits for want on a line of its own after it, and
// for the prompt: keys typed before it are read by the terminal's line
// discipline, not by liner (a Ctrl-D there would be lost).
func (tm *tmuxTerm) eval(code, want string) {
	tm.t.Helper()
	tm.line(code)
	tm.waitFor(fmt.Sprintf("%q to print %q and the prompt to return", code, want), func(s string) bool {
		i := strings.LastIndex(s, "> "+code+"\n")
		return i >= 0 && strings.Contains(s[i:], "\n"+want+"\n") && lastLine(s) == ">"
	})
}

// port evaluates code that ends in a port number and returns it.
func (tm *tmuxTerm) port(code string) string {
	tm.t.Helper()
	tm.line(code)
	s := tm.waitFor("a port", func(s string) bool {
		i := strings.LastIndex(s, "> "+code+"\n")
		return i >= 0 && regexp.MustCompile(`\n\d{2,5}\n`).MatchString(s[i:]) && lastLine(s) == ">"
	})
	i := strings.LastIndex(s, "> "+code+"\n")
	return strings.TrimSpace(regexp.MustCompile(`\n\d{2,5}\n`).FindString(s[i:]))
}

// nc runs netcat-openbsd against 127.0.0.1:port with input, and returns
// what it printed.
func nc(t *testing.T, port, input string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testpeer.Path(t, "nc"), "-N", "-w", "10", "127.0.0.1", port)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nc 127.0.0.1 %s: %v", port, err)
	}
	return string(out)
}

func TestTerminalContinuation(t *testing.T) {
	tm := startTerm(t, t.TempDir())
	tm.line("function f()")
	tm.waitPrompt(">>")
	tm.line("  return 7")
	tm.waitPrompt(">>")
	tm.line("end")
	tm.waitPrompt(">")
	tm.eval("f()", "7")
	s := tm.screen()
	if !strings.Contains(s, "> function f()\n>>   return 7\n>> end\n> f()\n7\n") {
		t.Errorf("screen:\n%s", s)
	}
	// A real syntax error is reported at once, not continued.
	tm.eval("x = = 1", "stdin:1: syntax error near '='")
}

// Ctrl-C during a blocking accept ends that chunk and brings the prompt
// back (within 2 s: the functional bound, generous for a shared machine);
// the background server answers nc afterwards.
func TestTerminalCtrlCDuringAccept(t *testing.T) {
	tm := startTerm(t, t.TempDir())
	port := tm.port(`srv = sock.listen_tcp("127.0.0.1", 0); port = select(2, srv:getsockname()); port`)
	tm.line(`spawn(function() while true do local c = srv:accept(); c:write("pong\n"); c:close() end end)`)
	tm.waitPrompt(">")
	tm.line(`other = sock.listen_tcp("127.0.0.1", 0); print("accepting"); other:accept()`)
	tm.waitText("\naccepting\n")
	start := time.Now()
	tm.keys("C-c")
	tm.waitFor("interrupted and a new prompt", func(s string) bool {
		return strings.Contains(s, "\ninterrupted\n") && lastLine(s) == ">"
	})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the prompt came back %s after Ctrl-C", d)
	}
	if got := nc(t, port, ""); got != "pong\n" {
		t.Errorf("background server answered %q after Ctrl-C", got)
	}
	tm.eval("1 + 1", "2")
	// Ctrl-C at the prompt clears the line.
	tm.typeText("half a line")
	tm.waitPrompt("> half a line")
	tm.keys("C-c")
	tm.waitFor("an empty prompt", func(s string) bool {
		return strings.HasSuffix(strings.TrimRight(s, "\n"), "> half a line^C\n>") || lastLine(s) == ">"
	})
}

// backgroundPrinter starts a task that prints "background says LINE" for
// the first line a client sends to the port it returns.
func (tm *tmuxTerm) backgroundPrinter() string {
	tm.t.Helper()
	port := tm.port(`trigger = sock.listen_tcp("127.0.0.1", 0); tport = select(2, trigger:getsockname()); tport`)
	tm.line(`spawn(function() local c = trigger:accept(); print("background says " .. c:read_line()); c:close() end)`)
	tm.waitPrompt(">")
	return port
}

// Background output while a line is half typed lands above the prompt,
// and the half-typed line survives, redrawn, and submits as typed.
func TestTerminalBackgroundOutput(t *testing.T) {
	tm := startTerm(t, t.TempDir())
	port := tm.backgroundPrinter()
	tm.typeText("x = 40")
	tm.waitPrompt("> x = 40")
	nc(t, port, "hello\n")
	s := tm.waitFor("the background line above the redrawn prompt", func(s string) bool {
		lines := strings.Split(strings.TrimRight(s, "\n "), "\n")
		return len(lines) >= 2 && lines[len(lines)-2] == "background says hello" && lines[len(lines)-1] == "> x = 40"
	})
	if strings.Count(s, "x = 40") != 1 {
		t.Errorf("the typed text appears more than once:\n%s", s)
	}
	tm.typeText(" + 2")
	tm.waitPrompt("> x = 40 + 2")
	tm.keys("Enter")
	tm.eval("x", "42")
}

// Background output during a Ctrl-R search lands above it and leaves the
// search open: more keys refine it, and Enter runs what it found.
func TestTerminalBackgroundOutputDuringSearch(t *testing.T) {
	tm := startTerm(t, t.TempDir())
	port := tm.backgroundPrinter()
	tm.keys("C-r")
	tm.typeText("tpo")
	tm.waitFor("the search", func(s string) bool {
		return strings.HasPrefix(lastLine(s), "(reverse-i-search)`tpo': trigger = ")
	})
	nc(t, port, "hello\n")
	tm.waitFor("the background line above the search, still open", func(s string) bool {
		lines := strings.Split(strings.TrimRight(s, "\n "), "\n")
		return len(lines) >= 2 && lines[len(lines)-2] == "background says hello" &&
			strings.HasPrefix(lines[len(lines)-1], "(reverse-i-search)`tpo': trigger = ")
	})
	tm.typeText("rt")
	tm.waitFor("the search refined", func(s string) bool {
		return strings.HasPrefix(lastLine(s), "(reverse-i-search)`tport': trigger = ")
	})
	tm.keys("Enter")
	tm.waitFor("the found line to run (a new listener, on a new port)", func(s string) bool {
		return regexp.MustCompile(`\nbackground says hello\n> trigger = .*tport\n\d+\n>$`).MatchString(strings.TrimRight(s, "\n "))
	})
}

func TestTerminalTabCompletion(t *testing.T) {
	tm := startTerm(t, t.TempDir())
	tm.typeText("sock.listen_t")
	tm.keys("Tab")
	tm.waitPrompt("> sock.listen_tcp")
	tm.keys("Enter")
	tm.waitText("\nfunction: sock.listen_tcp\n")

	tm.line("s = sock.tcp()")
	tm.waitPrompt(">")
	tm.typeText("s:getsockn")
	tm.keys("Tab")
	tm.waitPrompt("> s:getsockname")
	tm.typeText("()")
	tm.keys("Enter")
	tm.waitFor("getsockname's values", func(s string) bool { return regexp.MustCompile(`\n"0\.0\.0\.0"\s+0\n`).MatchString(s) })

	// Several matches: the first Tab completes what they share, the
	// second lists them.
	tm.typeText("sock.rea")
	tm.keys("Tab")
	tm.waitPrompt("> sock.read")
	tm.keys("Tab")
	tm.waitFor("the list of matches", func(s string) bool {
		return strings.Contains(s, "sock.read_all") && strings.Contains(s, "sock.read_until") && lastLine(s) == "> sock.read"
	})
	tm.keys("C-c")
	tm.typeText(".wat")
	tm.keys("Tab")
	tm.waitPrompt("> .watch")
	tm.keys("C-c")
	tm.waitPrompt(">")
}

// History is kept in $XDG_STATE_HOME/sockplay/history: a second session
// finds the first one's lines with Up and Ctrl-R. Ctrl-D exits, closing
// every fd.
func TestTerminalHistoryAcrossSessions(t *testing.T) {
	home := t.TempDir()
	first := startTerm(t, home)
	port := first.port(`srv = sock.listen_tcp("127.0.0.1", 0); hist_marker = select(2, srv:getsockname()); hist_marker`)
	first.eval("1 + 1", "2")
	pid := strings.TrimSpace(first.run("display-message", "-p", "-t", "main", "#{pane_pid}"))
	first.keys("C-d")
	waitExit(t, pid)
	if c, err := dialTCP("127.0.0.1:" + port); err == nil {
		c.Close()
		t.Errorf("the listener survived Ctrl-D")
	}
	data, err := os.ReadFile(filepath.Join(home, "state", "sockplay", "history"))
	if err != nil || !strings.Contains(string(data), "hist_marker") {
		t.Fatalf("history file: %v\n%s", err, data)
	}

	second := startTerm(t, home)
	second.keys("Up")
	second.waitPrompt("> 1 + 1")
	second.keys("Up")
	second.waitPrompt(`> srv = sock.listen_tcp("127.0.0.1", 0); hist_marker = select(2, srv:getsockname()); hist_marker`)
	second.keys("C-c")
	second.keys("C-r")
	second.typeText("marker")
	second.waitFor("the reverse search", func(s string) bool {
		return strings.Contains(lastLine(s), "(reverse-i-search)`marker': srv = sock.listen_tcp")
	})
	second.keys("Enter")
	second.waitFor("the found line to run", func(s string) bool {
		return regexp.MustCompile(`hist_marker\n\d+\n>\s*$`).MatchString(strings.TrimRight(s, "\n"))
	})
}

// .watch redraws the table in place: a connection waiting in the
// listener's accept queue shows up (Recv-Q 1), highlighted; a key ends it.
func TestTerminalWatch(t *testing.T) {
	tm := startTerm(t, t.TempDir())
	port := tm.port(`srv = sock.listen_tcp("127.0.0.1", 0); port = select(2, srv:getsockname()); port`)
	tm.line(".watch")
	listenRow := regexp.MustCompile(`(?m)^\d+\s+tcp\s+LISTEN\s+(\d+)\s+\d+\s+127\.0\.0\.1:` + port + `\s.*srv, repl`)
	tm.waitFor("the listener in the table", func(s string) bool {
		m := listenRow.FindStringSubmatch(s)
		return strings.Contains(s, ".watch  ") && m != nil && m[1] == "0"
	})

	// A client that connects and stays: the kernel completes the
	// handshake and queues the connection until someone accepts it.
	ctx, cancel := context.WithCancel(context.Background())
	client := exec.CommandContext(ctx, testpeer.Path(t, "nc"), "127.0.0.1", port)
	stdin, _ := client.StdinPipe()
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cancel(); client.Wait() }()

	highlighted := false
	tm.waitFor("Recv-Q 1 on the listener", func(s string) bool {
		if esc := tm.run("capture-pane", "-e", "-p", "-t", "main"); strings.Contains(esc, "\x1b[7m1") {
			highlighted = true
		}
		m := listenRow.FindStringSubmatch(s)
		return m != nil && m[1] == "1"
	})
	// The highlight lasts one frame (0.5 s); polling every 50 ms sees it.
	deadline := time.Now().Add(2 * time.Second)
	for !highlighted && time.Now().Before(deadline) {
		highlighted = strings.Contains(tm.run("capture-pane", "-e", "-p", "-t", "main"), "\x1b[7m")
		time.Sleep(50 * time.Millisecond)
	}
	if !highlighted {
		t.Errorf("the change was not highlighted")
	}
	if n := strings.Count(tm.screen(), ".watch  "); n != 1 {
		t.Errorf("%d frames on the screen, want 1 redrawn in place:\n%s", n, tm.screen())
	}
	tm.keys("q")
	tm.waitPrompt(">")
	tm.eval("srv:accept() ~= nil", "true")
}

func dialTCP(addr string) (io.Closer, error) {
	return net.DialTimeout("tcp", addr, 5*time.Second)
}

// waitExit waits until process pid has exited (gone, or a zombie: tmux
// does not always reap it at once).
func waitExit(t *testing.T, pid string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return
		}
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sockplay (pid %s) still running 20 s after Ctrl-D", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
