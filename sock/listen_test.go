//go:build linux

package sock_test

// Several listeners beside the tracer, and the sockets the table adopts
// from elsewhere (a packet capture's).

import (
	"bytes"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"sockplay/internal/testpeer"
	"sockplay/sock"
)

// listenTo adds a listener that records events.
func listenTo(t testing.TB, tbl *sock.Table, data bool) (*recorder, func()) {
	r := &recorder{}
	remove := tbl.Listen(func(ev sock.Event) {
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	}, data)
	t.Cleanup(remove)
	return r, remove
}

func TestListenersBesideTheTracer(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	calls, removeCalls := listenTo(t, e.tbl, false)
	if !e.tbl.Tracing() {
		t.Fatal("Tracing() = false with a listener")
	}
	if _, err := c.Write(e.ctx, []byte("one")); err != nil {
		t.Fatal(err)
	}
	_, evs := calls.take()
	if len(evs) != 1 || evs[0].Call != "write" || evs[0].Ret != 3 {
		t.Fatalf("listener heard %v, want one write of 3", evs)
	}
	if evs[0].Data != nil {
		t.Errorf("a listener that wants no data got %q: every write would pay for a copy", evs[0].Data)
	}

	tr := record(t, e.tbl)
	withData, _ := listenTo(t, e.tbl, true)
	if _, err := c.Write(e.ctx, []byte("two")); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*recorder{"listener": calls, "tracer": tr, "data listener": withData} {
		lines, evs := r.take()
		want := "write(" + itoa(c.FD) + "<TCP>, \"two\", 3) = 3"
		if len(lines) != 1 || lines[0] != want || string(evs[0].Data) != "two" {
			t.Errorf("%s heard %q, want %q", name, lines, want)
		}
	}

	removeCalls()
	removeCalls() // a second call does nothing
	e.tbl.SetTracer(nil)
	buf := make([]byte, 16)
	for got := 0; got < 6; {
		n, err := s.Read(e.ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if lines, _ := calls.take(); len(lines) != 0 {
		t.Errorf("a removed listener heard %q", lines)
	}
	if lines, _ := tr.take(); len(lines) != 0 {
		t.Errorf("a removed tracer heard %q", lines)
	}
	if _, evs := withData.take(); len(evs) != 1 || evs[0].Call != "read" {
		t.Errorf("the remaining listener heard %v, want the read", evs)
	}
}

func TestCloseEventCarriesTheAddresses(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	local, _ := c.LocalAddr()
	peer, _ := c.PeerAddr()
	r, _ := listenTo(t, e.tbl, false)
	c.Close()
	s.Close()
	_, evs := r.take()
	if len(evs) != 2 || evs[0].Call != "close" || evs[0].Local != local || evs[0].Peer != peer {
		t.Fatalf("close events %+v, want the first with %s -> %s", evs, local, peer)
	}
}

// Listening from several goroutines while calls are made: for the race
// detector.
func TestListenConcurrently(t *testing.T) {
	e := newEnv(t)
	_, addr := e.bound(sock.UDP)
	c := e.dial(sock.UDP, addr)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				remove := e.tbl.Listen(func(sock.Event) {}, j%2 == 0)
				remove()
			}
		}()
	}
	for i := 0; i < 200; i++ {
		if _, err := c.Write(e.ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if e.tbl.Tracing() {
		t.Error("Tracing() after every listener was removed")
	}
}

// needRoot skips (or fails, when peers are required) a test that needs
// CAP_NET_RAW.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if testpeer.Required() {
			t.Fatal("this test needs root (SOCKPLAY_REQUIRE_PEERS=1)")
		}
		t.Skip("needs root (CAP_NET_RAW)")
	}
}

func TestAdoptAPacketSocket(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	r, _ := listenTo(t, e.tbl, false)
	const ethPAll = 0x0300 // htons(ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, ethPAll)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, lo); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: ethPAll, Ifindex: int(lo.Uint32())}); err != nil {
		t.Fatal(err)
	}
	p, err := e.tbl.Adopt(sock.WithOwner(e.ctx, "capture"), fd, sock.Packet, "lo")
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	e.own(p)
	p.SetCaptureInfo(func() sock.CaptureInfo { return sock.CaptureInfo{Iface: "lo", Received: 7} })
	if lines, _ := r.take(); len(lines) != 1 || lines[0] != "socket(packet, lo) = "+itoa(fd) {
		t.Errorf("trace %q", lines)
	}

	entry, ok := sock.Find(e.tbl.Snapshot(), fd)
	if !ok || entry.Socket == nil || entry.Socket.Kind != sock.Packet || entry.Socket.State != "CAPTURING" ||
		entry.Socket.Capture == nil || entry.Socket.Capture.Iface != "lo" || entry.Socket.Capture.Received != 7 ||
		entry.Socket.Owner != "capture" {
		t.Fatalf("snapshot entry %+v (socket %+v)", entry, entry.Socket)
	}

	// A datagram on loopback is a frame the packet socket reads, waiting
	// in the poller until it is there.
	_, addr := e.bound(sock.UDP)
	a := e.dial(sock.UDP, addr)
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 2048)
		var n int
		err := p.Await(e.ctx, "recvfrom", false, func(fd int) bool {
			for {
				var rerr error
				n, _, rerr = unix.Recvfrom(fd, buf, 0)
				// Other tests' loopback traffic is captured too: skip it.
				if rerr != nil || bytes.HasSuffix(buf[:n], []byte("frame")) {
					return rerr != unix.EAGAIN
				}
			}
		})
		if err != nil {
			n = -1
		}
		got <- n
	}()
	waitBlocked(t, "Await")
	if _, err := a.Write(e.ctx, []byte("frame")); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n < 14+20+8+5 {
		t.Fatalf("read a frame of %d bytes, want an Ethernet, IP and UDP header and 5 bytes", n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := sock.Find(e.tbl.Snapshot(), fd); ok {
		t.Error("the packet socket is still in the snapshot after Close")
	}
}
