// Package scripttest runs the sockplay binary the way users do, for tests of
// the scripts and the command line: it builds the binary once per test
// process, starts server scripts and waits for their "listening on
// HOST:PORT" line, and stops them at the end of the test.
package scripttest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Main runs a package's tests and then removes the binary Binary built,
// so test runs leave nothing behind in the temporary directory:
//
//	func TestMain(m *testing.M) { os.Exit(scripttest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	return code
}

// Root is the repository's top directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Script is the path of a file under scripts/.
func Script(name string) string { return filepath.Join(Root(), "scripts", name) }

// Binary builds cmd/sockplay (once; with -race when the tests run with it)
// and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sockplay-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sockplay")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/sockplay")
		cmd := exec.Command("go", args...)
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Result is what a finished run printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs sockplay with args and stdin, and waits at most timeout.
func Run(t testing.TB, stdin string, timeout time.Duration, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Dir = Root()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sockplay %s: still running after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), timeout, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sockplay %s: %v", strings.Join(args, " "), err)
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// Server is a running sockplay process that printed "listening on HOST:PORT".
type Server struct {
	Addr string // host:port from the first line
	Host string
	Port string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // everything after the first line
	errb bytes.Buffer
	done chan struct{}
}

// Output returns what the server printed so far after its first line.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// Stderr returns what the server wrote to stderr so far.
func (s *Server) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errb.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start runs sockplay with args, waits (at most 10 s) for the line
// "listening on HOST:PORT" on stdout, and stops the process with SIGINT
// when the test ends.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return StartProgram(t, nil, Binary(t), args...)
}

// StartProgram is Start for another program (lua5.1 running the same
// script, to compare), run in the repository's top directory with env
// added to its environment.
func StartProgram(t testing.TB, env []string, path string, args ...string) *Server {
	t.Helper()
	name := filepath.Base(path)
	cmd := exec.Command(path, args...)
	cmd.Dir = Root()
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = lockedWriter{&s.mu, &s.errb}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		defer close(s.done)
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		first <- line
		io.Copy(lockedWriter{&s.mu, &s.out}, r)
		cmd.Wait()
	}()
	t.Cleanup(func() { s.Stop(t) })
	select {
	case line := <-first:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
		if !ok {
			<-s.done
			t.Fatalf("%s %s: first line %q, want \"listening on HOST:PORT\"\nstderr:\n%s", name, strings.Join(args, " "), line, s.Stderr())
		}
		s.Addr = addr
		i := strings.LastIndexByte(addr, ':')
		s.Host, s.Port = strings.Trim(addr[:i], "[]"), addr[i+1:]
	case <-time.After(10 * time.Second):
		t.Fatalf("%s %s: no \"listening on\" line within 10 s", name, strings.Join(args, " "))
	}
	return s
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop interrupts the server (Ctrl-C) and waits for it to exit, killing it
// after 5 s. It returns the exit code.
func (s *Server) Stop(t testing.TB) int {
	if s.end(syscall.SIGINT) {
		t.Errorf("server did not exit within 5 s of SIGINT\nstderr:\n%s", s.Stderr())
	}
	if s.cmd.ProcessState == nil {
		return -1
	}
	return s.cmd.ProcessState.ExitCode()
}

// end sends sig unless the server has exited, and waits for it to exit,
// killing it after 5 s; it reports whether it had to.
func (s *Server) end(sig syscall.Signal) (killed bool) {
	select {
	case <-s.done:
		return false
	default:
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
		return false
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return true
	}
}

// Wait waits for the server to exit on its own, at most timeout.
func (s *Server) Wait(timeout time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Terminate ends the server with SIGTERM and waits for it: for programs
// that SIGINT does not stop (lua5.1 blocked in LuaSocket, which retries
// its system calls on EINTR).
func (s *Server) Terminate() { s.end(syscall.SIGTERM) }
