//go:build linux

package sock_test

// ReadString, ReadAppend and RecvFromInto: reads that wait holding no
// buffer and use a pooled one only while the data is copied out.

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"sockplay/sock"
)

// readInto calls ReadAppend after a few bytes that must stay in front, and
// returns what it added. Every other call goes through ReadString instead,
// which must give the same bytes.
func readInto(t *testing.T, e *env, s *sock.Socket, ctx context.Context, max int) (int, []byte, error) {
	t.Helper()
	readCalls++
	if readCalls%2 == 0 {
		text, err := s.ReadString(ctx, max)
		return len(text), []byte(text), err
	}
	got, err := s.ReadAppend(ctx, max, []byte("pre"))
	if string(got[:3]) != "pre" {
		t.Fatalf("ReadAppend lost what dst held: %q", got)
	}
	return len(got) - 3, got[3:], err
}

var readCalls int

func TestReadPooledStream(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)

	if _, err := c.Write(e.ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	n, got, err := readInto(t, e, s, e.ctx, 64)
	if n != 5 || string(got) != "hello" || err != nil {
		t.Fatalf("read(64) = %d %q, %v", n, got, err)
	}

	if _, err := c.Write(e.ctx, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if n, got, err := readInto(t, e, s, e.ctx, 4); n != 4 || string(got) != "0123" || err != nil {
		t.Fatalf("read(4) = %d %q, %v", n, got, err)
	}
	if n, got, err := readInto(t, e, s, e.ctx, 64); n != 6 || string(got) != "456789" || err != nil {
		t.Fatalf("read(64) = %d %q, %v", n, got, err)
	}

	for _, max := range []int{0, -3, 0, -3} {
		n, got, err := readInto(t, e, s, e.ctx, max)
		if n != 0 || len(got) != 0 || err != nil {
			t.Errorf("read(%d) = %d %q, %v; want 0, nil at once", max, n, got, err)
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
		n, got, err := readInto(t, e, s, e.ctx, 1<<20)
		if err != nil || n != len(got) || n <= 0 || n > 64<<10 {
			t.Fatalf("read(1 MiB) = %d (%d bytes), %v; want 1..65536", n, len(got), err)
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
	for range 2 {
		n, got, err = readInto(t, e, s, e.ctx, 64)
		wantErr(t, err, "read", "EOF")
		if n != 0 || len(got) != 0 {
			t.Errorf("at EOF: %d bytes, %q", n, got)
		}
	}
}

func TestReadPooledWakeUps(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	type result struct {
		n   int
		got []byte
		err error
	}
	start := func(ctx context.Context) <-chan result {
		ch := make(chan result, 1)
		go func() {
			got, err := s.ReadAppend(ctx, 64, nil)
			ch <- result{len(got), got, err}
		}()
		waitBlocked(t, "sock.(*Socket).ReadAppend(", testFunc(t))
		return ch
	}

	ctx, cancel := context.WithCancel(e.ctx)
	ch := start(ctx)
	cancel()
	r := <-ch
	wantErr(t, r.err, "read", "ECANCELED")
	if r.n != 0 {
		t.Errorf("cancelled ReadAppend: %d bytes", r.n)
	}

	// No deadline stuck: a ReadAppend that has to wait gets its data.
	ch = start(e.ctx)
	if _, err := c.Write(e.ctx, []byte("late")); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; r.n != 4 || string(r.got) != "late" || r.err != nil {
		t.Fatalf("ReadAppend after a cancel = %+v", r)
	}

	s.SetTimeout(50_000_000) // 50 ms
	for range 2 {
		_, _, err := readInto(t, e, s, e.ctx, 64)
		wantErr(t, err, "read", "ETIMEDOUT")
	}
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

	// A read on a datagram socket reports truncation as EMSGSIZE, after
	// handing over the bytes that fit.
	for range 2 {
		send([]byte("0123456789"))
		n, got, err := readInto(t, e, r, e.ctx, 4)
		se := wantErr(t, err, "read", "EMSGSIZE")
		if n != 4 || string(got) != "0123" || se.Msg != "datagram truncated: 10 bytes, buffer holds 4" {
			t.Errorf("UDP read(4) = %d %q, %q", n, got, err)
		}
	}

	if in, _, din, _ := r.Counters(); din != 6 || in != 4+0+0+65507+4+4 {
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

func TestReadPooledTrace(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	r, raddr := e.bound(sock.UDP)
	w, waddr := e.bound(sock.UDP)
	rec := record(t, e.tbl)
	if _, err := c.Write(e.ctx, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readInto(t, e, s, e.ctx, 64); err != nil {
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

// Untraced, a read that copies out of the pooled buffer allocates only
// what it hands back: nothing for ReadAppend into room it has, one string
// for ReadString, whatever size is asked for. The write allocates nothing.
func TestReadPooledAllocations(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	u, uaddr := e.bound(sock.UDP)
	msg := make([]byte, 64)
	dst := make([]byte, 0, 4096)
	appendRead := func(max int) func() {
		return func() {
			c.Write(e.ctx, msg)
			got, err := s.ReadAppend(e.ctx, max, dst[:0])
			if len(got) != len(msg) || err != nil {
				t.Fatalf("ReadAppend = %d, %v", len(got), err)
			}
		}
	}
	stringRead := func(max int) func() {
		return func() {
			c.Write(e.ctx, msg)
			if text, err := s.ReadString(e.ctx, max); len(text) != len(msg) || err != nil {
				t.Fatalf("ReadString = %d, %v", len(text), err)
			}
		}
	}
	sink := 0
	useFrom := func(p []byte, _ netip.AddrPort, _ int) { sink += len(p) }
	dgram := func(max int) func() {
		return func() {
			u.SendTo(e.ctx, msg, uaddr)
			if err := u.RecvFromInto(e.ctx, max, useFrom); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, max := range []int{64, 4096} {
		if n := testing.AllocsPerRun(100, appendRead(max)); n != 0 {
			t.Errorf("write + ReadAppend(%d): %v allocations, want 0", max, n)
		}
		if n := testing.AllocsPerRun(100, stringRead(max)); n != 1 {
			t.Errorf("write + ReadString(%d): %v allocations, want 1 (the string)", max, n)
		}
	}
	if a, b := testing.AllocsPerRun(100, dgram(64)), testing.AllocsPerRun(100, dgram(4096)); a != b {
		t.Errorf("untraced RecvFromInto allocations depend on the size asked for: %v and %v", a, b)
	}
}
