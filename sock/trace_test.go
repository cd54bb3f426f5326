//go:build linux

package sock_test

// The trace: events rendered the way strace prints calls, hex dumps, and
// no cost for tracing when no tracer is installed.

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"sockplay/sock"
)

// recorder collects the events of a table's tracer.
type recorder struct {
	mu     sync.Mutex
	events []sock.Event
}

func record(t testing.TB, tbl *sock.Table) *recorder {
	r := &recorder{}
	tbl.SetTracer(func(ev sock.Event) {
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	})
	t.Cleanup(func() { tbl.SetTracer(nil) })
	return r
}

// take returns the events so far, rendered, and forgets them.
func (r *recorder) take() ([]string, []sock.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	lines := make([]string, len(evs))
	for i, ev := range evs {
		lines[i] = ev.String()
	}
	return lines, evs
}

func wantLines(t testing.TB, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("trace:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestTraceRefusedConnect(t *testing.T) {
	e := newEnv(t)
	_, closed := e.bound(sock.TCP) // bound, not listening: refuses
	rec := record(t, e.tbl)
	if !e.tbl.Tracing() {
		t.Fatal("Tracing() = false with a tracer installed")
	}
	c := e.open(sock.TCP)
	err := c.Connect(e.ctx, closed)
	wantErr(t, err, "connect", "ECONNREFUSED")
	fd := itoa(c.FD)
	lines, evs := rec.take()
	wantLines(t, lines,
		"socket(tcp) = "+fd,
		"connect("+fd+"<TCP>, 127.0.0.1:"+itoa(int(closed.Port()))+") = -1 ECONNREFUSED (connection refused)",
	)
	ev := evs[1]
	if ev.FD != c.FD || ev.Kind != sock.TCP || ev.Call != "connect" || ev.Ret != -1 || ev.Err != err || ev.Time.IsZero() || ev.Dur < 0 {
		t.Errorf("event %+v", ev)
	}
	if evs[0].FD != -1 || evs[0].Ret != c.FD {
		t.Errorf("socket event FD %d Ret %d, want -1 and %d", evs[0].FD, evs[0].Ret, c.FD)
	}
	format := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} connect\(` + fd + `<TCP>, 127\.0\.0\.1:\d+\) = -1 ECONNREFUSED \(connection refused\) <\d+\.\d{6}>$`)
	if !format.MatchString(ev.Format()) {
		t.Errorf("Format() = %q", ev.Format())
	}

	e.tbl.SetTracer(nil)
	if e.tbl.Tracing() {
		t.Fatal("Tracing() = true after SetTracer(nil)")
	}
	c.Close()
	if lines, _ := rec.take(); len(lines) != 0 {
		t.Errorf("events with the tracer removed: %q", lines)
	}
}

func TestTraceStream(t *testing.T) {
	e := newEnv(t)
	l, laddr := e.bound(sock.TCP)
	rec := record(t, e.tbl)
	lfd := itoa(l.FD)

	if err := l.Listen(16); err != nil {
		t.Fatal(err)
	}
	c := e.open(sock.TCP)
	cfd := itoa(c.FD)
	if err := c.Connect(e.ctx, laddr); err != nil {
		t.Fatal(err)
	}
	caddr, _ := c.LocalAddr()
	s := e.accept(l)
	sfd := itoa(s.FD)
	if err := c.SetOption("nodelay", 1); err != nil {
		t.Fatal(err)
	}
	lines, _ := rec.take()
	wantLines(t, lines,
		"listen("+lfd+"<TCP>, 16) = 0",
		"socket(tcp) = "+cfd,
		"connect("+cfd+"<TCP>, "+laddr.String()+") = 0",
		"accept("+lfd+"<TCP>, "+caddr.String()+") = "+sfd,
		"setsockopt("+cfd+"<TCP>, nodelay, 1) = 0",
	)

	msg := []byte("hello\n")
	if _, err := c.Write(e.ctx, msg); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'J' // the event holds a copy
	buf := make([]byte, 64)
	if _, err := s.Read(e.ctx, buf); err != nil {
		t.Fatal(err)
	}
	long := []byte("abcdefghijklmnopqrstuvwxyz0123456789ABCD")
	if _, err := c.Write(e.ctx, long); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Read(e.ctx, buf[:40]); n != 40 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	odd := []byte("\x00\x01\t\r\"\\\xff")
	if _, err := c.Write(e.ctx, odd); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(e.ctx, buf); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown("w"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(e.ctx, buf); err == nil {
		t.Fatal("no EOF")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	lines, evs := rec.take()
	wantLines(t, lines,
		`write(`+cfd+`<TCP>, "hello\n", 6) = 6`,
		`read(`+sfd+`<TCP>, 64) = 6 "hello\n"`,
		`write(`+cfd+`<TCP>, "abcdefghijklmnopqrstuvwxyz012345"..., 40) = 40`,
		`read(`+sfd+`<TCP>, 40) = 40 "abcdefghijklmnopqrstuvwxyz012345"...`,
		`write(`+cfd+`<TCP>, "\x00\x01\t\r\"\\\xff", 7) = 7`,
		`read(`+sfd+`<TCP>, 64) = 7 "\x00\x01\t\r\"\\\xff"`,
		`shutdown(`+cfd+`<TCP>, w) = 0`,
		`read(`+sfd+`<TCP>, 64) = -1 EOF (end of stream)`,
		`close(`+cfd+`<TCP>) = 0`,
		`close(`+cfd+`<TCP>) = -1 EBADF (bad file descriptor (closed))`,
	)
	if string(evs[0].Data) != "hello\n" || string(evs[1].Data) != "hello\n" {
		t.Errorf("event data %q %q", evs[0].Data, evs[1].Data)
	}
	if evs[7].Data != nil {
		t.Errorf("an EOF carries data %q", evs[7].Data)
	}
}

func TestTraceTimeoutAndOwner(t *testing.T) {
	e := newEnv(t)
	_, s := e.pair(sock.TCP)
	s.Owner = "reader-task"
	rec := record(t, e.tbl)
	s.SetTimeout(1) // a nanosecond: times out at once
	if _, err := s.Read(e.ctx, make([]byte, 10)); err == nil {
		t.Fatal("no timeout")
	}
	lines, evs := rec.take()
	wantLines(t, lines, "read("+itoa(s.FD)+"<TCP>, 10) = -1 ETIMEDOUT (timed out)")
	if evs[0].Owner != "reader-task" {
		t.Errorf("event owner %q", evs[0].Owner)
	}
}

func TestTraceDatagrams(t *testing.T) {
	e := newEnv(t)
	r, raddr := e.bound(sock.UDP)
	w, waddr := e.bound(sock.UDP)
	rec := record(t, e.tbl)
	rfd, wfd := itoa(r.FD), itoa(w.FD)

	if _, err := w.SendTo(e.ctx, []byte("0123456789"), raddr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if n, _, size, err := r.RecvFrom(e.ctx, buf); n != 4 || size != 10 || err != nil {
		t.Fatalf("RecvFrom = %d %d %v", n, size, err)
	}
	if _, err := w.SendTo(e.ctx, nil, raddr); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.RecvFrom(e.ctx, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := w.SendTo(e.ctx, []byte("0123456789"), raddr); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(e.ctx, buf); err == nil {
		t.Fatal("truncated Read without EMSGSIZE")
	}
	lines, _ := rec.take()
	wantLines(t, lines,
		`sendto(`+wfd+`<UDP>, "0123456789", 10, `+raddr.String()+`) = 10`,
		`recvfrom(`+rfd+`<UDP>, 4) = 4 "0123" from `+waddr.String()+` [truncated: datagram of 10 bytes]`,
		`sendto(`+wfd+`<UDP>, "", 0, `+raddr.String()+`) = 0`,
		`recvfrom(`+rfd+`<UDP>, 4) = 0 from `+waddr.String(),
		`sendto(`+wfd+`<UDP>, "0123456789", 10, `+raddr.String()+`) = 10`,
		// Read reports the truncation as its error; the event has the note.
		`read(`+rfd+`<UDP>, 4) = 4 "0123" [truncated: datagram of 10 bytes]`,
	)
}

func TestHexDump(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		want string
	}{
		{nil, ""},
		{[]byte("hello\n"), "0000  68 65 6c 6c 6f 0a                                 hello.\n"},
		{[]byte("0123456789abcdef\x00\x7f\xffZ"),
			"0000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  0123456789abcdef\n" +
				"0010  00 7f ff 5a                                       ...Z\n"},
		{[]byte("0123456789abcdef"), "0000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  0123456789abcdef\n"},
	} {
		if got := sock.HexDump(tc.data); got != tc.want {
			t.Errorf("HexDump(%q) =\n%q\nwant\n%q", tc.data, got, tc.want)
		}
	}
}

// With no tracer an operation allocates nothing for the trace. The budgets
// are what the poller path itself allocates: nothing for a stream's write
// and read (each side of a socket reuses its wait state), and for
// datagrams the closures handed to syscall.RawConn and the addresses. They
// were measured with go1.26 and may need a new measurement (go test -bench
// . -benchmem) when the compiler's escape analysis changes. Building a
// trace event's arguments on the untraced path adds one or two to each
// operation.
func TestNoTraceAllocations(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	u, uaddr := e.bound(sock.UDP)
	// A write and the read of all it wrote: one segment, one read.
	stream := func(size int) func() {
		out, in := make([]byte, size), make([]byte, size)
		return func() {
			c.Write(e.ctx, out)
			for got := 0; got < size; {
				n, err := s.Read(e.ctx, in[got:])
				if err != nil {
					t.Fatal(err)
				}
				got += n
			}
		}
	}
	dout, din := make([]byte, 64), make([]byte, 4096)
	dgram := func() {
		u.SendTo(e.ctx, dout, uaddr)
		if _, _, _, err := u.RecvFrom(e.ctx, din); err != nil {
			t.Fatal(err)
		}
	}
	measure := func() map[string]float64 {
		return map[string]float64{
			"write+read 64":   testing.AllocsPerRun(100, stream(64)),
			"write+read 4096": testing.AllocsPerRun(100, stream(4096)),
			"sendto+recvfrom": testing.AllocsPerRun(100, dgram),
		}
	}
	untraced := measure()
	budget := map[string]float64{"write+read 64": 0, "write+read 4096": 0, "sendto+recvfrom": 7}
	for op, n := range untraced {
		if n > budget[op] {
			t.Errorf("untraced %s: %v allocations, budget %v", op, n, budget[op])
		}
	}
	if untraced["write+read 4096"] != untraced["write+read 64"] {
		t.Errorf("untraced allocations depend on the length (is it rendered?): %v", untraced)
	}
	record(t, e.tbl)
	traced := measure()
	for op, n := range traced {
		if n <= untraced[op] {
			t.Errorf("%s: %v allocations traced, %v untraced; tracing must show up when on", op, n, untraced[op])
		}
	}
	t.Logf("allocations per operation pair: untraced %v, traced %v", untraced, traced)
}

func TestTraceDescriber(t *testing.T) {
	e := newEnv(t)
	r, raddr := e.bound(sock.UDP)
	w, waddr := e.bound(sock.UDP)
	// A describer knows its protocol's payloads and leaves the rest quoted.
	w.SetDescriber(func(p []byte) string {
		if strings.HasPrefix(string(p), "Q:") {
			return "question " + string(p[2:])
		}
		return ""
	})
	r.SetDescriber(func(p []byte) string { return "answer of " + itoa(len(p)) + " bytes" })
	rec := record(t, e.tbl)
	for _, msg := range []string{"Q:who", "plain"} {
		if _, err := w.SendTo(e.ctx, []byte(msg), raddr); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := r.RecvFrom(e.ctx, make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
	}
	w.SetDescriber(nil)
	if _, err := w.SendTo(e.ctx, []byte("Q:again"), raddr); err != nil {
		t.Fatal(err)
	}
	lines, evs := rec.take()
	rfd, wfd := itoa(r.FD), itoa(w.FD)
	wantLines(t, lines,
		`sendto(`+wfd+`<UDP>, {question who}, 5, `+raddr.String()+`) = 5`,
		`recvfrom(`+rfd+`<UDP>, 64) = 5 {answer of 5 bytes} from `+waddr.String(),
		`sendto(`+wfd+`<UDP>, "plain", 5, `+raddr.String()+`) = 5`,
		`recvfrom(`+rfd+`<UDP>, 64) = 5 {answer of 5 bytes} from `+waddr.String(),
		`sendto(`+wfd+`<UDP>, "Q:again", 7, `+raddr.String()+`) = 7`,
	)
	if string(evs[0].Data) != "Q:who" {
		t.Errorf("a described event keeps its bytes: %q", evs[0].Data)
	}
}
