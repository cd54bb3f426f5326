package wire

import (
	"encoding/xml"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sockplay/internal/testpeer"
)

// The ladder of real connections captured on loopback (testdata/capture.sh):
// a whole HTTP exchange, a refused connect, one with lost segments, IPv6.
func TestLadderGolden(t *testing.T) {
	for _, name := range []string{"http", "rst", "loss", "ipv6"} {
		t.Run(name, func(t *testing.T) {
			l, ok := NewLadder(testFrames(t, name+".pcap"), Conn{})
			if !ok {
				t.Fatal("no connection found")
			}
			checkGolden(t, "ladder_"+name+".golden", LadderText(l))
		})
	}
	l, _ := NewLadder(testFrames(t, "loss.pcap"), Conn{})
	checkGolden(t, "ladder_loss.svg", LadderSVG(l))
}

// The handshake, data, close and retransmissions are told apart, with
// sequence numbers relative to each side's first.
func TestLadderSteps(t *testing.T) {
	l, _ := NewLadder(testFrames(t, "http.pcap"), Conn{})
	var kinds []string
	for _, st := range l.Steps {
		kinds = append(kinds, st.Kind)
		if st.Retransmit {
			t.Errorf("retransmission in a clean exchange: %+v", st)
		}
	}
	want := "SYN SYN-ACK ACK data ACK data ACK FIN FIN ACK"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("kinds %q, want %q", got, want)
	}
	req, resp := l.Steps[3], l.Steps[5]
	if !req.FromA || req.Seq != 1 || req.Len != 88 || resp.FromA || resp.Seq != 1 || resp.Len != 237 || resp.Ack != 89 {
		t.Fatalf("request %+v, response %+v", req, resp)
	}

	l, _ = NewLadder(testFrames(t, "loss.pcap"), Conn{})
	var re []string
	for _, st := range l.Steps {
		if st.Retransmit {
			re = append(re, st.Label)
		}
	}
	if len(re) != 5 || !strings.HasPrefix(re[3], "data seq 8:43 len 35") {
		t.Fatalf("retransmissions %q", re)
	}
}

// A segment's length comes from the IP header, so a capture cut short by
// its snapshot length still shows what was sent.
func TestLadderSnapshotLength(t *testing.T) {
	l, _ := NewLadder(testFrames(t, "http_snap.pcap"), Conn{})
	if st := l.Steps[5]; st.Kind != "data" || st.Len != 468 {
		t.Fatalf("response step %+v, want data of 468 bytes", st)
	}
}

// A live capture on loopback sees each frame leaving and arriving: the
// ladder draws it once, and each call beside the side that made it.
func TestLadderLoopbackCopiesAndCalls(t *testing.T) {
	var pkts []Packet
	calls := []string{"connect", "kernel", "kernel", "write", "kernel", "write", "kernel", "close", "close", "kernel"}
	fromClient := []bool{true, false, true, true, false, false, true, true, false, true}
	for i, p := range testFrames(t, "http.pcap") {
		// Both ends are ours: FD is the sender, PeerFD the receiver.
		p.Iface, p.Call, p.FD, p.Owner, p.PeerFD, p.PeerOwner = "lo", calls[i], 7, "task 1 (main)", 9, "task 2 (server)"
		if !fromClient[i] {
			p.FD, p.Owner, p.PeerFD, p.PeerOwner = 9, "task 2 (server)", 7, "task 1 (main)"
		}
		out, in := p, p
		out.Out = true
		in.Call = ""
		pkts = append(pkts, out, in)
	}
	l, _ := NewLadder(pkts, Conn{})
	if len(l.Steps) != 10 {
		t.Fatalf("%d steps from 10 frames seen twice", len(l.Steps))
	}
	t.Log("\n" + LadderText(l))
	lines := strings.Split(LadderText(l), "\n")
	if !strings.Contains(lines[3], "fd 7 (task 1 (main))") || !strings.HasSuffix(lines[3], "fd 9 (task 2 (server))") {
		t.Errorf("the endpoints' fds are not under their addresses: %q", lines[3])
	}
	if !strings.Contains(lines[4], "connect   |-- SYN seq 0 ") {
		t.Errorf("connect not beside the SYN: %q", lines[4])
	}
	if !strings.HasSuffix(lines[5], "|  kernel") || !strings.Contains(lines[5], "SYN-ACK") {
		t.Errorf("kernel not beside the SYN-ACK, on the right: %q", lines[5])
	}
	for _, line := range lines {
		if len(line) > 100 {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
	}
}

// With only one end ours, the capture names the sender when it is ours
// (with the call), else the receiver: both say which end is ours.
func TestLadderOneEndOurs(t *testing.T) {
	pkts := testFrames(t, "http.pcap")
	for i := range pkts {
		pkts[i].FD, pkts[i].Owner = 7, "task 1 (main)"
		if i == 0 || i == 2 || i == 3 {
			pkts[i].Call = "write"
		}
	}
	for _, from := range [][]Packet{pkts[:1], pkts[1:2]} { // a SYN sent, a SYN-ACK received
		l, _ := NewLadder(from, Conn{A: srcOf(t, pkts[0]), B: srcOf(t, pkts[1])})
		if l.A.FD != 7 || l.B.FD != -1 {
			t.Errorf("endpoints A %v, B %v; want fd 7 at A only", l.A, l.B)
		}
	}
}

// Conn picks one connection out of a capture that holds several.
func TestLadderPicksConnection(t *testing.T) {
	pkts := append(testFrames(t, "http.pcap"), testFrames(t, "rst.pcap")...)
	conns := Connections(pkts)
	if len(conns) != 2 || conns[1].B.Port() != 9 {
		t.Fatalf("connections %v", conns)
	}
	l, ok := NewLadder(pkts, conns[1])
	if !ok || len(l.Steps) != 2 || l.Steps[1].Kind != "RST" {
		t.Fatalf("ladder of %v: %+v", conns[1], l.Steps)
	}
	if _, ok := NewLadder(testFrames(t, "dns.pcap"), Conn{}); ok {
		t.Fatal("a ladder from UDP only")
	}
}

// The SVG is well-formed XML and rsvg-convert renders it.
func TestLadderSVGRenders(t *testing.T) {
	rsvg := testpeer.Path(t, "rsvg-convert")
	l, _ := NewLadder(testFrames(t, "loss.pcap"), Conn{})
	l.Steps[0].Call = "connect <&>" // text is escaped
	svg := LadderSVG(l)
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
	}
	out := filepath.Join(t.TempDir(), "ladder.png")
	cmd := exec.Command(rsvg, "-o", out)
	cmd.Stdin = strings.NewReader(svg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rsvg-convert: %v: %s", err, msg)
	}
}

// srcOf is a TCP packet's source address.
func srcOf(t *testing.T, p Packet) netip.AddrPort {
	s, ok := tcpSegment(p)
	if !ok {
		t.Fatal("not a TCP segment")
	}
	return s.src
}

// go test -bench Ladder ./sock/wire: a ladder of 18 segments, built and
// drawn in text.
func BenchmarkLadder(b *testing.B) {
	pkts := testFrames(b, "loss.pcap")
	for b.Loop() {
		l, _ := NewLadder(pkts, Conn{})
		LadderText(l)
	}
}
