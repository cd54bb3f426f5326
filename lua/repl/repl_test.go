package repl

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sockplay/internal/leakcheck"
	"strings"
	"sync"
	"testing"
	"time"

	"sockplay/lua"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata")

// syncBuffer collects everything the session prints, from any goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scriptReader feeds lines and writes each prompt and line into the
// transcript, the way a terminal would show them.
type scriptReader struct {
	lines []string
	echo  io.Writer
	// before is called with the index of each line before it is returned.
	before func(i int)
	n      int
}

func (s *scriptReader) ReadLine(prompt string) (string, error) {
	if s.n >= len(s.lines) {
		return "", io.EOF
	}
	if s.before != nil {
		s.before(s.n)
	}
	line := s.lines[s.n]
	s.n++
	if s.echo != nil {
		fmt.Fprintf(s.echo, "%s%s\n", prompt, line)
	}
	return line, nil
}

// newSession is a fresh host and REPL whose stdout and stderr both go to
// one transcript. The host is closed, and fds and goroutines checked, at
// the end of the test.
func newSession(t *testing.T, lines []string, opts Options) (*REPL, *syncBuffer, *scriptReader) {
	t.Helper()
	base := takeBaseline()
	out := &syncBuffer{}
	h := lua.New(lua.Options{Stdin: strings.NewReader(""), Stdout: out, Stderr: out})
	in := &scriptReader{lines: lines, echo: out}
	t.Cleanup(func() {
		h.Close()
		base.check(t)
	})
	return New(h, in, opts), out, in
}

// Transcripts: testdata/*.txt hold sessions as a terminal shows them.
// Lines starting with "> " or ">> " (or just ">" or ">>") are typed; the
// rest is what sockplay prints; lines starting with "#" are comments. The
// test types the input into a non-interactive session and compares the
// whole transcript, with ports and fd numbers scrubbed.
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var comments, inputs []string
			var want strings.Builder
			for _, l := range strings.SplitAfter(string(data), "\n") {
				if l == "" {
					continue
				}
				switch {
				case strings.HasPrefix(l, "#"):
					comments = append(comments, l)
				case isInput(strings.TrimSuffix(l, "\n")):
					line := strings.TrimSuffix(l, "\n")
					line = strings.TrimPrefix(strings.TrimPrefix(line, ">"), ">")
					inputs = append(inputs, strings.TrimPrefix(line, " "))
					want.WriteString(l)
				default:
					want.WriteString(l)
				}
			}
			r, out, _ := newSession(t, inputs, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r.Run(ctx)
			got := scrubOutput(out.String())
			if *update {
				os.WriteFile(file, []byte(strings.Join(comments, "")+got), 0o644)
				return
			}
			if got != want.String() {
				t.Errorf("transcript differs (go test ./lua/repl -run TestTranscripts -update rewrites it)\n--- got:\n%s\n--- want:\n%s", got, want.String())
			}
		})
	}
}

func isInput(l string) bool {
	return l == ">" || l == ">>" || strings.HasPrefix(l, "> ") || strings.HasPrefix(l, ">> ")
}

var (
	portRE = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|0\.0\.0\.0):\d+`)
	fdRE   = regexp.MustCompile(`fd[= ]\d+`)
)

// scrubOutput scrubs every line but the typed ones.
func scrubOutput(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if !isInput(strings.TrimSuffix(l, "\n")) {
			lines[i] = scrub(l)
		}
	}
	return strings.Join(lines, "")
}

// scrub hides what changes from run to run: ephemeral ports and fd numbers.
func scrub(s string) string {
	s = portRE.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasSuffix(m, ":0") {
			return m
		}
		return m[:strings.LastIndexByte(m, ':')] + ":PORT"
	})
	return fdRE.ReplaceAllStringFunc(s, func(m string) string { return m[:3] + "N" })
}

// baseline is leakcheck's, with this package's grace period.
type baseline struct{ leakcheck.Baseline }

func takeBaseline() baseline { return baseline{leakcheck.Take()} }

func (b baseline) check(t *testing.T) {
	t.Helper()
	b.Check(t, 5*time.Second)
}
