package wire

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"

	"sockplay/internal/testpeer"
)

// tcpdumpSays runs tcpdump -nn -r on pkts (written as a pcap) and returns
// its lines without their timestamps.
func tcpdumpSays(t *testing.T, pkts []Packet) []string {
	t.Helper()
	tcpdump := testpeer.Path(t, "tcpdump")
	file := filepath.Join(t.TempDir(), "x.pcap")
	writePcapFile(t, file, pkts)
	out, err := exec.Command(tcpdump, "-nn", "-r", file).Output()
	if err != nil {
		t.Fatalf("tcpdump -nn -r: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for i, l := range lines {
		lines[i] = stripTime(l)
	}
	return lines
}

func writePcapFile(t *testing.T, file string, pkts []Packet) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	link := layers.LinkTypeEthernet
	if len(pkts) > 0 {
		link = pkts[0].Link
	}
	w, err := NewPcapWriter(f, link, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// stripTime drops tcpdump's leading HH:MM:SS.uuuuuu.
func stripTime(l string) string {
	if len(l) > 16 && l[2] == ':' && l[15] == ' ' {
		return l[16:]
	}
	return l
}

// sameLines compares our summaries of pkts with tcpdump's lines.
func sameLines(t *testing.T, name string, pkts []Packet) {
	t.Helper()
	want := tcpdumpSays(t, pkts)
	f := NewFormatter()
	if len(want) != len(pkts) {
		t.Fatalf("%s: tcpdump printed %d lines for %d packets:\n%s", name, len(want), len(pkts), strings.Join(want, "\n"))
	}
	bad := 0
	for i, p := range pkts {
		got := f.Summary(p)
		if got != want[i] {
			bad++
			t.Errorf("%s packet %d:\n got: %s\nwant: %s", name, i+1, got, want[i])
		}
	}
	if bad == 0 && testing.Verbose() {
		t.Logf("%s: %d lines as tcpdump prints them", name, len(pkts))
	}
}

func TestLinesMatchTcpdumpOnCaptures(t *testing.T) {
	names, _ := filepath.Glob("testdata/*.pcap")
	if len(names) == 0 {
		t.Fatal("no captures in testdata")
	}
	for _, name := range names {
		pkts := testFrames(t, filepath.Base(name))
		sameLines(t, name, pkts)
	}
}

// frameMaker builds Ethernet frames as loopback carries them.
type frameMaker struct {
	t    *testing.T
	at   time.Time
	pkts []Packet
}

func (m *frameMaker) add(ls ...gopacket.SerializableLayer) {
	m.t.Helper()
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: make(net.HardwareAddr, 6), DstMAC: make(net.HardwareAddr, 6), EthernetType: layers.EthernetTypeIPv4}
	switch ls[0].(type) {
	case *layers.IPv6:
		eth.EthernetType = layers.EthernetTypeIPv6
	case *layers.ARP:
		eth.EthernetType = layers.EthernetTypeARP
	}
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.TCP:
			l.SetNetworkLayerForChecksum(ls[0].(gopacket.NetworkLayer))
		case *layers.UDP:
			l.SetNetworkLayerForChecksum(ls[0].(gopacket.NetworkLayer))
		case *layers.ICMPv6:
			l.SetNetworkLayerForChecksum(ls[0].(gopacket.NetworkLayer))
		}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append([]gopacket.SerializableLayer{eth}, ls...)...); err != nil {
		m.t.Fatal(err)
	}
	m.at = m.at.Add(time.Millisecond)
	data := append([]byte(nil), buf.Bytes()...)
	m.pkts = append(m.pkts, Packet{Time: m.at, Link: layers.LinkTypeEthernet, Data: data, WireLen: len(data), FD: -1, PeerFD: -1})
}

func ip4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

// segment is a segment from a to b: flags as tcpdump writes them.
func segment(sport, dport int, flags string, seq, ack uint32, opts ...layers.TCPOption) *layers.TCP {
	t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, Ack: ack, Window: 512, Options: opts}
	t.FIN = strings.Contains(flags, "F")
	t.SYN = strings.Contains(flags, "S")
	t.RST = strings.Contains(flags, "R")
	t.PSH = strings.Contains(flags, "P")
	t.ACK = strings.Contains(flags, ".")
	t.URG = strings.Contains(flags, "U")
	t.ECE = strings.Contains(flags, "E")
	t.CWR = strings.Contains(flags, "W")
	if t.URG {
		t.Urgent = 3
	}
	return t
}

func opt(kind layers.TCPOptionKind, data ...byte) layers.TCPOption {
	return layers.TCPOption{OptionType: kind, OptionLength: uint8(2 + len(data)), OptionData: data}
}

var nop = layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1}

// TCP as tcpdump prints it: flags, relative sequence numbers (kept only
// for segments with ACK), options, and HTTP's first line on port 80.
func TestTCPLinesMatchTcpdump(t *testing.T) {
	m := &frameMaker{t: t, at: time.Unix(1700000000, 0)}
	c, s := "127.0.0.1", "127.0.0.2"
	tcp := func(from, to string, sport, dport int, seg *layers.TCP, payload string) {
		seg.SrcPort, seg.DstPort = layers.TCPPort(sport), layers.TCPPort(dport)
		m.add(ip4(from, to, layers.IPProtocolTCP), seg, gopacket.Payload(payload))
	}
	// A handshake, data both ways, SACK, a close, and segments without ACK.
	tcp(c, s, 4000, 80, segment(0, 0, "S", 1000, 0, opt(2, 0xff, 0xd7), opt(4), opt(8, 0, 0, 0, 1, 0, 0, 0, 0), nop, opt(3, 7)), "")
	tcp(s, c, 80, 4000, segment(0, 0, "S.", 5000, 1001, opt(2, 0xff, 0xd7), opt(4), nop, opt(3, 7)), "")
	tcp(c, s, 4000, 80, segment(0, 0, ".", 1001, 5001), "")
	tcp(c, s, 4000, 80, segment(0, 0, "P.", 1001, 5001), "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
	tcp(s, c, 80, 4000, segment(0, 0, ".", 5001, 1038, nop, nop, opt(5, 0, 0, 0x03, 0xf2, 0, 0, 0x03, 0xf6)), "")
	tcp(s, c, 80, 4000, segment(0, 0, "P.", 5001, 1038), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
	tcp(s, c, 80, 4000, segment(0, 0, "P.", 5040, 1038), "body without a start line")
	tcp(c, s, 4000, 80, segment(0, 0, "P.", 1038, 5060), "PATCH / HTTP/1.1\r\n")
	tcp(c, s, 4000, 80, segment(0, 0, "P.", 1056, 5060), "GET /cut")
	tcp(c, s, 4000, 80, segment(0, 0, "FP.", 1064, 5060), "")
	tcp(s, c, 80, 4000, segment(0, 0, "F.", 5060, 1065), "")
	tcp(c, s, 4000, 80, segment(0, 0, ".U", 1065, 5061), "")
	tcp(c, s, 4000, 80, segment(0, 0, "R", 1065, 0), "")
	tcp(c, s, 4000, 80, segment(0, 0, "SEW", 7000, 0), "")
	tcp(c, s, 4001, 9999, segment(0, 0, "", 1, 2), "")
	tcp(c, s, 4001, 9999, segment(0, 0, "P", 1, 0), "abc")
	tcp(c, s, 4002, 9999, segment(0, 0, ".", 77, 88, opt(99, 1, 2), opt(19, make([]byte, 16)...), opt(34), opt(254, 0, 0xff)), "")
	tcp(s, c, 9, 4003, segment(0, 0, "R.", 0, 1001), "")
	sameLines(t, "tcp", m.pkts)
}

func TestUDPAndICMPLinesMatchTcpdump(t *testing.T) {
	m := &frameMaker{t: t, at: time.Unix(1700000000, 0)}
	m.add(ip4("127.0.0.1", "127.0.0.1", layers.IPProtocolUDP), &layers.UDP{SrcPort: 4000, DstPort: 4001}, gopacket.Payload("hello"))
	m.add(ip4("127.0.0.1", "127.0.0.1", layers.IPProtocolUDP), &layers.UDP{SrcPort: 4000, DstPort: 4001}, gopacket.Payload(""))
	// A port unreachable quoting the datagram it answers.
	quoted := gopacket.NewSerializeBuffer()
	qip := ip4("127.0.0.1", "127.0.0.3", layers.IPProtocolUDP)
	qudp := &layers.UDP{SrcPort: 4000, DstPort: 9912}
	qudp.SetNetworkLayerForChecksum(qip)
	gopacket.SerializeLayers(quoted, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, qip, qudp, gopacket.Payload("hi\n"))
	m.add(ip4("127.0.0.1", "127.0.0.1", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(quoted.Bytes()))
	m.add(ip4("127.0.0.1", "127.0.0.1", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 1)}, gopacket.Payload(quoted.Bytes()))
	m.add(ip4("127.0.0.1", "127.0.0.1", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7, Seq: 1}, gopacket.Payload(make([]byte, 56)))
	m.add(ip4("127.0.0.1", "127.0.0.1", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: 7, Seq: 1}, gopacket.Payload(make([]byte, 56)))
	m.add(ip4("127.0.0.1", "127.0.0.1", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(11, 0)}, gopacket.Payload(quoted.Bytes()))
	six := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.IPv6loopback, DstIP: net.IPv6loopback}
	m.add(six, &layers.UDP{SrcPort: 5000, DstPort: 5001}, gopacket.Payload("x"))
	sameLines(t, "udp and icmp", m.pkts)
}

// DNS: tcpdump's summary of queries and answers, on port 53 over UDP and
// TCP and on 5353 (multicast DNS), from messages miekg/dns builds.
func TestDNSLinesMatchTcpdump(t *testing.T) {
	m := &frameMaker{t: t, at: time.Unix(1700000000, 0)}
	udp := func(sport, dport int, msg *dns.Msg) {
		wire, err := msg.Pack()
		if err != nil {
			t.Fatal(err)
		}
		m.add(ip4("127.0.0.1", "127.0.0.53", layers.IPProtocolUDP), &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, gopacket.Payload(wire))
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	q := new(dns.Msg)
	q.SetQuestion("example.test.", dns.TypeA)
	q.Id = 1234
	udp(40000, 53, q)
	q.SetEdns0(1232, true)
	udp(40000, 53, q)
	a := new(dns.Msg)
	a.SetReply(q)
	a.Authoritative = true
	a.RecursionAvailable = true
	a.Answer = []dns.RR{rr("example.test. 60 IN A 10.1.2.3"), rr("example.test. 60 IN AAAA 2001:db8::1")}
	udp(53, 40000, a)
	for _, s := range []string{
		"example.test. 60 IN MX 10 mail.example.test.",
		"example.test. 60 IN TXT \"v=spf1 -all\" \"two\"",
		"www.example.test. 60 IN CNAME example.test.",
		"3.2.1.10.in-addr.arpa. 60 IN PTR host.example.test.",
		"_sip._udp.example.test. 60 IN SRV 10 20 5060 sip.example.test.",
		"example.test. 60 IN NS ns1.example.test.",
		"example.test. 60 IN SOA ns1.example.test. admin.example.test. 1 2 3 4 5",
		"example.test. 60 IN CAA 0 issue \"ca.test\"",
		"example.test. 60 CH TXT \"chaos\"",
	} {
		r := rr(s)
		m1 := new(dns.Msg)
		m1.SetQuestion(r.Header().Name, r.Header().Rrtype)
		m1.Question[0].Qclass = r.Header().Class
		udp(40001, 53, m1)
		m2 := new(dns.Msg)
		m2.SetReply(m1)
		m2.Answer = []dns.RR{r}
		udp(53, 40001, m2)
	}
	nx := new(dns.Msg)
	nx.SetRcode(q, dns.RcodeNameError)
	nx.RecursionAvailable = false
	nx.Truncated = true
	nx.AuthenticatedData = true
	nx.Ns = []dns.RR{rr("test. 60 IN SOA ns.test. a.test. 1 2 3 4 5")}
	udp(53, 40000, nx)
	odd := new(dns.Msg)
	odd.SetQuestion("odd.test.", dns.TypeANY)
	odd.CheckingDisabled = true
	odd.RecursionDesired = false
	odd.Question = append(odd.Question, dns.Question{Name: ".", Qtype: dns.TypeNS, Qclass: dns.ClassINET})
	odd.Answer = []dns.RR{rr("odd.test. 60 IN A 1.1.1.1")}
	odd.Ns = []dns.RR{rr("odd.test. 60 IN NS a.test.")}
	udp(40002, 53, odd)
	st := new(dns.Msg)
	st.SetQuestion("example.test.", dns.TypeA)
	st.Opcode = dns.OpcodeNotify
	udp(40003, 53, st)
	st.Opcode = dns.OpcodeUpdate
	st.Rcode = dns.RcodeRefused
	st.Response = true
	udp(53, 40003, st)
	md := new(dns.Msg)
	md.SetQuestion("printer.local.", dns.TypePTR)
	md.Question[0].Qclass |= 0x8000
	udp(5353, 5353, md)
	md.Question[0].Qclass &^= 0x8000
	udp(5353, 5353, md)
	md2 := new(dns.Msg)
	md2.Response, md2.Authoritative = true, true
	r := rr("printer.local. 120 IN A 10.0.0.9")
	r.Header().Class |= 0x8000
	md2.Answer = []dns.RR{r}
	udp(5353, 5353, md2)
	// Over TCP: a two-byte length before the message.
	wire, _ := a.Pack()
	seg := append([]byte{byte(len(wire) >> 8), byte(len(wire))}, wire...)
	m.add(ip4("127.0.0.53", "127.0.0.1", layers.IPProtocolTCP), segment(53, 40004, "P.", 1, 2), gopacket.Payload(seg))
	// Damaged: a message cut inside its answer, and bytes that are not DNS.
	udp2 := func(payload []byte) {
		m.add(ip4("127.0.0.1", "127.0.0.53", layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 40005}, gopacket.Payload(payload))
	}
	udp2([]byte("not dns at all, not at all"))
	udp2([]byte{1, 2, 3})
	sameLines(t, "dns", m.pkts)
}

// Damage tcpdump words in its own way: the line shows what decoded and
// marks where it stopped.
func TestLinesOfDamagedPackets(t *testing.T) {
	m := &frameMaker{t: t, at: time.Unix(1700000000, 0)}
	m.add(ip4("127.0.0.1", "127.0.0.2", layers.IPProtocolTCP), segment(4004, 9999, ".", 5, 6, layers.TCPOption{OptionType: 2, OptionLength: 3, OptionData: []byte{1}}))
	a := new(dns.Msg)
	a.SetQuestion("example.test.", dns.TypeA)
	a.Response = true
	for _, s := range []string{"example.test. 60 IN A 10.1.2.3", "example.test. 60 IN AAAA ::1"} {
		r, _ := dns.NewRR(s)
		a.Answer = append(a.Answer, r)
	}
	full, _ := a.Pack()
	m.add(ip4("127.0.0.1", "127.0.0.53", layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 40005}, gopacket.Payload(full[:len(full)-6]))
	f := NewFormatter()
	for i, want := range []string{
		"IP 127.0.0.1.4004 > 127.0.0.2.9999: Flags [.], ack 6, win 512, options [mss[bad opt]",
		"IP 127.0.0.1.53 > 127.0.0.53.40005: " + strconv.Itoa(int(a.Id)) + "- 2/0/0 A 10.1.2.3 [|domain]",
	} {
		if got := f.Summary(m.pkts[i]); got != want {
			t.Errorf("packet %d:\n got: %s\nwant: %s", i+1, got, want)
		}
	}
}

// A frame cut short by the snapshot length prints as far as it goes.
func TestLinesOfCutFrames(t *testing.T) {
	pkts := testFrames(t, "http.pcap")
	var cut []Packet
	for _, p := range pkts {
		for _, n := range []int{10, 20, 40, 54, 60} {
			if n < len(p.Data) {
				q := p
				q.Data = bytes.Clone(p.Data[:n])
				cut = append(cut, q)
			}
		}
	}
	f := NewFormatter()
	for _, p := range cut {
		if s := f.Summary(p); s == "" {
			t.Errorf("no line for a frame of %d bytes", len(p.Data))
		}
	}
}

// An option whose length cannot be followed (below 2, or past the option
// area), first or after others: tcpdump lists the options before it,
// writes [bad opt] and ends the line.
func TestLinesOfBadOptionsMatchTcpdump(t *testing.T) {
	base := testFrames(t, "http.pcap")[3] // options: nop, nop, TS at bytes 54-65
	damaged := func(at int, v byte, more ...byte) Packet {
		p := base
		p.Data = append([]byte(nil), base.Data...)
		p.Data[at] = v
		copy(p.Data[at+1:], more)
		return p
	}
	sameLines(t, "bad options", []Packet{
		damaged(54, 8, 1),  // the first option: length 1
		damaged(54, 8, 64), // the first option: longer than the area
		damaged(57, 1),     // TS with length 1
		damaged(57, 64),    // TS longer than the area
		damaged(46, 0xf0),  // data offset 15: the request's bytes read as options
	})
}
