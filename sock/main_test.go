//go:build linux

package sock_test

// Shared test machinery: the leak check in TestMain and the helpers every
// test uses to open loopback sockets that close themselves, to wait for a
// goroutine to park in the poller and to ask ss(8) about our sockets.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sockplay/internal/testpeer"
	"sockplay/sock"
)

var (
	any4 = netip.MustParseAddrPort("127.0.0.1:0")
	any6 = netip.MustParseAddrPort("[::1]:0")
)

// ioTimeout bounds every blocking operation on a test socket, so that a bug
// fails the test instead of hanging it.
const ioTimeout = 5 * time.Second

// TestMain checks that the package's tests leave no descriptor and no
// goroutine behind.
func TestMain(m *testing.M) {
	// Go's poller (an epoll fd and an eventfd) is created on first use and
	// lives as long as the process: start it before taking the baseline.
	warm := sock.NewTable()
	if s, err := warm.Open(context.Background(), sock.TCP); err == nil {
		s.Close()
	} else {
		fmt.Fprintln(os.Stderr, "warm-up:", err)
		os.Exit(2)
	}
	fds0 := openFDs()
	g0 := runtime.NumGoroutine()

	code := m.Run()
	if code == 0 {
		if err := checkLeaks(fds0, g0); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: leak check:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// openFDs maps each open descriptor to what it links to. The descriptor
// ReadDir uses for /proc/self/fd is gone by the time it returns.
func openFDs() map[int]string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	out := map[int]string{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out[fd] = target
		}
	}
	return out
}

// checkLeaks waits up to 2 s for goroutines to finish and descriptors to
// close, then reports what is left over.
func checkLeaks(fds0 map[int]string, g0 int) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		fds := openFDs()
		g := runtime.NumGoroutine()
		var extra []string
		for fd, target := range fds {
			if fds0[fd] != target {
				extra = append(extra, fmt.Sprintf("%d -> %s", fd, target))
			}
		}
		if len(extra) == 0 && len(fds) == len(fds0) && g <= g0 {
			return nil
		}
		if time.Now().After(deadline) {
			sort.Strings(extra)
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			return fmt.Errorf("%d fds before, %d after (new: %v); %d goroutines before, %d after:\n%s",
				len(fds0), len(fds), extra, g0, g, buf[:n])
		}
		time.Sleep(10 * time.Millisecond) // a bounded retry: goroutines exit on their own time
	}
}

// env is one test's table and context. The table must be empty when the
// test's cleanups have run.
type env struct {
	t   testing.TB
	tbl *sock.Table
	ctx context.Context
}

func newEnv(t testing.TB) *env {
	t.Helper()
	tbl := sock.NewTable()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	// Registered first, so it runs after the cleanups that close sockets.
	t.Cleanup(func() {
		cancel()
		if n := tbl.Len(); n != 0 {
			var fds []int
			for _, s := range tbl.Sockets() {
				fds = append(fds, s.FD)
				s.Close()
			}
			t.Errorf("%d sockets left open in the table after the test: fds %v", n, fds)
		}
	})
	return &env{t: t, tbl: tbl, ctx: ctx}
}

// own gives s the test's timeout and closes it when the test ends.
func (e *env) own(s *sock.Socket) *sock.Socket {
	s.SetTimeout(ioTimeout)
	e.t.Cleanup(func() {
		if !s.Closed() {
			s.Close()
		}
	})
	return s
}

func (e *env) open(k sock.Kind) *sock.Socket {
	e.t.Helper()
	s, err := e.tbl.Open(e.ctx, k)
	if err != nil {
		e.t.Fatalf("Open(%s): %v", k, err)
	}
	return e.own(s)
}

func loopback(k sock.Kind) netip.AddrPort {
	if k.IPv6() {
		return any6
	}
	return any4
}

// bound opens a socket bound to a loopback port the kernel picks and
// returns it with its address.
func (e *env) bound(k sock.Kind) (*sock.Socket, netip.AddrPort) {
	e.t.Helper()
	s := e.open(k)
	if err := s.Bind(loopback(k)); err != nil {
		e.t.Fatalf("Bind(%s): %v", loopback(k), err)
	}
	a, err := s.LocalAddr()
	if err != nil || a.Port() == 0 {
		e.t.Fatalf("LocalAddr after bind = %v, %v", a, err)
	}
	return s, a
}

func (e *env) listener(k sock.Kind, backlog int) (*sock.Socket, netip.AddrPort) {
	e.t.Helper()
	l, a := e.bound(k)
	if err := l.Listen(backlog); err != nil {
		e.t.Fatalf("Listen(%d): %v", backlog, err)
	}
	return l, a
}

func (e *env) dial(k sock.Kind, a netip.AddrPort) *sock.Socket {
	e.t.Helper()
	c := e.open(k)
	if err := c.Connect(e.ctx, a); err != nil {
		e.t.Fatalf("Connect(%s): %v", a, err)
	}
	return c
}

func (e *env) accept(l *sock.Socket) *sock.Socket {
	e.t.Helper()
	s, _, err := l.Accept(e.ctx)
	if err != nil {
		e.t.Fatalf("Accept: %v", err)
	}
	return e.own(s)
}

// pair returns the two ends of a fresh loopback TCP connection.
func (e *env) pair(k sock.Kind) (client, server *sock.Socket) {
	e.t.Helper()
	l, a := e.listener(k, 1)
	client = e.dial(k, a)
	server = e.accept(l)
	if err := l.Close(); err != nil {
		e.t.Fatalf("closing the listener: %v", err)
	}
	return client, server
}

func needIPv6(t testing.TB) {
	t.Helper()
	data, err := os.ReadFile("/proc/net/if_inet6")
	if err != nil || !strings.Contains(string(data), "00000000000000000000000000000001") {
		t.Skip("no IPv6 loopback (::1) in this environment")
	}
}

// wantErr checks that err is an *sock.Error with the given op and code.
func wantErr(t testing.TB, err error, op, code string) *sock.Error {
	t.Helper()
	var se *sock.Error
	if !errors.As(err, &se) {
		t.Fatalf("error = %v (%T), want a *sock.Error %s %s", err, err, op, code)
	}
	if se.Op != op || se.Code != code {
		t.Fatalf("error = %q (op %q, code %q), want op %q, code %q", err, se.Op, se.Code, op, code)
	}
	if sock.Code(err) != code {
		t.Fatalf("sock.Code(%v) = %q, want %q", err, sock.Code(err), code)
	}
	return se
}

// poll waits up to 10 s for cond, which looks at state the kernel announces
// to no one (a queue length, a TCP state, a goroutine parked in the poller).
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if i < 50 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond) // a poll interval, not a wait for readiness
		}
	}
}

// waitBlocked returns once a goroutine is parked in the poller (state "IO
// wait") inside a function whose stack mentions every needle. It proves a
// wake-up test wakes a waiting operation, not one that had not begun.
func waitBlocked(t testing.TB, needles ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	poll(t, fmt.Sprintf("a goroutine blocked in %v", needles), func() bool {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			head, _, _ := strings.Cut(g, "\n")
			if !strings.Contains(head, "[IO wait") {
				continue
			}
			all := true
			for _, nd := range needles {
				all = all && strings.Contains(g, nd)
			}
			if all {
				return true
			}
		}
		return false
	})
}

// testFunc is the name the stack shows for the top-level test function.
func testFunc(t testing.TB) string {
	name, _, _ := strings.Cut(t.Name(), "/")
	return "sock_test." + name + "."
}

// ssSock is one line of ss -H output.
type ssSock struct {
	State        string // ss's name: LISTEN, ESTAB, UNCONN; "" with a state filter
	RecvQ, SendQ int
	Local, Peer  string
	Rest         string // process and extended information
	Line         string
}

var (
	reUser  = regexp.MustCompile(`pid=(\d+),fd=(\d+)`)
	reInode = regexp.MustCompile(`\bino:(\d+)`)
)

// HasFD reports whether ss names this process holding the socket as fd.
func (s ssSock) HasFD(fd int) bool {
	for _, m := range reUser.FindAllStringSubmatch(s.Rest, -1) {
		if m[1] == strconv.Itoa(os.Getpid()) && m[2] == strconv.Itoa(fd) {
			return true
		}
	}
	return false
}

// Inode is the ino: field of ss -e, or 0.
func (s ssSock) Inode() uint64 {
	m := reInode.FindStringSubmatch(s.Rest)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// runSS runs ss -H with args and parses its lines. A query with a state
// filter (ss ... state time-wait) prints no State column: say so with
// stateColumn false.
func runSS(t testing.TB, stateColumn bool, args ...string) []ssSock {
	t.Helper()
	path := testpeer.Path(t, "ss")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-H"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ss %v: %v: %s", args, err, ee.Stderr)
		}
		t.Fatalf("ss %v: %v", args, err)
	}
	var socks []ssSock
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var s ssSock
		s.Line = line
		if stateColumn {
			s.State, f = f[0], f[1:]
		}
		if len(f) < 4 {
			t.Fatalf("ss %v: cannot parse line %q", args, line)
		}
		var err1, err2 error
		s.RecvQ, err1 = strconv.Atoi(f[0])
		s.SendQ, err2 = strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("ss %v: queue columns of %q do not parse", args, line)
		}
		s.Local, s.Peer = f[2], f[3]
		s.Rest = strings.Join(f[4:], " ")
		socks = append(socks, s)
	}
	return socks
}

// ssFind returns the one line whose local (and, when peer is not "",
// peer) address match.
func ssFind(t testing.TB, socks []ssSock, local, peer string) ssSock {
	t.Helper()
	var found []ssSock
	for _, s := range socks {
		if s.Local == local && (peer == "" || s.Peer == peer) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		var lines []string
		for _, s := range socks {
			lines = append(lines, s.Line)
		}
		t.Fatalf("ss: %d lines with local %s peer %q, want 1; output:\n%s", len(found), local, peer, strings.Join(lines, "\n"))
	}
	return found[0]
}

// snapEntry returns fd's entry in a fresh snapshot.
func snapEntry(t testing.TB, tbl *sock.Table, fd int) sock.Entry {
	t.Helper()
	e, ok := sock.Find(tbl.Snapshot(), fd)
	if !ok {
		t.Fatalf("fd %d is not in the snapshot", fd)
	}
	if e.Socket == nil {
		t.Fatalf("fd %d: snapshot entry %+v has no socket information", fd, e)
	}
	return e
}
