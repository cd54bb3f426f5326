package wire

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"sockplay/internal/testpeer"
)

// mixedFrames is traffic of many kinds for the filter to tell apart.
func mixedFrames(t *testing.T) []Packet {
	m := &frameMaker{t: t, at: time.Unix(1700000000, 0)}
	six := func(src, dst string, next layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	}
	for _, pr := range [][2]int{{40000, 53}, {53, 40000}, {40001, 80}, {8080, 40002}, {1234, 5678}, {7000, 7001}} {
		m.add(ip4("127.0.0.1", "127.0.0.2", layers.IPProtocolTCP), segment(pr[0], pr[1], "S", 1, 0))
		m.add(ip4("10.0.0.7", "127.0.0.1", layers.IPProtocolUDP), &layers.UDP{SrcPort: layers.UDPPort(pr[0]), DstPort: layers.UDPPort(pr[1])}, gopacket.Payload("x"))
		m.add(six("::1", "2001:db8::5", layers.IPProtocolTCP), segment(pr[0], pr[1], "P.", 1, 1), gopacket.Payload("y"))
		m.add(six("2001:db8::5", "::1", layers.IPProtocolUDP), &layers.UDP{SrcPort: layers.UDPPort(pr[0]), DstPort: layers.UDPPort(pr[1])}, gopacket.Payload("z"))
	}
	m.add(ip4("127.0.0.1", "127.0.0.53", layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 53}, gopacket.Payload("both"))
	m.add(ip4("127.0.0.1", "127.0.0.1", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1})
	m.add(six("::1", "::1", layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1})
	// A later IPv4 fragment: no ports in it, whatever its bytes say.
	frag := ip4("127.0.0.1", "127.0.0.2", layers.IPProtocolUDP)
	frag.FragOffset = 100
	m.add(frag, gopacket.Payload([]byte{0, 53, 0, 53, 0, 0, 0, 0}))
	// ARP, which host matches in tcpdump too.
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: make([]byte, 6), SourceProtAddress: []byte{10, 0, 0, 7},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 9}}
	m.add(arp)
	return m.pkts
}

// The filters the compiler is checked on, and one more form each: the
// kernel runs our program, tcpdump its own; both must keep the same frames.
var checkedFilters = []string{
	"tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp",
	"port 53", "src port 53", "dst port 53", "tcp port 80", "udp port 53", "tcp src port 8080",
	"port 53 or 80", "portrange 1000-6000", "udp portrange 50-60",
	"host 127.0.0.1", "src host 127.0.0.1", "dst host 127.0.0.2", "host 10.0.0.7", "src 10.0.0.7",
	"host ::1", "dst host 2001:db8::5", "ip6 host ::1", "net 10.0.0.0/8", "net 2001:db8::/32",
	"not tcp", "tcp and not port 80", "udp or icmp", "(tcp or udp) and port 53",
	"not (port 53 or port 80) and ip", "! tcp && ! udp", "tcp || icmp6",
	"src or dst port 7000", "src and dst port 53", "host 10.0.0.9", "arp host 10.0.0.7",
	"ip host 10.0.0.7 and udp",
}

func TestFilterKeepsWhatTcpdumpKeeps(t *testing.T) {
	tcpdump := testpeer.Path(t, "tcpdump")
	// Frames built to cover the cases, then traffic captured on loopback.
	pkts := mixedFrames(t)
	last := pkts[len(pkts)-1].Time
	for _, name := range []string{"http.pcap", "dns.pcap", "ipv6.pcap", "rst.pcap", "loss.pcap"} {
		for _, p := range testFrames(t, name) {
			last = last.Add(time.Millisecond) // a time of its own names each frame
			p.Time = last
			pkts = append(pkts, p)
		}
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pcap")
	writePcapFile(t, in, pkts)
	for _, expr := range checkedFilters {
		out := filepath.Join(dir, "out.pcap")
		if msg, err := exec.Command(tcpdump, "-r", in, "-w", out, expr).CombinedOutput(); err != nil {
			t.Fatalf("tcpdump %q: %v: %s", expr, err, msg)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		kept, err := ReadPcap(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		theirs := map[int64]bool{}
		for _, p := range kept {
			theirs[p.Time.UnixNano()] = true
		}
		prog, err := CompileFilter(expr, layers.LinkTypeEthernet, 0)
		if err != nil {
			t.Errorf("CompileFilter(%q): %v", expr, err)
			continue
		}
		vm, err := bpf.NewVM(prog)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		var diff []string
		ours := 0
		for i, p := range pkts {
			n, err := vm.Run(p.Data)
			if err != nil {
				t.Fatalf("%q on packet %d: %v", expr, i+1, err)
			}
			if n > 0 {
				ours++
			}
			if (n > 0) != theirs[p.Time.UnixNano()] {
				diff = append(diff, NewFormatter().Summary(p))
			}
		}
		if len(diff) > 0 {
			t.Errorf("filter %q: we keep %d frames, tcpdump %d; we differ on:\n\t%s", expr, ours, len(kept), strings.Join(diff, "\n\t"))
		}
		if len(kept) == 0 || len(kept) == len(pkts) {
			t.Errorf("filter %q kept %d of %d frames: the case tells nothing", expr, len(kept), len(pkts))
		}
	}
}

// On a TUN device frames begin with the IP header: the same filter must
// keep the same packets there.
func TestFilterWithoutLinkHeader(t *testing.T) {
	pkts := mixedFrames(t)
	for _, expr := range []string{"tcp", "udp port 53", "host ::1", "ip6", "src host 127.0.0.1 and tcp", "arp", "icmp"} {
		eth, err := CompileFilter(expr, layers.LinkTypeEthernet, 0)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := CompileFilter(expr, layers.LinkTypeRaw, 0)
		if err != nil {
			t.Fatal(err)
		}
		ve, _ := bpf.NewVM(eth)
		vr, _ := bpf.NewVM(raw)
		for i, p := range pkts {
			ne, _ := ve.Run(p.Data)
			want := ne > 0
			if p.Data[12] == 0x08 && p.Data[13] == 0x06 {
				want = false // ARP has no place on a TUN device
			}
			nr, _ := vr.Run(p.Data[14:])
			if (nr > 0) != want {
				t.Errorf("%q on packet %d without its Ethernet header: kept %v, with it %v", expr, i+1, nr > 0, ne > 0)
			}
		}
	}
}

func TestFilterErrorsNameThePosition(t *testing.T) {
	for expr, want := range map[string]string{
		"port x":                  `filter: expected a port number at position 6: "port x"`,
		"tcp and":                 `filter: expected a primitive (tcp, host, port ...) at position 8: "tcp and"`,
		"host example.com":        `filter: expected an IP address (names are not looked up) at position 6: "host example.com"`,
		"(tcp or udp":             `filter: expected ) at position 12: "(tcp or udp"`,
		"tcp udp":                 `filter: expected and, or or the end at position 5: "tcp udp"`,
		"port 70000":              `filter: expected a port number at position 6: "port 70000"`,
		"portrange 9-1":           `filter: expected a port range (N-M) at position 11: "portrange 9-1"`,
		"tcp host 127.0.0.1":      `filter: tcp does not go with host at position 1: "tcp host 127.0.0.1"`,
		"ip6 host 127.0.0.1":      `filter: address of the wrong family for ip6 at position 10: "ip6 host 127.0.0.1"`,
		"tcp[13] & 2 != 0":        `filter: expected a primitive (tcp, host, port ...) at position 1: "tcp[13] & 2 != 0"`,
		"src port 53 and 80 or )": `filter: expected a primitive (tcp, host, port ...) at position 23: "src port 53 and 80 or )"`,
	} {
		_, err := CompileFilter(expr, layers.LinkTypeEthernet, 0)
		if err == nil || err.Error() != want {
			t.Errorf("CompileFilter(%q) = %v\n want %s", expr, err, want)
		}
	}
}
