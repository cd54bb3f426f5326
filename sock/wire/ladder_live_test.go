package wire

import (
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sockplay/internal/testpeer"
)

// A real exchange on loopback, captured by tcpdump while it happens: the
// ladder shows the handshake, the data each way and the close, and the
// layer view finds the data where the client wrote it.
func TestLadderOfLiveCapture(t *testing.T) {
	testpeer.Root(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	file := filepath.Join(t.TempDir(), "live.pcap")
	stop := testpeer.Tcpdump(t, "-i", "lo", "-w", file, "tcp port "+strconv.Itoa(port))

	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 6)
		if _, err := io.ReadFull(c, buf); err != nil {
			served <- err
			return
		}
		_, err = c.Write([]byte("world\n"))
		served <- err
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello\n"))
	if got, err := io.ReadAll(c); err != nil || string(got) != "world\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	c.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	// Wait for the last ACK (the kernel's, after both FINs) to reach the
	// file (each packet is written as it comes), then stop tcpdump.
	var pkts []Packet
	var l Ladder
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pkts, _ = loadFrames(file)
		l, _ = NewLadder(pkts, Conn{})
		if finished(l) {
			break
		}
	}
	stop()
	if !finished(l) { // a starved tcpdump writes the rest as it stops
		pkts, _ = loadFrames(file)
		l, _ = NewLadder(pkts, Conn{})
	}

	var kinds []string
	for _, st := range l.Steps {
		kinds = append(kinds, st.Kind)
		if st.Retransmit || st.Kind == "RST" {
			t.Errorf("unexpected step %+v", st)
		}
	}
	got := strings.Join(kinds, " ")
	// The server's data may carry its FIN, and ACKs may be delayed: check
	// the handshake, both data segments and a FIN from each side.
	if !strings.HasPrefix(got, "SYN SYN-ACK ACK data") || strings.Count(got, "data") != 2 {
		t.Fatalf("ladder steps %q, want about SYN SYN-ACK ACK data ACK data ACK FIN FIN ACK\n%s", got, LadderText(l))
	}
	fins := map[bool]bool{}
	for _, st := range l.Steps {
		if strings.Contains(st.Kind, "FIN") {
			fins[st.FromA] = true
		}
		if st.Kind == "data" && st.FromA && (st.Len != 6 || st.Seq != 1) {
			t.Errorf("client data %+v, want seq 1 len 6", st)
		}
	}
	if !fins[true] || !fins[false] {
		t.Fatalf("no FIN from both sides:\n%s", LadderText(l))
	}
	if view := LayerView(pkts[3], false); !strings.Contains(view, `6 bytes "hello\n"`) {
		t.Fatalf("the client's data is not in the layer view of frame 4:\n%s", view)
	}
}

// finished reports whether both sides sent a FIN and the last segment
// is the ACK of the second.
func finished(l Ladder) bool {
	fins, n := 0, len(l.Steps)
	for _, st := range l.Steps {
		if strings.Contains(st.Kind, "FIN") {
			fins++
		}
	}
	return fins >= 2 && n > 0 && l.Steps[n-1].Kind == "ACK"
}
