package repl

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWatchFrameHighlightsChanges(t *testing.T) {
	head := []string{"FD", "KIND", "STATE", "RECV-Q", "SEND-Q", "LOCAL", "PEER", "IN/OUT", "OWNER", "AGE"}
	first := [][]string{head,
		{"5", "tcp", "LISTEN", "0", "128", "127.0.0.1:8080", "*", "0/0", "srv, repl", "1.0s"},
	}
	second := [][]string{head,
		{"5", "tcp", "LISTEN", "1", "128", "127.0.0.1:8080", "*", "0/0", "srv, repl", "1.5s"},
		{"6", "tcp", "ESTABLISHED", "0", "0", "127.0.0.1:40000", "127.0.0.1:8080", "0/0", "c, repl", "0ms"},
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	text, keys := renderWatchFrame(first, nil, false, 120, 40, now)
	if strings.Contains(text, hiOn) {
		t.Errorf("first frame highlights:\n%q", text)
	}
	text, _ = renderWatchFrame(second, keys, true, 120, 40, now)
	lines := strings.Split(text, "\n")
	if !strings.Contains(lines[2], hiOn+"1"+hiOff) {
		t.Errorf("the grown accept queue is not highlighted: %q", lines[2])
	}
	if strings.Count(lines[2], hiOn) != 1 {
		t.Errorf("more than the changed cell highlighted (AGE changes every frame): %q", lines[2])
	}
	if !strings.Contains(lines[3], hiOn+"6"+hiOff) || !strings.Contains(lines[3], hiOn+"ESTABLISHED"+hiOff) {
		t.Errorf("a new row is not highlighted: %q", lines[3])
	}
	// Narrow terminals cut lines instead of wrapping them, which would
	// break the redraw in place; short ones cut rows.
	text, _ = renderWatchFrame(second, keys, true, 30, 4, now)
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		plain := strings.NewReplacer(hiOn, "", hiOff, "").Replace(l)
		if len(plain) > 29 {
			t.Errorf("line wider than the terminal: %q", plain)
		}
	}
	if !strings.Contains(text, "... 2 more") {
		t.Errorf("short terminal: rows not cut:\n%s", text)
	}
}

// fakeScreen stands in for the terminal: its keys come from the test.
type fakeScreen struct {
	mu       sync.Mutex
	waits    int
	pressAt  int // WaitKey reports a key on this call
	held     bool
	released bool
}

func (f *fakeScreen) WaitKey(ctx context.Context, d time.Duration) bool {
	f.mu.Lock()
	f.waits++
	n := f.waits
	f.mu.Unlock()
	if n >= f.pressAt {
		return true
	}
	select {
	case <-time.After(10 * time.Millisecond):
	case <-ctx.Done():
	}
	return false
}

func (f *fakeScreen) Size() (int, int) { return 24, 120 }

func (f *fakeScreen) Hold() func() {
	f.mu.Lock()
	f.held = true
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.released = true
		f.mu.Unlock()
	}
}

// .watch redraws in place (cursor up, clear) until a key, and holds
// background output meanwhile.
func TestWatchRedrawsUntilKey(t *testing.T) {
	scr := &fakeScreen{pressAt: 3}
	r, out, _ := newSession(t, []string{`srv = sock.listen_tcp("127.0.0.1", 0)`, ".watch", `"after"`}, Options{Screen: scr})
	run(t, r)
	text := out.String()
	if n := strings.Count(text, ".watch  "); n != 3 {
		t.Errorf("%d frames, want 3:\n%q", n, text)
	}
	if n := strings.Count(text, "\x1b[3A\r\x1b[J"); n != 2 {
		t.Errorf("%d redraws in place (up 3 lines, clear), want 2:\n%q", n, text)
	}
	if !strings.Contains(text, hideCursor) || !strings.Contains(text, showCursor) {
		t.Errorf("cursor not hidden and shown again:\n%q", text)
	}
	if !scr.held || !scr.released {
		t.Errorf("background output held %v, released %v", scr.held, scr.released)
	}
	if !strings.Contains(text, "> \"after\"\n\"after\"\n") {
		t.Errorf("session did not go on after the watch:\n%q", text)
	}
}

// Ctrl-C stops a watch as it stops a chunk.
func TestWatchInterrupt(t *testing.T) {
	scr := &fakeScreen{pressAt: 1 << 30}
	r, out, _ := newSession(t, []string{".watch", `"after"`}, Options{Screen: scr})
	go func() {
		waitFor(t, "the watch to run", 10*time.Second, r.running)
		r.Interrupt()
	}()
	run(t, r)
	if !strings.Contains(out.String(), "> \"after\"\n\"after\"\n") {
		t.Errorf("session did not go on after Ctrl-C in .watch:\n%q", out.String())
	}
}
