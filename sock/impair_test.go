//go:build linux

package sock_test

// Impairment of a datagram socket's outgoing datagrams: loss, duplication,
// reordering and delay, decided by a seeded generator.

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// impairRun sends numbered datagrams from an impaired socket w to r.
type impairRun struct {
	e     *env
	r, w  *sock.Socket
	raddr netip.AddrPort
	sent  int
	seqs  []uint32 // received, in order of arrival
}

func newImpairRun(t *testing.T, e *env, im *sock.Impairment) *impairRun {
	t.Helper()
	r, raddr := e.bound(sock.UDP)
	w, _ := e.bound(sock.UDP)
	// Room for whatever is in flight between two reads; the kernel caps
	// the request at rmem_max, and the pacing below keeps far fewer queued.
	if err := r.SetOption("rcvbuf", 1<<20); err != nil {
		t.Fatal(err)
	}
	if im != nil {
		if err := w.Impair(im); err != nil {
			t.Fatalf("Impair(%v): %v", im, err)
		}
	}
	return &impairRun{e: e, r: r, w: w, raddr: raddr}
}

func (ir *impairRun) stats() sock.ImpairStats {
	_, st := ir.w.Impairment()
	return st
}

// recv reads one numbered datagram; the socket's timeout ends a wait for
// one that never comes.
func (ir *impairRun) recv(t *testing.T) {
	t.Helper()
	buf := make([]byte, 16)
	n, _, _, err := ir.r.RecvFrom(ir.e.ctx, buf)
	if err != nil {
		t.Fatalf("after %d sent and %d received (%+v): %v", ir.sent, len(ir.seqs), ir.stats(), err)
	}
	if n != 4 {
		t.Fatalf("a datagram of %d bytes", n)
	}
	ir.seqs = append(ir.seqs, binary.BigEndian.Uint32(buf))
}

// run sends n datagrams in batches of 50; after each batch it reads until
// want (computed from the impairment's counters) datagrams have arrived,
// which keeps the receive queue short.
func (ir *impairRun) run(t *testing.T, n int, want func(st sock.ImpairStats) int) {
	t.Helper()
	var buf [4]byte
	for ir.sent < n {
		for i := 0; i < 50 && ir.sent < n; i++ {
			binary.BigEndian.PutUint32(buf[:], uint32(ir.sent))
			if m, err := ir.w.SendTo(ir.e.ctx, buf[:], ir.raddr); m != 4 || err != nil {
				t.Fatalf("SendTo #%d = %d, %v", ir.sent, m, err)
			}
			ir.sent++
		}
		for len(ir.seqs) < want(ir.stats()) {
			ir.recv(t)
		}
	}
}

// quiet checks that nothing more arrives within a short timeout.
func (ir *impairRun) quiet(t *testing.T) {
	t.Helper()
	ir.r.SetTimeout(100 * time.Millisecond)
	defer ir.r.SetTimeout(ioTimeout)
	n, from, _, err := ir.r.RecvFrom(ir.e.ctx, make([]byte, 16))
	if sock.Code(err) != "ETIMEDOUT" {
		t.Fatalf("an extra datagram: %d bytes from %v, %v", n, from, err)
	}
}

func (ir *impairRun) counts() map[uint32]int {
	m := map[uint32]int{}
	for _, s := range ir.seqs {
		m[s]++
	}
	return m
}

func lossRun(t *testing.T, e *env, seed uint64) *impairRun {
	t.Helper()
	ir := newImpairRun(t, e, &sock.Impairment{Loss: 0.1, Seed: seed})
	ir.run(t, 2000, func(st sock.ImpairStats) int { return int(st.Sent - st.Dropped) })
	ir.quiet(t)
	return ir
}

func TestImpairLoss(t *testing.T) {
	e := newEnv(t)
	ir := lossRun(t, e, 42)
	got := len(ir.seqs)
	if got < 1700 || got > 1900 {
		t.Errorf("%d of 2000 datagrams arrived with 10%% loss, want 1700..1900", got)
	}
	st := ir.stats()
	want := sock.ImpairStats{Sent: 2000, Dropped: uint64(2000 - got)}
	if st != want {
		t.Errorf("stats %+v, want %+v (Dropped = sent - received)", st, want)
	}
	for i, s := range ir.seqs {
		if i > 0 && s <= ir.seqs[i-1] {
			t.Fatalf("datagram %d after %d: loss alone must not reorder or duplicate", s, ir.seqs[i-1])
		}
		if s >= 2000 {
			t.Fatalf("sequence number %d never sent", s)
		}
	}
	// To the sender a dropped datagram went out, as real loss looks.
	if _, out, _, dout := ir.w.Counters(); dout != 2000 || out != 8000 {
		t.Errorf("sender counted %d datagrams, %d bytes; want 2000, 8000", dout, out)
	}
	if in, _, din, _ := ir.r.Counters(); din != uint64(got) || in != uint64(4*got) {
		t.Errorf("receiver counted %d datagrams, %d bytes; want %d, %d", din, in, got, 4*got)
	}
}

// The same seed makes the same decisions; another seed, other ones.
func TestImpairSeed(t *testing.T) {
	e := newEnv(t)
	a := lossRun(t, e, 7)
	b := lossRun(t, e, 7)
	if a.stats().Dropped != b.stats().Dropped {
		t.Fatalf("seed 7 dropped %d, then %d", a.stats().Dropped, b.stats().Dropped)
	}
	if !reflect.DeepEqual(a.seqs, b.seqs) {
		t.Fatal("seed 7 twice dropped different datagrams")
	}
	c := lossRun(t, e, 8)
	if reflect.DeepEqual(a.seqs, c.seqs) {
		t.Error("seeds 7 and 8 dropped the same datagrams")
	}
}

func TestImpairDuplicate(t *testing.T) {
	e := newEnv(t)
	ir := newImpairRun(t, e, &sock.Impairment{Duplicate: 0.05, Seed: 3})
	ir.run(t, 2000, func(st sock.ImpairStats) int { return int(st.Sent + st.Duplicated) })
	ir.quiet(t)
	st := ir.stats()
	got := len(ir.seqs)
	if got <= 2000 || st.Duplicated == 0 || got != 2000+int(st.Duplicated) {
		t.Errorf("%d datagrams arrived for 2000 sent, stats %+v; want 2000 + Duplicated > 2000", got, st)
	}
	if st.Duplicated < 50 || st.Duplicated > 150 {
		t.Errorf("%d duplicates at 5%% of 2000, want 50..150", st.Duplicated)
	}
	counts := ir.counts()
	twice := 0
	for seq := uint32(0); seq < 2000; seq++ {
		switch counts[seq] {
		case 1:
		case 2:
			twice++
		default:
			t.Fatalf("datagram %d arrived %d times", seq, counts[seq])
		}
	}
	if twice != int(st.Duplicated) || st.Dropped != 0 {
		t.Errorf("%d datagrams arrived twice, stats %+v", twice, st)
	}
}

func TestImpairReorder(t *testing.T) {
	e := newEnv(t)
	ir := newImpairRun(t, e, &sock.Impairment{Reorder: 0.3, Seed: 11})
	// At most one datagram is held back at a time.
	ir.run(t, 200, func(st sock.ImpairStats) int { return int(st.Sent) - 1 })
	for len(ir.seqs) < 200 {
		ir.recv(t) // a datagram held at the end goes out after a short hold
	}
	ir.quiet(t)
	counts := ir.counts()
	for seq := uint32(0); seq < 200; seq++ {
		if counts[seq] != 1 {
			t.Fatalf("datagram %d arrived %d times", seq, counts[seq])
		}
	}
	late := 0
	for i := 1; i < len(ir.seqs); i++ {
		if ir.seqs[i] < ir.seqs[i-1] {
			late++
		}
	}
	st := ir.stats()
	if late == 0 || st.Reordered == 0 || st.Sent != 200 || st.Dropped != 0 {
		t.Errorf("%d out-of-order arrivals, stats %+v; want some", late, st)
	}
}

func TestImpairDelay(t *testing.T) {
	e := newEnv(t)
	const delay = 30 * time.Millisecond
	ir := newImpairRun(t, e, &sock.Impairment{Delay: delay, Jitter: 10 * time.Millisecond, Seed: 1})
	start := time.Now()
	ir.run(t, 10, func(st sock.ImpairStats) int { return 0 })
	for len(ir.seqs) < 10 {
		ir.recv(t)
	}
	if elapsed := time.Since(start); elapsed < delay-10*time.Millisecond {
		t.Errorf("10 datagrams delayed by %v±10ms arrived after %v", delay, elapsed)
	}
	if st := ir.stats(); st.Delayed != 10 || st.Sent != 10 {
		t.Errorf("stats %+v, want 10 sent and delayed", st)
	}
}

// Closing a socket with datagrams still delayed cancels them; nothing is
// sent on a closed fd.
func TestImpairCloseCancelsPending(t *testing.T) {
	e := newEnv(t)
	ir := newImpairRun(t, e, &sock.Impairment{Delay: time.Hour, Seed: 1})
	ir.run(t, 3, func(sock.ImpairStats) int { return 0 })
	if st := ir.stats(); st.Sent != 3 || st.Delayed != 3 {
		t.Fatalf("stats %+v", st)
	}
	if err := ir.w.Close(); err != nil {
		t.Fatal(err)
	}
	if im, st := ir.w.Impairment(); im != nil || st != (sock.ImpairStats{}) {
		t.Errorf("after Close: %v %+v", im, st)
	}
	ir.quiet(t)
}

func TestImpairOffAndErrors(t *testing.T) {
	e := newEnv(t)
	tcp := e.open(sock.TCP)
	err := tcp.Impair(&sock.Impairment{Loss: 0.5})
	se := wantErr(t, err, "impair", "EINVAL")
	if se.Msg != "impairment applies to datagram sockets (udp, udp6), not tcp" || !errors.Is(err, unix.EINVAL) {
		t.Errorf("Impair on tcp: %q", err)
	}

	ir := newImpairRun(t, e, nil)
	for _, bad := range []sock.Impairment{{Loss: -0.1}, {Duplicate: 1.5}, {Reorder: 2}} {
		se := wantErr(t, ir.w.Impair(&bad), "impair", "EINVAL")
		if !strings.HasPrefix(se.Msg, "probability ") || !strings.HasSuffix(se.Msg, " is outside 0..1") {
			t.Errorf("Impair(%+v): %q", bad, se.Msg)
		}
	}
	wantErr(t, ir.w.Impair(&sock.Impairment{Delay: -time.Second}), "impair", "EINVAL")
	wantErr(t, ir.w.Impair(&sock.Impairment{Jitter: -time.Second}), "impair", "EINVAL")
	if im, _ := ir.w.Impairment(); im != nil {
		t.Fatalf("a rejected impairment was installed: %v", im)
	}

	cfg := sock.Impairment{Loss: 1, Seed: 9}
	if err := ir.w.Impair(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Loss = 0 // Impair took a copy
	ir.run(t, 20, func(st sock.ImpairStats) int { return int(st.Sent - st.Dropped) })
	im, st := ir.w.Impairment()
	if im == nil || im.Loss != 1 || im.Seed != 9 || st.Dropped != 20 || len(ir.seqs) != 0 {
		t.Fatalf("with loss 1: %+v %+v, %d received", im, st, len(ir.seqs))
	}

	if err := ir.w.Impair(nil); err != nil {
		t.Fatal(err)
	}
	if im, st := ir.w.Impairment(); im != nil || st != (sock.ImpairStats{}) {
		t.Fatalf("Impair(nil) left %v %+v", im, st)
	}
	ir.run(t, 40, func(sock.ImpairStats) int { return 20 })
	ir.quiet(t)
	if len(ir.seqs) != 20 || ir.seqs[0] != 20 || ir.seqs[19] != 39 {
		t.Errorf("after Impair(nil): received %v", ir.seqs)
	}
	if err := ir.w.Impair(nil); err != nil {
		t.Errorf("Impair(nil) twice: %v", err)
	}
}

func TestImpairmentString(t *testing.T) {
	for _, tc := range []struct {
		im   sock.Impairment
		want string
	}{
		{sock.Impairment{}, "seed=0"},
		{sock.Impairment{Loss: 0.1, Seed: 42}, "loss=10% seed=42"},
		{sock.Impairment{Loss: 0.1, Duplicate: 0.05, Reorder: 0.01, Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Seed: 3},
			"loss=10% dup=5% reorder=1% delay=20ms jitter=5ms seed=3"},
	} {
		if got := tc.im.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestImpairTrace(t *testing.T) {
	e := newEnv(t)
	ir := newImpairRun(t, e, &sock.Impairment{Loss: 1})
	rec := record(t, e.tbl)
	if _, err := ir.w.SendTo(e.ctx, []byte("x"), ir.raddr); err != nil {
		t.Fatal(err)
	}
	wfd := itoa(ir.w.FD)
	lines, _ := rec.take()
	wantLines(t, lines,
		`sendto(`+wfd+`<UDP>, "x", 1) = 1 [dropped by impairment]`,
		`sendto(`+wfd+`<UDP>, "x", 1, `+ir.raddr.String()+`) = 1`,
	)

	if err := ir.w.Impair(&sock.Impairment{Duplicate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := ir.w.SendTo(e.ctx, []byte("y"), ir.raddr); err != nil {
		t.Fatal(err)
	}
	lines, _ = rec.take()
	wantLines(t, lines,
		`sendto(`+wfd+`<UDP>, "y", 1) = 1 [duplicated by impairment]`,
		`sendto(`+wfd+`<UDP>, "y", 1, `+ir.raddr.String()+`) = 1`,
	)
	for i := 0; i < 2; i++ {
		buf := make([]byte, 4)
		if n, _, _, err := ir.r.RecvFrom(e.ctx, buf); n != 1 || err != nil || buf[0] != 'y' {
			t.Fatalf("copy %d: %q, %v", i, buf[:n], err)
		}
	}
	rec.take()

	if err := ir.w.Impair(&sock.Impairment{Reorder: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := ir.w.SendTo(e.ctx, []byte("z"), ir.raddr); err != nil {
		t.Fatal(err)
	}
	lines, _ = rec.take()
	wantLines(t, lines,
		`sendto(`+wfd+`<UDP>, "z", 1) = 1 [held back by impairment (reorder)]`,
		`sendto(`+wfd+`<UDP>, "z", 1, `+ir.raddr.String()+`) = 1`,
	)
}
