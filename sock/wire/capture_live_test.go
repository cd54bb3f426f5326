//go:build linux

package wire

// Captures of real exchanges on loopback, checked against tcpdump
// capturing alongside with the same filter, and against tcpdump reading
// the pcap file sockplay wrote.

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"sockplay/internal/testpeer"
	"sockplay/sock"
)

// tcpdumpAlongside starts tcpdump on lo writing every frame the filter
// keeps to a file, and returns once it listens.
func tcpdumpAlongside(t *testing.T, filter string) (file string, stop func() []Packet) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "alongside.pcap")
	stopTcpdump := testpeer.Tcpdump(t, "-i", "lo", "-nn", "-w", file, filter)
	return file, func() []Packet {
		stopTcpdump()
		return readPcapFile(t, file)
	}
}

func readPcapFile(t *testing.T, file string) []Packet {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkts, err := ReadPcap(f)
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	return pkts
}

// randomLoopback is an address of 127/8 of this test run's own, so that
// other programs' traffic on lo does not meet the test's filters.
func randomLoopback() netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(100 + rand.IntN(100)), byte(rand.IntN(250) + 1), byte(rand.IntN(250) + 1)})
}

// startDNS runs dnsmasq on port 53 of addr, answering for example.test.
func startDNS(t *testing.T, addr netip.Addr) {
	t.Helper()
	bin := testpeer.Path(t, "dnsmasq")
	cmd := exec.Command(bin, "--no-daemon", "--port=53", "--listen-address="+addr.String(), "--bind-interfaces",
		"--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file=", "--log-facility=-",
		"--address=/example.test/192.0.2.7", "--user=root")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var log strings.Builder
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "started, version") {
				started <- ""
				io.Copy(io.Discard, stderr)
				return
			}
		}
		started <- log.String()
	}()
	select {
	case msg := <-started:
		if msg != "" {
			t.Fatalf("dnsmasq did not start:\n%s", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dnsmasq did not start within 10 s")
	}
}

// exchangeAll is what the live tests capture: on addr, a TCP connection
// (handshake, data both ways, FIN from each side), a UDP datagram each
// way, and a DNS query to dnsmasq on port 53, every socket through the
// table.
func (e *capEnv) exchangeAll(addr netip.Addr) (names map[uint16]string) {
	e.t.Helper()
	names = map[uint16]string{53: "dnsmasq"}
	name := func(s *sock.Socket, n string) {
		a, _ := s.LocalAddr()
		names[a.Port()] = n
	}
	at := func(port int) netip.AddrPort { return netip.AddrPortFrom(addr, uint16(port)) }

	l := e.open(sock.TCP)
	must(e.t, l.Bind(at(0)))
	must(e.t, l.Listen(4))
	laddr, _ := l.LocalAddr()
	c := e.open(sock.TCP)
	must(e.t, c.Connect(e.ctx, laddr))
	s, _, err := l.Accept(e.ctx)
	must(e.t, err)
	s.SetTimeout(5 * time.Second)
	name(c, "client")
	name(s, "server")
	_, err = c.Write(e.ctx, []byte("hello\n"))
	must(e.t, err)
	buf := make([]byte, 512)
	_, err = s.Read(e.ctx, buf)
	must(e.t, err)
	_, err = s.Write(e.ctx, []byte("world\n"))
	must(e.t, err)
	_, err = c.Read(e.ctx, buf)
	must(e.t, err)
	must(e.t, c.Close())
	if _, err := s.Read(e.ctx, buf); sock.Code(err) != "EOF" {
		e.t.Fatalf("server read after the client's close: %v, want EOF", err)
	}
	must(e.t, s.Close())
	must(e.t, l.Close())

	u1, u2 := e.open(sock.UDP), e.open(sock.UDP)
	must(e.t, u1.Bind(at(0)))
	must(e.t, u2.Bind(at(0)))
	a1, _ := u1.LocalAddr()
	a2, _ := u2.LocalAddr()
	must(e.t, u1.Connect(e.ctx, a2))
	name(u1, "udp1")
	name(u2, "udp2")
	_, err = u1.Write(e.ctx, []byte("ping"))
	must(e.t, err)
	_, _, _, err = u2.RecvFrom(e.ctx, buf)
	must(e.t, err)
	_, err = u2.SendTo(e.ctx, []byte("pong"), a1)
	must(e.t, err)
	_, _, _, err = u1.RecvFrom(e.ctx, buf)
	must(e.t, err)
	must(e.t, u1.Close())
	must(e.t, u2.Close())

	q := new(dns.Msg)
	q.SetQuestion("example.test.", dns.TypeA)
	wire, _ := q.Pack()
	d := e.open(sock.UDP)
	must(e.t, d.Connect(e.ctx, at(53)))
	_, err = d.Write(e.ctx, wire)
	must(e.t, err)
	name(d, "dns")
	n, err := d.Read(e.ctx, buf)
	must(e.t, err)
	var ans dns.Msg
	if err := ans.Unpack(buf[:n]); err != nil || len(ans.Answer) != 1 {
		e.t.Fatalf("DNS answer %v, %v", ans.String(), err)
	}
	must(e.t, d.Close())

	// A datagram to a port nobody listens on: the kernel answers with an
	// ICMP port unreachable, which belongs to the socket that sent it.
	x := e.open(sock.UDP)
	must(e.t, x.Connect(e.ctx, at(9)))
	name(x, "unreachable")
	_, err = x.Write(e.ctx, []byte("x"))
	must(e.t, err)
	if _, err := x.Read(e.ctx, buf); sock.Code(err) != "ECONNREFUSED" {
		e.t.Fatalf("read after a datagram to a closed port: %v, want ECONNREFUSED", err)
	}
	must(e.t, x.Close())
	return names
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Lines of the same exchange from three sources agree: sockplay's own,
// tcpdump reading sockplay's pcap, and tcpdump capturing alongside with
// the same filter (which counts the same packets).
func TestCaptureMatchesTcpdump(t *testing.T) {
	testpeer.Root(t)
	addr := randomLoopback()
	startDNS(t, addr)
	filter := "host " + addr.String()
	_, stopTcpdump := tcpdumpAlongside(t, filter)
	e := newCapEnv(t, Options{Filter: filter})
	e.exchangeAll(addr)
	shown := e.stop()
	alongside := stopTcpdump()

	ours := lines(shown)
	for i := range ours {
		ours[i], _, _ = strings.Cut(ours[i], "  -- ")
	}
	if len(shown) != len(alongside) {
		t.Errorf("sockplay kept %d packets, tcpdump alongside %d", len(shown), len(alongside))
	}
	theirs := lines(alongside)
	for i := range theirs {
		theirs[i] = strings.TrimRight(theirs[i], " ")
	}
	fromPcap := tcpdumpReads(t, e.pcap.Bytes())
	for i := 0; i < max(len(ours), len(fromPcap), len(theirs)); i++ {
		o, p, a := at(ours, i), at(fromPcap, i), at(theirs, i)
		if o != p {
			t.Errorf("packet %d: sockplay shows\n\t%s\ntcpdump -r of its pcap shows\n\t%s", i+1, o, p)
		}
		if withoutTimestampOptions(o) != withoutTimestampOptions(a) {
			t.Errorf("packet %d: sockplay shows\n\t%s\ntcpdump alongside shows\n\t%s", i+1, o, a)
		}
	}
	for _, want := range []string{"Flags [S]", "Flags [F.]", "UDP, length 4", "A? example.test.", "A 192.0.2.7", "udp port 9 unreachable"} {
		if !strings.Contains(strings.Join(ours, "\n"), want) {
			t.Errorf("no line with %q in:\n%s", want, strings.Join(ours, "\n"))
		}
	}
	st := e.c.Stats()
	if st.Dropped != 0 || st.Kept != uint64(len(shown)) || st.Received < st.Kept {
		t.Errorf("stats %+v for %d packets shown", st, len(shown))
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}

// withoutTimestampOptions: two captures of one exchange agree on every
// field (the same frames), so nothing needs hiding; kept for clarity.
func withoutTimestampOptions(s string) string { return s }

// tcpdumpReads is tcpdump -nn -r on pcap bytes, without timestamps.
func tcpdumpReads(t *testing.T, pcap []byte) []string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "ours.pcap")
	if err := os.WriteFile(file, pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testpeer.Path(t, "tcpdump"), "-nn", "-r", file).Output()
	if err != nil {
		t.Fatalf("tcpdump -r on sockplay's pcap: %v", err)
	}
	var ls []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			ls = append(ls, stripTime(l))
		}
	}
	return ls
}

// The calls behind the packets: connect sent the SYN, write the data,
// close the FIN; the SYN-ACK and the ACKs are the kernel's.
func TestCaptureNamesTheCalls(t *testing.T) {
	testpeer.Root(t)
	addr := randomLoopback()
	startDNS(t, addr)
	e := newCapEnv(t, Options{Filter: "host " + addr.String()})
	names := e.exchangeAll(addr)
	shown := e.stop()
	f := NewFormatter()
	d := newFlowDecoder()
	var got []string
	for _, p := range shown {
		fi := d.flow(p.Link, p.Data)
		got = append(got, strings.TrimSpace(names[fi.src.Port()]+" "+p.Call))
		t.Logf("%-70.70s %s", f.Summary(p), Annotation(p))
	}
	want := []string{
		"client connect", // SYN
		"server kernel",  // SYN-ACK
		"client kernel",  // ACK
		"client write",   // hello
		"server kernel",  // ACK
		"server write",   // world
		"client kernel",  // ACK
		"client close",   // FIN
		"server close",   // FIN
		"client kernel",  // ACK
		"udp1 write",
		"udp2 sendto",
		"dns write",         // the query
		"dnsmasq",           // the answer: dnsmasq's socket is not ours
		"unreachable write", // to port 9
		"unreachable",       // the kernel's ICMP about it (the names go by the datagram it quotes)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// Without a filter a capture keeps the packets of the table's sockets
// only: traffic of sockets it does not own (Go's own here) is left out.
func TestCaptureKeepsOwnPacketsOnly(t *testing.T) {
	testpeer.Root(t)
	addr := randomLoopback()
	startDNS(t, addr)
	e := newCapEnv(t, Options{})
	// Foreign traffic, before and during ours.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	foreign := func() {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		must(t, err)
		c.Write([]byte("not ours"))
		c.Close()
	}
	foreign()
	e.exchangeAll(addr)
	foreign()
	shown := e.stop()
	foreignPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	f := NewFormatter()
	for _, p := range shown {
		line := f.Summary(p)
		if p.FD < 0 {
			t.Errorf("a packet of no socket of ours: %s", line)
		}
		if strings.Contains(line, "."+foreignPort+" ") || strings.Contains(line, "."+foreignPort+":") {
			t.Errorf("foreign traffic kept: %s", line)
		}
	}
	if len(shown) < 12 {
		t.Errorf("only %d packets kept", len(shown))
	}
	var pc bytes.Buffer
	pc.Write(e.pcap.Bytes())
	if n := len(tcpdumpReads(t, pc.Bytes())); n != len(shown) {
		t.Errorf("the pcap holds %d packets, %d were shown", n, len(shown))
	}
}

// A capture that only writes a pcap file follows the table without
// hearing a single call, and still keeps every packet of its sockets,
// short-lived ones included: the same ones as a filter on their address.
func TestCapturePcapOnlyKeepsEveryOwnPacket(t *testing.T) {
	testpeer.Root(t)
	addr := randomLoopback()
	startDNS(t, addr)
	e := newCapEnv(t, Options{Filter: "host " + addr.String()})
	var own bytes.Buffer
	c, err := Open(e.ctx, e.tbl, Options{Pcap: &own, Keep: -1})
	if err != nil {
		t.Fatal(err)
	}
	if e.tbl.Tracing() != true {
		t.Fatal("the filtered capture should listen to calls")
	}
	e.exchangeAll(addr)
	shown := e.stop()
	must(t, c.Stop())
	if n := len(tcpdumpReads(t, own.Bytes())); n != len(shown) {
		t.Errorf("the pcap-only capture kept %d packets, the filter on the address %d", n, len(shown))
	}
	if c.unlisten != nil {
		t.Error("a pcap-only capture listens to the calls")
	}
}
