package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/peterh/liner"
	"golang.org/x/sys/unix"

	"sockplay/lua"
	"sockplay/lua/repl"
)

// runREPL runs the read-eval-print loop: with liner at a terminal, or line
// by line without prompts when stdin is a pipe or a file.
func runREPL(h *lua.Host, stdin io.Reader, stdout, stderr io.Writer, tty bool) int {
	if tty && isTerminal(os.Stdout) && liner.TerminalSupported() {
		return runTerminal(h)
	}
	return runPlain(h, stdin)
}

// runPlain is the REPL for a pipe or a test: no prompt, no editing, lines
// run in order, background output is written as it comes, and the status
// says whether an error happened. Ctrl-C (SIGINT) stops everything: there
// is no prompt to return to.
func runPlain(h *lua.Host, stdin io.Reader) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			cancel()
			h.Interrupt()
		case <-ctx.Done():
		}
	}()
	in := newPlainReader(ctx, stdin)
	code := repl.New(h, in, repl.Options{}).Run(ctx)
	if code == 130 {
		fmt.Fprintln(h.Stderr(), "sockplay: interrupted")
	}
	return code
}

// plainReader reads lines on its own goroutine so that Ctrl-C can end a
// session that waits for input from a pipe.
type plainReader struct {
	ctx   context.Context
	lines chan lineOrErr
}

type lineOrErr struct {
	line string
	err  error
}

func newPlainReader(ctx context.Context, r io.Reader) *plainReader {
	p := &plainReader{ctx: ctx, lines: make(chan lineOrErr)}
	go func() {
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if err != nil && line == "" {
				select {
				case p.lines <- lineOrErr{err: err}:
				case <-ctx.Done():
				}
				return
			}
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			select {
			case p.lines <- lineOrErr{line: line}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

func (p *plainReader) ReadLine(string) (string, error) {
	select {
	case l := <-p.lines:
		return l.line, l.err
	case <-p.ctx.Done():
		return "", io.EOF
	}
}

// terminal is the REPL's side of a real terminal: liner for the prompt,
// and the console hook that prints background output above it.
type terminal struct {
	ln       *liner.State
	cooked   liner.ModeApplier // the terminal as the shell left it
	raw      liner.ModeApplier // as liner wants it between prompts
	mu       sync.Mutex        // one writer to the screen at a time
	atPrompt bool              // liner's Prompt is waiting for keys
	held     bool              // .watch draws: background output waits
	queue    []byte
	echo     *echo // what liner draws, on its way to the terminal
	history  *historyFile

	restoreOnce sync.Once
}

func runTerminal(h *lua.Host) int {
	cooked, _ := liner.TerminalMode()
	t := &terminal{cooked: cooked}
	e, err := startEcho(os.Stdout, &t.mu)
	if err != nil {
		fmt.Fprintf(h.Stderr(), "sockplay: %v\n", err)
		return 1
	}
	t.echo = e
	t.ln = liner.NewLiner()
	t.raw, _ = liner.TerminalMode()
	defer t.restore()

	r := repl.New(h, t, repl.Options{Interactive: true, Screen: t, History: t.addHistory})
	t.ln.SetCtrlCAborts(true)
	t.ln.SetTabCompletionStyle(liner.TabPrints)
	t.ln.SetWordCompleter(r.Complete)
	t.history = openHistory(historyPath(), t.ln, h.Stderr())

	h.Stdout().SetHook(t.hook(t.echo.term))
	h.Stderr().SetHook(t.hook(os.Stderr))
	defer h.Stdout().SetHook(nil)
	defer h.Stderr().SetHook(nil)

	// Ctrl-C arrives as SIGINT while a chunk runs (at the prompt liner reads
	// it as a key): it cancels the chunk, and the tasks go on. The handler
	// is in place before the first chunk can run.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == os.Interrupt {
					r.Interrupt()
					continue
				}
				// Terminal gone or asked to stop: leave the terminal as it
				// was, keep the history, close every fd.
				t.restore()
				h.Close()
				os.Exit(128 + int(s.(syscall.Signal)))
			case <-done:
				return
			}
		}
	}()
	if t.cooked != nil {
		t.cooked.ApplyMode()
	}
	return r.Run(context.Background())
}

func (t *terminal) restore() {
	t.restoreOnce.Do(func() {
		t.mu.Lock()
		t.atPrompt = false
		t.mu.Unlock()
		t.ln.Close()
		t.echo.stop()
		if t.cooked != nil {
			t.cooked.ApplyMode()
		}
		t.history.trim()
	})
}

// ReadLine is liner's Prompt, with the terminal in liner's mode only while
// it waits: a chunk runs with the terminal as the shell had it, so Ctrl-C
// is SIGINT and io.read reads lines.
func (t *terminal) ReadLine(prompt string) (string, error) {
	if t.raw != nil {
		t.raw.ApplyMode()
	}
	t.mu.Lock()
	t.atPrompt = true
	t.mu.Unlock()
	line, err := t.ln.Prompt(prompt)
	t.echo.sync() // what liner drew is on the screen before what follows
	t.mu.Lock()
	t.atPrompt = false
	t.mu.Unlock()
	if t.cooked != nil {
		t.cooked.ApplyMode()
	}
	switch {
	case errors.Is(err, liner.ErrPromptAborted):
		return "", repl.ErrInterrupted
	case err != nil:
		return "", err
	}
	return line, nil
}

func (t *terminal) addHistory(line string) {
	t.ln.AppendHistory(line)
	t.history.add(line)
}

// hook prints what tasks write while the prompt waits above it: clear the
// prompt's row, write, and draw liner's row again from the bytes liner
// drew it with (see echo). Outside the prompt writes go straight through.
func (t *terminal) hook(w io.Writer) func(p []byte) bool {
	return func(p []byte) bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.held {
			if len(t.queue) < 1<<20 {
				t.queue = append(t.queue, p...)
			}
			return true
		}
		if !t.atPrompt {
			return false
		}
		buf := make([]byte, 0, len(p)+len(t.echo.row)+8)
		buf = append(buf, "\r\x1b[K"...)
		buf = append(buf, p...)
		if len(p) > 0 && p[len(p)-1] != '\n' {
			buf = append(buf, '\n') // the prompt needs a line of its own
		}
		w.Write(append(buf, t.echo.row...))
		return true
	}
}

// Hold, WaitKey and Size make the terminal a repl.Screen for .watch.

func (t *terminal) Hold() func() {
	t.mu.Lock()
	t.held = true
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.held = false
		if len(t.queue) > 0 {
			t.echo.term.Write(t.queue)
			t.queue = nil
		}
	}
}

func (t *terminal) WaitKey(ctx context.Context, d time.Duration) bool {
	if t.raw != nil && t.cooked != nil {
		t.raw.ApplyMode() // keys one by one, not echoed; Ctrl-C still SIGINT
		defer t.cooked.ApplyMode()
	}
	deadline := time.Now().Add(d)
	for ctx.Err() == nil {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: 0, Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(min(left, 50*time.Millisecond)/time.Millisecond)+1)
		if err != nil && err != unix.EINTR {
			return false
		}
		if n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
			var buf [64]byte
			unix.Read(0, buf[:]) // the key (or an escape sequence) is spent
			return true
		}
	}
	return false
}

func (t *terminal) Size() (rows, cols int) {
	ws, err := unix.IoctlGetWinsize(1, unix.TIOCGWINSZ)
	if err != nil {
		return 24, 80
	}
	return int(ws.Row), int(ws.Col)
}

// historyPath is $XDG_STATE_HOME/sockplay/history, else
// ~/.local/state/sockplay/history; "" when neither can be found.
func historyPath() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "sockplay", "history")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".local", "state", "sockplay", "history")
}

// historyFile appends every line as it is typed, so two sessions at once
// both keep theirs and a crash loses nothing; at the end it is cut to
// liner's limit.
type historyFile struct {
	path   string
	last   string
	warned bool
	warn   io.Writer
}

func openHistory(path string, ln *liner.State, warn io.Writer) *historyFile {
	hf := &historyFile{path: path, warn: warn}
	if path == "" {
		return hf
	}
	if f, err := os.Open(path); err == nil {
		ln.ReadHistory(f)
		f.Close()
	}
	return hf
}

func (hf *historyFile) add(line string) {
	if hf.path == "" || line == hf.last {
		return
	}
	hf.last = line
	err := os.MkdirAll(filepath.Dir(hf.path), 0o700)
	if err == nil {
		var f *os.File
		f, err = os.OpenFile(hf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			_, err = f.WriteString(line + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil && !hf.warned {
		hf.warned = true
		fmt.Fprintf(hf.warn, "history not saved: %v\n", err)
	}
}

// trim keeps the newest liner.HistoryLimit lines.
func (hf *historyFile) trim() {
	if hf == nil || hf.path == "" {
		return
	}
	data, err := os.ReadFile(hf.path)
	if err != nil {
		return
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) <= liner.HistoryLimit+1 {
		return
	}
	keep := strings.Join(lines[len(lines)-liner.HistoryLimit-1:], "")
	tmp := hf.path + ".tmp"
	if os.WriteFile(tmp, []byte(keep), 0o600) == nil {
		os.Rename(tmp, hf.path)
	}
}
