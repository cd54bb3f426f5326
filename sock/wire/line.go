package wire

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Formatter renders packets the way `tcpdump -nn` prints them. It keeps
// tcpdump's per-connection state (the bases of relative sequence numbers),
// so one Formatter must see one capture's packets, in order.
type Formatter struct {
	conns map[connKey]*seqBases
}

// connKey names a TCP connection by its two ends in a fixed order (the
// smaller address first), so both directions find the same entry.
type connKey struct{ a, b netip.AddrPort }

// seqBases holds what tcpdump subtracts from each end's sequence numbers.
type seqBases struct{ a, b uint32 }

// maxConns bounds the remembered connections; past it the formatter starts
// afresh (and prints the next segment of each connection absolute, as
// tcpdump does for a connection it meets in the middle).
const maxConns = 1 << 16

// NewFormatter returns a formatter that has seen no packet yet.
func NewFormatter() *Formatter { return &Formatter{conns: map[connKey]*seqBases{}} }

// TimeFormat is tcpdump's default timestamp: local time with microseconds.
const TimeFormat = "15:04:05.000000"

// Line is p as tcpdump -nn prints it: timestamp, then Summary.
func (f *Formatter) Line(p Packet) string {
	return p.Time.Local().Format(TimeFormat) + " " + f.Summary(p)
}

// Summary is p's line without the timestamp:
//
//	IP 127.0.0.1.46856 > 127.0.0.1.9911: Flags [S], seq 3083356498, win 65495, options [...], length 0
//
// What does not decode is shown as tcpdump shows it, as far as it goes.
func (f *Formatter) Summary(p Packet) string {
	var b strings.Builder
	f.frame(&b, p)
	return b.String()
}

// decodePacket decodes p's bytes with gopacket, from its link layer up.
func decodePacket(p Packet) gopacket.Packet {
	return gopacket.NewPacket(p.Data, p.Link, gopacket.DecodeOptions{NoCopy: true})
}

func (f *Formatter) frame(b *strings.Builder, p Packet) {
	pkt := decodePacket(p)
	ls := pkt.Layers()
	if len(ls) == 0 {
		fmt.Fprintf(b, "[|%s] length %d", linkName(p.Link), p.WireLen)
		return
	}
	i := 0
	switch ls[0].(type) {
	case *layers.LinuxSLL, *layers.Loopback:
		i = 1 // tcpdump -i any's cooked header, BSD loopback: no line of their own
	}
	if eth, ok := ls[0].(*layers.Ethernet); ok {
		i = 1
		switch eth.EthernetType {
		case layers.EthernetTypeIPv4, layers.EthernetTypeIPv6:
		case layers.EthernetTypeARP:
			arpLine(b, ls[1:], len(eth.Payload))
			return
		default:
			fmt.Fprintf(b, "ethertype %s (0x%04x), length %d: ", etherName(eth.EthernetType), uint16(eth.EthernetType), p.WireLen)
			b.WriteString(hexPayload(eth.Payload))
			return
		}
	}
	if i >= len(ls) {
		b.WriteString("[|ip]")
		return
	}
	switch ip := ls[i].(type) {
	case *layers.IPv4:
		f.ipv4(b, ip, ls[i+1:])
	case *layers.IPv6:
		f.ipv6(b, ip, ls[i+1:])
	case *gopacket.DecodeFailure:
		if p.Link == layers.LinkTypeEthernet || len(ip.LayerContents()) == 0 || ip.LayerContents()[0]>>4 == 4 {
			b.WriteString("IP [|ip]")
		} else {
			b.WriteString("IP6 [|ip6]")
		}
	default:
		fmt.Fprintf(b, "%s, length %d", ls[i].LayerType(), p.WireLen)
	}
}

func linkName(l layers.LinkType) string {
	if l == layers.LinkTypeEthernet {
		return "ether"
	}
	return "ip"
}

func etherName(t layers.EthernetType) string {
	switch t {
	case layers.EthernetTypeLinkLayerDiscovery:
		return "LLDP"
	case layers.EthernetTypeDot1Q:
		return "802.1Q"
	}
	return "Unknown"
}

// hexPayload is what is left of a packet nobody decodes, as bytes.
func hexPayload(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	return "0x" + hex.EncodeToString(p[:min(len(p), 32)])
}

// transport is what follows the network header: the next layer, the
// payload length the IP header claims for it, and whether the IP header
// said the packet is a fragment.
func (f *Formatter) ipv4(b *strings.Builder, ip *layers.IPv4, rest []gopacket.Layer) {
	b.WriteString("IP ")
	payloadLen := int(ip.Length) - int(ip.IHL)*4
	if ip.FragOffset != 0 {
		// A later fragment: no transport header to read.
		fmt.Fprintf(b, "%s > %s: ip-proto-%d", ip.SrcIP, ip.DstIP, ip.Protocol)
		return
	}
	src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
	dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
	f.transport(b, src, dst, ip.Protocol, payloadLen, rest)
}

func (f *Formatter) ipv6(b *strings.Builder, ip *layers.IPv6, rest []gopacket.Layer) {
	b.WriteString("IP6 ")
	src, _ := netip.AddrFromSlice(ip.SrcIP)
	dst, _ := netip.AddrFromSlice(ip.DstIP)
	payloadLen := int(ip.Length)
	next := ip.NextHeader
	// Extension headers (hop-by-hop, routing ...) come before the
	// transport; their bytes do not count in its length.
	for len(rest) > 0 {
		var nh layers.IPProtocol
		switch e := rest[0].(type) {
		case *layers.IPv6HopByHop:
			nh = e.NextHeader
		case *layers.IPv6Routing:
			nh = e.NextHeader
		case *layers.IPv6Destination:
			nh = e.NextHeader
		case *layers.IPv6Fragment:
			nh = e.NextHeader
		default:
			f.transport(b, src, dst, next, payloadLen, rest)
			return
		}
		payloadLen -= len(rest[0].LayerContents())
		next = nh
		rest = rest[1:]
	}
	f.transport(b, src, dst, next, payloadLen, rest)
}

func (f *Formatter) transport(b *strings.Builder, src, dst netip.Addr, proto layers.IPProtocol, payloadLen int, rest []gopacket.Layer) {
	var next gopacket.Layer
	if len(rest) > 0 {
		next = rest[0]
	}
	switch proto {
	case layers.IPProtocolTCP:
		tcp, ok := next.(*layers.TCP)
		if !ok {
			fmt.Fprintf(b, "%s > %s: [|tcp]", src, dst)
			return
		}
		f.tcp(b, src, dst, tcp, payloadLen)
	case layers.IPProtocolUDP:
		udp, ok := next.(*layers.UDP)
		if !ok {
			fmt.Fprintf(b, "%s > %s: [|udp]", src, dst)
			return
		}
		udpLine(b, src, dst, udp, rest[1:])
	case layers.IPProtocolICMPv4:
		fmt.Fprintf(b, "%s > %s: ", src, dst)
		icmp4Line(b, next, rest, payloadLen)
	case layers.IPProtocolICMPv6:
		fmt.Fprintf(b, "%s > %s: ", src, dst)
		icmp6Line(b, rest, payloadLen)
	default:
		fmt.Fprintf(b, "%s > %s: ip-proto-%d %d", src, dst, uint8(proto), payloadLen)
	}
}

func hostPort(a netip.Addr, port uint16) string {
	return a.String() + "." + strconv.Itoa(int(port))
}

// tcpFlagChars is the order tcpdump prints flags in.
func tcpFlags(t *layers.TCP) string {
	var s []byte
	for _, f := range []struct {
		on bool
		c  byte
	}{{t.FIN, 'F'}, {t.SYN, 'S'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.ACK, '.'}, {t.URG, 'U'}, {t.ECE, 'E'}, {t.CWR, 'W'}} {
		if f.on {
			s = append(s, f.c)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return string(s)
}

// relative turns seq and ack into tcpdump's relative numbers. Only
// segments with ACK set take part: the first one of a connection, and
// every one with SYN, sets the bases and prints absolute numbers.
func (f *Formatter) relative(src, dst netip.AddrPort, t *layers.TCP) (seq, ack, peerBase uint32) {
	seq, ack = t.Seq, t.Ack
	if !t.ACK {
		return seq, ack, 0
	}
	key, fromA := connKey{src, dst}, true
	if c := src.Addr().Compare(dst.Addr()); c > 0 || (c == 0 && src.Port() > dst.Port()) {
		key, fromA = connKey{dst, src}, false
	}
	base, ok := f.conns[key]
	if !ok || t.SYN {
		if !ok {
			if len(f.conns) >= maxConns {
				clear(f.conns)
			}
			base = &seqBases{}
			f.conns[key] = base
		}
		if fromA {
			base.a, base.b = seq, ack-1
		} else {
			base.b, base.a = seq, ack-1
		}
		return seq, ack, 0
	}
	if fromA {
		return seq - base.a, ack - base.b, base.b
	}
	return seq - base.b, ack - base.a, base.a
}

func (f *Formatter) tcp(b *strings.Builder, src, dst netip.Addr, t *layers.TCP, ipPayload int) {
	from, to := netip.AddrPortFrom(src, uint16(t.SrcPort)), netip.AddrPortFrom(dst, uint16(t.DstPort))
	b.WriteString(hostPort(src, uint16(t.SrcPort)))
	b.WriteString(" > ")
	b.WriteString(hostPort(dst, uint16(t.DstPort)))
	b.WriteString(": Flags [")
	b.WriteString(tcpFlags(t))
	b.WriteByte(']')
	length := ipPayload - int(t.DataOffset)*4
	if length < 0 {
		length = 0
	}
	seq, ack, peerBase := f.relative(from, to, t)
	if length > 0 || t.SYN || t.FIN || t.RST {
		fmt.Fprintf(b, ", seq %d", seq)
		if length > 0 {
			fmt.Fprintf(b, ":%d", seq+uint32(length))
		}
	}
	if t.ACK {
		fmt.Fprintf(b, ", ack %d", ack)
	}
	fmt.Fprintf(b, ", win %d", t.Window)
	if t.URG {
		fmt.Fprintf(b, ", urg %d", t.Urgent)
	}
	// gopacket stops at an option whose length cannot be followed and keeps
	// the rest of the option area as Padding; only an eol ends it lawfully.
	stopped := len(t.Padding) > 0 && (len(t.Options) == 0 || t.Options[len(t.Options)-1].OptionType != layers.TCPOptionKindEndList)
	if len(t.Options) > 0 || stopped {
		b.WriteString(", options [")
		if !tcpOptions(b, t.Options, peerBase) {
			return // tcpdump ends the line at a malformed option
		}
		if stopped {
			// tcpdump closes the list only when an option came before.
			if len(t.Options) > 0 {
				b.WriteString(",[bad opt]]")
			} else {
				b.WriteString("[bad opt]")
			}
			return
		}
		b.WriteByte(']')
	}
	fmt.Fprintf(b, ", length %d", length)
	if length == 0 {
		return
	}
	payload := t.Payload
	switch {
	case t.SrcPort == 53 || t.DstPort == 53:
		// DNS over TCP: a two-byte length, then the message.
		b.WriteByte(' ')
		if len(payload) < 2 {
			b.WriteString("[|domain]")
			return
		}
		dnsSummary(b, payload[2:], false)
	case isHTTPPort(t.SrcPort) || isHTTPPort(t.DstPort):
		httpSummary(b, payload)
	}
}

// tcpOptions writes the options as tcpdump lists them; false when one is
// malformed (tcpdump stops the line there).
func tcpOptions(b *strings.Builder, opts []layers.TCPOption, peerBase uint32) bool {
	for i, o := range opts {
		if i > 0 {
			b.WriteByte(',')
		}
		d := o.OptionData
		switch o.OptionType {
		case layers.TCPOptionKindEndList:
			b.WriteString("eol")
			return true
		case layers.TCPOptionKindNop:
			b.WriteString("nop")
		case layers.TCPOptionKindMSS:
			if len(d) != 2 {
				b.WriteString("mss[bad opt]")
				return false
			}
			fmt.Fprintf(b, "mss %d", uint16(d[0])<<8|uint16(d[1]))
		case layers.TCPOptionKindWindowScale:
			if len(d) != 1 {
				b.WriteString("wscale[bad opt]")
				return false
			}
			fmt.Fprintf(b, "wscale %d", d[0])
		case layers.TCPOptionKindSACKPermitted:
			if len(d) != 0 {
				b.WriteString("sackOK[bad opt]")
				return false
			}
			b.WriteString("sackOK")
		case layers.TCPOptionKindSACK:
			if len(d)%8 != 0 {
				b.WriteString("sack[bad opt]")
				return false
			}
			fmt.Fprintf(b, "sack %d ", len(d)/8)
			for j := 0; j+8 <= len(d); j += 8 {
				fmt.Fprintf(b, "{%d:%d}", be32(d[j:])-peerBase, be32(d[j+4:])-peerBase)
			}
		case layers.TCPOptionKindTimestamps:
			if len(d) != 8 {
				b.WriteString("TS[bad opt]")
				return false
			}
			fmt.Fprintf(b, "TS val %d ecr %d", be32(d), be32(d[4:]))
		case 19: // TCP MD5 signature
			fmt.Fprintf(b, "md5 shared secret not supplied with -M, can't check - %x", d)
		case 34: // TCP Fast Open
			if len(d) == 0 {
				b.WriteString("tfo  cookiereq")
			} else {
				fmt.Fprintf(b, "tfo  cookie %x", d)
			}
		case 253, 254: // experimental, with a 16-bit ExID
			if len(d) < 2 {
				b.WriteString("exp[bad opt]")
				return false
			}
			fmt.Fprintf(b, "exp-%04x", uint16(d[0])<<8|uint16(d[1]))
		default:
			fmt.Fprintf(b, "unknown-%d", o.OptionType)
			if len(d) > 0 {
				fmt.Fprintf(b, " 0x%x", d)
			}
		}
	}
	return true
}

func isHTTPPort(p layers.TCPPort) bool { return p == 80 || p == 8080 }

// httpMethods are the request words after which tcpdump prints an HTTP
// request line (PATCH is not among them in tcpdump 4.99).
var httpMethods = map[string]bool{
	"OPTIONS": true, "GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "TRACE": true, "CONNECT": true,
	"PROPFIND": true, "PROPPATCH": true, "MKCOL": true, "COPY": true, "MOVE": true, "LOCK": true, "UNLOCK": true,
	"ORDERPATCH": true, "SEARCH": true, "REPORT": true, "CHECKOUT": true, "CHECKIN": true, "UNCHECKOUT": true,
	"MKWORKSPACE": true, "UPDATE": true, "LABEL": true, "MERGE": true, "BASELINE-CONTROL": true, "MKACTIVITY": true,
	"VERSION-CONTROL": true,
}

// httpSummary is what tcpdump adds after the length on an HTTP port:
// ": HTTP", and the first line when the segment begins with a request
// (a known method) or a response (a three-digit code as second word).
func httpSummary(b *strings.Builder, p []byte) {
	b.WriteString(": HTTP")
	first, rest := httpToken(p)
	if first == "" {
		return
	}
	ok := httpMethods[strings.ToUpper(first)]
	if !ok {
		second, _ := httpToken(rest)
		ok = len(second) == 3 && isDigit(second[0]) && isDigit(second[1]) && isDigit(second[2])
	}
	if !ok {
		return
	}
	line, complete := p, false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\n' || (c == '\r' && i+1 < len(p) && p[i+1] == '\n') {
			line, complete = p[:i], true
			break
		}
		if (c < 0x20 || c > 0x7e) && c != '\t' {
			return // not text: tcpdump prints nothing more
		}
	}
	b.WriteString(": ")
	b.Write(line)
	if !complete {
		b.WriteString(" [|http]")
	}
}

// httpToken is the first word of p (ended by a space, tab or line end)
// and what follows its separators.
func httpToken(p []byte) (string, []byte) {
	i := 0
	for i < len(p) && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n' {
		if p[i] < 0x20 || p[i] > 0x7e {
			return "", nil
		}
		i++
	}
	tok := string(p[:i])
	for i < len(p) && (p[i] == ' ' || p[i] == '\t') {
		i++
	}
	return tok, p[i:]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func udpLine(b *strings.Builder, src, dst netip.Addr, u *layers.UDP, rest []gopacket.Layer) {
	b.WriteString(hostPort(src, uint16(u.SrcPort)))
	b.WriteString(" > ")
	b.WriteString(hostPort(dst, uint16(u.DstPort)))
	b.WriteString(": ")
	switch {
	case u.SrcPort == 53 || u.DstPort == 53:
		dnsSummary(b, u.Payload, false)
	case u.SrcPort == 5353 || u.DstPort == 5353:
		dnsSummary(b, u.Payload, true)
	default:
		fmt.Fprintf(b, "UDP, length %d", int(u.Length)-8)
	}
}

func icmp4Line(b *strings.Builder, next gopacket.Layer, rest []gopacket.Layer, length int) {
	ic, ok := next.(*layers.ICMPv4)
	if !ok {
		b.WriteString("[|icmp]")
		return
	}
	b.WriteString("ICMP ")
	code := ic.TypeCode.Code()
	switch ic.TypeCode.Type() {
	case layers.ICMPv4TypeEchoRequest:
		fmt.Fprintf(b, "echo request, id %d, seq %d", ic.Id, ic.Seq)
	case layers.ICMPv4TypeEchoReply:
		fmt.Fprintf(b, "echo reply, id %d, seq %d", ic.Id, ic.Seq)
	case layers.ICMPv4TypeDestinationUnreachable:
		b.WriteString(unreachable4(code, ic.Payload))
	case layers.ICMPv4TypeTimeExceeded:
		if code == 0 {
			b.WriteString("time exceeded in-transit")
		} else {
			b.WriteString("ip reassembly time exceeded")
		}
	case layers.ICMPv4TypeSourceQuench:
		b.WriteString("source quench")
	case layers.ICMPv4TypeRedirect:
		b.WriteString("redirect")
	case layers.ICMPv4TypeParameterProblem:
		b.WriteString("parameter problem")
	default:
		fmt.Fprintf(b, "type-#%d", ic.TypeCode.Type())
	}
	fmt.Fprintf(b, ", length %d", length)
}

// unreachable4 words a destination-unreachable message from the header of
// the datagram it quotes.
func unreachable4(code uint8, quoted []byte) string {
	var inner layers.IPv4
	innerOK := decodeOne(&inner, quoted) == nil
	dst := "?"
	if innerOK {
		dst = inner.DstIP.String()
	}
	switch code {
	case layers.ICMPv4CodeNet:
		return "net " + dst + " unreachable"
	case layers.ICMPv4CodeHost:
		return "host " + dst + " unreachable"
	case layers.ICMPv4CodeProtocol:
		if innerOK {
			return fmt.Sprintf("%s protocol %d unreachable", dst, inner.Protocol)
		}
	case layers.ICMPv4CodePort:
		if innerOK && len(inner.Payload) >= 4 {
			port := uint16(inner.Payload[2])<<8 | uint16(inner.Payload[3])
			proto := strings.ToLower(inner.Protocol.String())
			return fmt.Sprintf("%s %s port %d unreachable", dst, proto, port)
		}
	case layers.ICMPv4CodeFragmentationNeeded:
		return dst + " unreachable - need to frag"
	case layers.ICMPv4CodeNetAdminProhibited, layers.ICMPv4CodeHostAdminProhibited, layers.ICMPv4CodeCommAdminProhibited:
		return dst + " unreachable - admin prohibited filter"
	}
	return fmt.Sprintf("%s unreachable - #%d", dst, code)
}

func icmp6Line(b *strings.Builder, rest []gopacket.Layer, length int) {
	if len(rest) == 0 {
		b.WriteString("[|icmp6]")
		return
	}
	ic, ok := rest[0].(*layers.ICMPv6)
	if !ok {
		b.WriteString("[|icmp6]")
		return
	}
	b.WriteString("ICMP6, ")
	var next gopacket.Layer
	if len(rest) > 1 {
		next = rest[1]
	}
	switch ic.TypeCode.Type() {
	case layers.ICMPv6TypeEchoRequest, layers.ICMPv6TypeEchoReply:
		word := "request"
		if ic.TypeCode.Type() == layers.ICMPv6TypeEchoReply {
			word = "reply"
		}
		if e, ok := next.(*layers.ICMPv6Echo); ok {
			fmt.Fprintf(b, "echo %s, id %d, seq %d", word, e.Identifier, e.SeqNumber)
		} else {
			fmt.Fprintf(b, "echo %s", word)
		}
	case layers.ICMPv6TypeNeighborSolicitation:
		if n, ok := next.(*layers.ICMPv6NeighborSolicitation); ok {
			fmt.Fprintf(b, "neighbor solicitation, who has %s", n.TargetAddress)
		} else {
			b.WriteString("neighbor solicitation")
		}
	case layers.ICMPv6TypeNeighborAdvertisement:
		if n, ok := next.(*layers.ICMPv6NeighborAdvertisement); ok {
			fmt.Fprintf(b, "neighbor advertisement, tgt is %s", n.TargetAddress)
		} else {
			b.WriteString("neighbor advertisement")
		}
	case layers.ICMPv6TypeRouterSolicitation:
		b.WriteString("router solicitation")
	case layers.ICMPv6TypeRouterAdvertisement:
		b.WriteString("router advertisement")
	case layers.ICMPv6TypeDestinationUnreachable:
		b.WriteString("destination unreachable")
	case layers.ICMPv6TypeTimeExceeded:
		b.WriteString("time exceeded in-transit")
	case layers.ICMPv6TypePacketTooBig:
		b.WriteString("packet too big")
	case 143:
		b.WriteString("multicast listener report v2")
	default:
		fmt.Fprintf(b, "type-#%d", ic.TypeCode.Type())
	}
	fmt.Fprintf(b, ", length %d", length)
}

func arpLine(b *strings.Builder, rest []gopacket.Layer, length int) {
	if len(rest) == 0 {
		b.WriteString("ARP, [|arp]")
		return
	}
	a, ok := rest[0].(*layers.ARP)
	if !ok || a.Protocol != layers.EthernetTypeIPv4 || len(a.SourceProtAddress) != 4 || len(a.DstProtAddress) != 4 {
		fmt.Fprintf(b, "ARP, length %d", length)
		return
	}
	spa, _ := netip.AddrFromSlice(a.SourceProtAddress)
	tpa, _ := netip.AddrFromSlice(a.DstProtAddress)
	switch a.Operation {
	case layers.ARPRequest:
		fmt.Fprintf(b, "ARP, Request who-has %s tell %s, length %d", tpa, spa, length)
	case layers.ARPReply:
		fmt.Fprintf(b, "ARP, Reply %s is-at %s, length %d", spa, macString(a.SourceHwAddress), length)
	default:
		fmt.Fprintf(b, "ARP, Unknown (%d), length %d", a.Operation, length)
	}
}

func macString(m []byte) string {
	parts := make([]string, len(m))
	for i, c := range m {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}

// Annotation is what sockplay adds after tcpdump's line: the socket the
// packet belongs to (the sender's, then the receiver's when both ends are
// ours) and the call that caused it, or the kernel:
//
//	-- fd 7 (task 1 (main)): connect
//	-- fd 8 (task 2 (server)) > fd 7 (task 1 (main)): kernel
//
// It is "" for a packet of no socket of ours.
func Annotation(p Packet) string {
	if p.FD < 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("-- ")
	fdOwner(&b, p.FD, p.Owner)
	if p.PeerFD >= 0 {
		b.WriteString(" > ")
		fdOwner(&b, p.PeerFD, p.PeerOwner)
	}
	if p.Call != "" {
		b.WriteString(": ")
		b.WriteString(p.Call)
	}
	return b.String()
}

func fdOwner(b *strings.Builder, fd int, owner string) {
	b.WriteString("fd ")
	b.WriteString(strconv.Itoa(fd))
	if owner != "" {
		b.WriteString(" (")
		b.WriteString(owner)
		b.WriteByte(')')
	}
}
