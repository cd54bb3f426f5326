//go:build linux

package wire

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"sockplay/internal/leakcheck"
	"sockplay/internal/testpeer"
	"sockplay/sock"
)

// capEnv is a table, a capture on it and what the capture showed.
type capEnv struct {
	t     *testing.T
	tbl   *sock.Table
	ctx   context.Context
	c     *Capture
	pcap  bytes.Buffer
	mu    sync.Mutex
	shown []Packet
	fmt   *Formatter
}

func newCapEnv(t *testing.T, opts Options) *capEnv {
	t.Helper()
	testpeer.Root(t)
	base := leakcheck.Take()
	e := &capEnv{t: t, tbl: sock.NewTable(), fmt: NewFormatter()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	e.ctx = sock.WithOwner(ctx, "test")
	t.Cleanup(func() {
		cancel()
		e.tbl.CloseAll()
		base.Check(t, 2*time.Second)
	})
	opts.Pcap = &e.pcap
	opts.OnPacket = func(p Packet) {
		e.mu.Lock()
		e.shown = append(e.shown, p)
		e.mu.Unlock()
	}
	c, err := Open(e.ctx, e.tbl, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	t.Cleanup(func() { c.Stop() })
	return e
}

func (e *capEnv) stop() []Packet {
	e.t.Helper()
	if err := e.c.Stop(); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.shown
}

func (e *capEnv) open(k sock.Kind) *sock.Socket {
	e.t.Helper()
	s, err := e.tbl.Open(e.ctx, k)
	if err != nil {
		e.t.Fatal(err)
	}
	s.SetTimeout(5 * time.Second)
	return s
}

// lines renders packets as sockplay shows them: tcpdump's line without
// the time, then the socket and the call.
func lines(pkts []Packet) []string {
	f := NewFormatter()
	var out []string
	for _, p := range pkts {
		out = append(out, f.Summary(p)+"  "+Annotation(p))
	}
	return out
}

// exchange runs a TCP client and server on loopback through the table:
// connect, data both ways, a close from each side.
func (e *capEnv) exchange() (client, server, listener *sock.Socket) {
	e.t.Helper()
	l := e.open(sock.TCP)
	if err := l.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		e.t.Fatal(err)
	}
	if err := l.Listen(4); err != nil {
		e.t.Fatal(err)
	}
	addr, _ := l.LocalAddr()
	c := e.open(sock.TCP)
	if err := c.Connect(e.ctx, addr); err != nil {
		e.t.Fatal(err)
	}
	s, _, err := l.Accept(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	s.SetTimeout(5 * time.Second)
	if _, err := c.Write(e.ctx, []byte("hello\n")); err != nil {
		e.t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := s.Read(e.ctx, buf); err != nil {
		e.t.Fatal(err)
	}
	if _, err := s.Write(e.ctx, []byte("world\n")); err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.Read(e.ctx, buf); err != nil {
		e.t.Fatal(err)
	}
	cfd, sfd, lfd := c.FD, s.FD, l.FD
	c.Close()
	if _, err := s.Read(e.ctx, buf); sock.Code(err) != "EOF" {
		e.t.Fatalf("server read after the client's close: %v, want EOF", err)
	}
	s.Close()
	l.Close()
	_ = fmt.Sprint(cfd, sfd, lfd)
	return c, s, l
}

func TestCaptureOwnExchange(t *testing.T) {
	e := newCapEnv(t, Options{})
	c, s, l := e.exchange()
	got := lines(e.stop())
	for _, l := range got {
		t.Log(l)
	}
	_ = c
	_ = s
	_ = l
	if len(got) < 8 {
		t.Fatalf("%d packets", len(got))
	}
	if !strings.Contains(got[0], "Flags [S]") {
		t.Errorf("first: %s", got[0])
	}
}

// The recent packets are a ring bounded by count and by bytes.
func TestRecentIsBounded(t *testing.T) {
	c := &Capture{recent: make([]Packet, 3)}
	for i := 0; i < 5; i++ {
		c.remember(Packet{FD: i, Data: make([]byte, 10)})
	}
	got := c.Recent()
	if len(got) != 3 || got[0].FD != 2 || got[2].FD != 4 {
		t.Fatalf("recent %v, want the last three", got)
	}
	c.remember(Packet{FD: 5, Data: make([]byte, maxRecentBytes-15)})
	got = c.Recent()
	if len(got) != 2 || got[0].FD != 4 || got[1].FD != 5 || c.bytes != maxRecentBytes-5 {
		t.Fatalf("recent %d packets from fd %d, %d bytes: want the last two", len(got), got[0].FD, c.bytes)
	}
	c.remember(Packet{FD: 6, Data: make([]byte, maxRecentBytes)})
	if got = c.Recent(); len(got) != 1 || got[0].FD != 6 {
		t.Fatalf("a packet as big as the bound: %d kept", len(got))
	}
}
