//go:build linux

package sock_test

// ReadInto and RecvFromInto: reads that wait holding no buffer and lend a
// pooled one to a callback only while the data is copied out.

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"sockplay/sock"
)

// readInto calls ReadInto and collects what use was given.
func readInto(t *testing.T, e *env, s *sock.Socket, ctx context.Context, max int) (int, []byte, int, error) {
	t.Helper()
	var got []byte
	calls := 0
	n, err := s.ReadInto(ctx, max, func(p []byte) {
		calls++
		got = append(got, p...)
	})
	return n, got, calls, err
}

func TestReadIntoStream(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)

	if _, err := c.Write(e.ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	n, got, calls, err := readInto(t, e, s, e.ctx, 64)
	if n != 5 || string(got) != "hello" || calls != 1 || err != nil {
		t.Fatalf("ReadInto(64) = %d %q (%d calls), %v", n, got, calls, err)
	}

	if _, err := c.Write(e.ctx, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if n, got, _, err := readInto(t, e, s, e.ctx, 4); n != 4 || string(got) != "0123" || err != nil {
		t.Fatalf("ReadInto(4) = %d %q, %v", n, got, err)
	}
	if n, got, _, err := readInto(t, e, s, e.ctx, 64); n != 6 || string(got) != "456789" || err != nil {
		t.Fatalf("ReadInto(64) = %d %q, %v", n, got, err)
	}

	for _, max := range []int{0, -3} {
		n, got, calls, err := readInto(t, e, s, e.ctx, max)
		if n != 0 || len(got) != 0 || calls != 1 || err != nil {
			t.Errorf("ReadInto(%d) = %d %q (%d calls), %v; want 0, nil at once", max, n, got, calls, err)
		}
	}

	// One call reads at most 64 KiB, whatever max says; all bytes arrive
	// in order.
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 13)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(e.ctx, data)
		done <- err
	}()
	var all []byte
	for len(all) < len(data) {
		n, got, _, err := readInto(t, e, s, e.ctx, 1<<20)
		if err != nil || n != len(got) || n <= 0 || n > 64<<10 {
			t.Fatalf("ReadInto(1 MiB) = %d (%d given to use), %v; want 1..65536", n, len(got), err)
		}
		all = append(all, got...)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all, data) {
		t.Fatal("the bytes read differ from those written")
	}
	if in, _, _, _ := s.Counters(); in != uint64(15+len(data)) {
		t.Errorf("bytes in = %d, want %d", in, 15+len(data))
	}

	if err := c.Shutdown("w"); err != nil {
		t.Fatal(err)
	}
	n, got, calls, err = readInto(t, e, s, e.ctx, 64)
	wantErr(t, err, "read", "EOF")
	if n != 0 || calls != 0 {
		t.Errorf("at EOF: %d bytes, use called %d times with %q", n, calls, got)
	}
}

func TestReadIntoWakeUps(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	type result struct {
		n     int
		calls int
		err   error
	}
	start := func(ctx context.Context) <-chan result {
		ch := make(chan result, 1)
		go func() {
			n, _, calls, err := readInto(t, e, s, ctx, 64)
			ch <- result{n, calls, err}
		}()
		waitBlocked(t, "sock.(*Socket).ReadInto(", testFunc(t))
		return ch
	}

	ctx, cancel := context.WithCancel(e.ctx)
	ch := start(ctx)
	cancel()
	r := <-ch
	wantErr(t, r.err, "read", "ECANCELED")
	if r.n != 0 || r.calls != 0 {
		t.Errorf("cancelled ReadInto: %d bytes, %d calls", r.n, r.calls)
	}

	// No deadline stuck: a ReadInto that has to wait gets its data.
	ch = start(e.ctx)
	if _, err := c.Write(e.ctx, []byte("late")); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; r.n != 4 || r.calls != 1 || r.err != nil {
		t.Fatalf("ReadInto after a cancel = %+v", r)
	}

	s.SetTimeout(50_000_000) // 50 ms
	_, _, _, err := readInto(t, e, s, e.ctx, 64)
	wantErr(t, err, "read", "ETIMEDOUT")
	s.SetTimeout(ioTimeout)

	ch = start(e.ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r = <-ch
	se := wantErr(t, r.err, "read", "EBADF")
	if se.Msg != "bad file descriptor (closed while read waited)" {
		t.Errorf("Msg = %q", se.Msg)
	}
}

// recvFromInto calls RecvFromInto and returns what use was given.
func recvFromInto(t *testing.T, e *env, s *sock.Socket, max int) (data []byte, from netip.AddrPort, size, calls int, err error) {
	t.Helper()
	err = s.RecvFromInto(e.ctx, max, func(p []byte, f netip.AddrPort, sz int) {
		calls++
		data, from, size = append([]byte{}, p...), f, sz
	})
	return
}

func TestRecvFromInto(t *testing.T) {
	e := newEnv(t)
	r, raddr := e.bound(sock.UDP)
	w, waddr := e.bound(sock.UDP)
	send := func(p []byte) {
		t.Helper()
		if n, err := w.SendTo(e.ctx, p, raddr); n != len(p) || err != nil {
			t.Fatalf("SendTo(%d bytes) = %d, %v", len(p), n, err)
		}
	}

	send([]byte("0123456789"))
	data, from, size, calls, err := recvFromInto(t, e, r, 4)
	if string(data) != "0123" || from != waddr || size != 10 || calls != 1 || err != nil {
		t.Fatalf("RecvFromInto(4) = %q from %v size %d (%d calls), %v", data, from, size, calls, err)
	}

	send(nil)
	data, from, size, calls, err = recvFromInto(t, e, r, 64)
	if len(data) != 0 || from != waddr || size != 0 || calls != 1 || err != nil {
		t.Fatalf("zero-length datagram: %q from %v size %d (%d calls), %v", data, from, size, calls, err)
	}

	// A negative size is a zero-length read: the datagram is consumed and
	// its size reported.
	send([]byte("abc"))
	data, from, size, _, err = recvFromInto(t, e, r, -1)
	if len(data) != 0 || from != waddr || size != 3 || err != nil {
		t.Fatalf("RecvFromInto(-1) = %q from %v size %d, %v", data, from, size, err)
	}

	// Beyond 64 KiB the plain path takes over, with the same results.
	big := bytes.Repeat([]byte("x"), 65507)
	send(big)
	data, from, size, _, err = recvFromInto(t, e, r, 70000)
	if !bytes.Equal(data, big) || from != waddr || size != 65507 || err != nil {
		t.Fatalf("RecvFromInto(70000) = %d bytes from %v size %d, %v", len(data), from, size, err)
	}

	// ReadInto on a datagram socket reports truncation as EMSGSIZE, after
	// handing over the bytes that fit.
	send([]byte("0123456789"))
	n, got, calls, err := readInto(t, e, r, e.ctx, 4)
	se := wantErr(t, err, "read", "EMSGSIZE")
	if n != 4 || string(got) != "0123" || calls != 1 || se.Msg != "datagram truncated: 10 bytes, buffer holds 4" {
		t.Errorf("UDP ReadInto(4) = %d %q (%d calls), %q", n, got, calls, err)
	}

	if in, _, din, _ := r.Counters(); din != 5 || in != 4+0+0+65507+4 {
		t.Errorf("receiver counters: %d bytes, %d datagrams", in, din)
	}

	r.SetTimeout(50_000_000)
	_, _, _, calls, err = recvFromInto(t, e, r, 64)
	wantErr(t, err, "recvfrom", "ETIMEDOUT")
	if calls != 0 {
		t.Errorf("use called %d times on a timeout", calls)
	}

	// On a stream it reads like Read and names the peer.
	c, s := e.pair(sock.TCP)
	if _, err := c.Write(e.ctx, []byte("stream")); err != nil {
		t.Fatal(err)
	}
	cl, _ := c.LocalAddr()
	data, from, size, _, err = recvFromInto(t, e, s, 64)
	if string(data) != "stream" || from != cl || size != 6 || err != nil {
		t.Fatalf("RecvFromInto on tcp = %q from %v size %d, %v", data, from, size, err)
	}
}

func TestReadIntoTrace(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	r, raddr := e.bound(sock.UDP)
	w, waddr := e.bound(sock.UDP)
	rec := record(t, e.tbl)
	if _, err := c.Write(e.ctx, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := readInto(t, e, s, e.ctx, 64); err != nil {
		t.Fatal(err)
	}
	if _, err := w.SendTo(e.ctx, []byte("0123456789"), raddr); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := recvFromInto(t, e, r, 4); err != nil {
		t.Fatal(err)
	}
	lines, _ := rec.take()
	wantLines(t, lines,
		`write(`+itoa(c.FD)+`<TCP>, "hello\n", 6) = 6`,
		`read(`+itoa(s.FD)+`<TCP>, 64) = 6 "hello\n"`,
		`sendto(`+itoa(w.FD)+`<UDP>, "0123456789", 10, `+raddr.String()+`) = 10`,
		`recvfrom(`+itoa(r.FD)+`<UDP>, 4) = 4 "0123" from `+waddr.String()+` [truncated: datagram of 10 bytes]`,
	)
}

// Untraced, ReadInto and RecvFromInto render nothing for the trace: their
// allocations do not depend on the size asked for (a rendered length would
// allocate from 100 up).
func TestReadIntoNoTraceAllocations(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	u, uaddr := e.bound(sock.UDP)
	msg := make([]byte, 64)
	sink := 0
	use := func(p []byte) { sink += len(p) }
	stream := func(max int) func() {
		return func() {
			c.Write(e.ctx, msg)
			if n, err := s.ReadInto(e.ctx, max, use); n != len(msg) || err != nil {
				t.Fatalf("ReadInto = %d, %v", n, err)
			}
		}
	}
	useFrom := func(p []byte, _ netip.AddrPort, _ int) { sink += len(p) }
	dgram := func(max int) func() {
		return func() {
			u.SendTo(e.ctx, msg, uaddr)
			if err := u.RecvFromInto(e.ctx, max, useFrom); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string]float64{
		"ReadInto 64":       testing.AllocsPerRun(100, stream(64)),
		"ReadInto 4096":     testing.AllocsPerRun(100, stream(4096)),
		"RecvFromInto 64":   testing.AllocsPerRun(100, dgram(64)),
		"RecvFromInto 4096": testing.AllocsPerRun(100, dgram(4096)),
	}
	if got["ReadInto 64"] != got["ReadInto 4096"] || got["RecvFromInto 64"] != got["RecvFromInto 4096"] {
		t.Errorf("untraced allocations depend on the size asked for: %v", got)
	}
	t.Logf("allocations per write+read: %v", got)
}
