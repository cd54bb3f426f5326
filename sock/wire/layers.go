package wire

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
)

// A Layer is one protocol's part of a frame: its header (or, for the
// application, its data) with the fields in it. The layers of a decoded
// frame cover its bytes in order, without gaps: what did not decode is a
// layer of level "raw".
type Layer struct {
	Level string // "link", "network", "transport", "application" or "raw"
	Name  string // "Ethernet", "IPv4", "TCP", "HTTP", "DNS", "payload" ...
	// Data[Start:End] are the layer's bytes in the frame.
	Start, End int
	Fields     []Field
	// Note says why decoding stopped here (a raw layer), or that the
	// layer's bytes were cut short by the capture's snapshot length.
	Note string
}

// A Field is one named value inside a layer, with the bytes that hold it.
type Field struct {
	Name  string // "source port", "TTL", "Host" ...
	Value string // as a person reads it: "41234", "0x0800 (IPv4)"
	// Data[Start:End] hold the value; Bits says which of their bits when
	// the field shares its bytes with others ("high 4 bits").
	Start, End int
	Bits       string
}

// Levels, from the wire up.
const (
	LevelLink        = "link"
	LevelNetwork     = "network"
	LevelTransport   = "transport"
	LevelApplication = "application"
	LevelRaw         = "raw"
)

// Decode takes a frame apart layer by layer with gopacket's decoders. A
// truncated or malformed frame decodes as far as it can; the rest is a raw
// layer whose Note says why. Decode never panics.
func Decode(p Packet) []Layer {
	return decodeFrame(p, true).layers
}

// frame is a decoded frame: the layers shown to people, and the decoded
// headers the ladder and the OSI walk read.
type frame struct {
	data   []byte
	layers []Layer
	ip4    *layers.IPv4
	ip6    *layers.IPv6
	tcp    *layers.TCP
	udp    *layers.UDP
	// The IP packet's start and total length (its header says), and where
	// the transport header ends: the segment's length on the wire is
	// netStart+netLen-transEnd even when the capture cut the frame short.
	netStart, netLen, transEnd int
	headersOnly                bool // no layers and fields: see decodeFrame
}

// decodeFrame drives gopacket's decoding layers one at a time so that it
// knows which layer failed and where every layer's bytes sit in the frame.
// Without fields it only finds the headers (what the ladder reads), which
// costs a sixth as much.
func decodeFrame(p Packet, fields bool) *frame {
	f := &frame{data: p.Data, headersOnly: !fields}
	data := p.Data
	next := firstLayer(p.Link, data)
	var last gopacket.DecodingLayer
	var lastType gopacket.LayerType
	off := 0 // where data begins in the frame
	for len(data) > 0 {
		if next == gopacket.LayerTypePayload || next == gopacket.LayerTypeZero {
			if last != nil && isTransport(last) {
				f.application(data, off)
			} else {
				f.raw(off, off+len(data), undecodedNote(lastType))
			}
			off += len(data)
			break
		}
		dl := newDecodingLayer(next)
		if dl == nil {
			f.raw(off, off+len(data), "not decoded: "+next.String())
			off += len(data)
			break
		}
		if err := decodeOne(dl, data); err != nil {
			if next == layers.LayerTypeDNS {
				// Port 53 said DNS; the bytes say otherwise.
				f.add(Layer{Level: LevelApplication, Name: "payload", Start: off, End: off + len(data),
					Fields: payloadFields(data, off), Note: "not DNS: " + err.Error()})
			} else {
				f.raw(off, off+len(data), next.String()+" does not decode: "+err.Error())
			}
			off += len(data)
			break
		}
		contents, payload := contentsOf(dl), dl.LayerPayload()
		cstart, ok1 := offsetIn(p.Data, contents, off)
		pstart, ok2 := offsetIn(p.Data, payload, cstart+len(contents))
		if !ok1 || !ok2 || cstart != off || pstart < cstart+len(contents) || pstart+len(payload) > off+len(data) {
			f.raw(off, off+len(data), next.String()+" decoded to bytes outside its own")
			off += len(data)
			break
		}
		f.header(dl, next, off, cstart+len(contents))
		if gap := pstart - (cstart + len(contents)); gap > 0 && !f.headersOnly {
			f.add(Layer{Level: f.layers[len(f.layers)-1].Level, Name: extensionName(dl, next), Start: cstart + len(contents), End: pstart})
		}
		last, lastType = dl, next
		next = dl.NextLayerType()
		data = payload
		off = pstart
	}
	if off < len(p.Data) {
		f.raw(off, len(p.Data), "trailer: bytes past the end the headers give (link-layer padding)")
	}
	if p.WireLen > len(p.Data) && len(f.layers) > 0 {
		l := &f.layers[len(f.layers)-1]
		l.Note = strings.TrimPrefix(l.Note+"; ", "; ") + fmt.Sprintf("cut short: %d of %d bytes captured", len(p.Data), p.WireLen)
	}
	return f
}

// firstLayer is the layer a frame of the given link type begins with.
func firstLayer(link layers.LinkType, data []byte) gopacket.LayerType {
	switch link {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		if len(data) > 0 && data[0]>>4 == 6 {
			return layers.LayerTypeIPv6
		}
		return layers.LayerTypeIPv4
	}
	return gopacket.LayerTypeZero
}

func newDecodingLayer(t gopacket.LayerType) gopacket.DecodingLayer {
	switch t {
	case layers.LayerTypeEthernet:
		return &layers.Ethernet{}
	case layers.LayerTypeLinuxSLL:
		return &layers.LinuxSLL{}
	case layers.LayerTypeLoopback:
		return &layers.Loopback{}
	case layers.LayerTypeDot1Q:
		return &layers.Dot1Q{}
	case layers.LayerTypeARP:
		return &layers.ARP{}
	case layers.LayerTypeIPv4:
		return &layers.IPv4{}
	case layers.LayerTypeIPv6:
		return &layers.IPv6{}
	case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination, layers.LayerTypeIPv6Fragment:
		return &layers.IPv6ExtensionSkipper{}
	case layers.LayerTypeTCP:
		return &layers.TCP{}
	case layers.LayerTypeUDP:
		return &layers.UDP{}
	case layers.LayerTypeICMPv4:
		return &layers.ICMPv4{}
	case layers.LayerTypeICMPv6:
		return &layers.ICMPv6{}
	case layers.LayerTypeDNS:
		return &layers.DNS{}
	}
	return nil
}

// decodeOne runs one decoder; a panic inside gopacket is a decoding error
// like any other.
func decodeOne(dl gopacket.DecodingLayer, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder failed: %v", r)
		}
	}()
	return dl.DecodeFromBytes(data, gopacket.NilDecodeFeedback)
}

// offsetIn says where b sits inside frame; an empty b sits at dflt.
// Decoders slice their input, so every header is a piece of the frame.
func offsetIn(frame, b []byte, dflt int) (int, bool) {
	if len(b) == 0 {
		return dflt, dflt <= len(frame)
	}
	o := cap(frame) - cap(b)
	if o < 0 || o+len(b) > len(frame) || &frame[o] != &b[0] {
		return 0, false
	}
	return o, true
}

func isTransport(dl gopacket.DecodingLayer) bool {
	switch dl.(type) {
	case *layers.TCP, *layers.UDP, *layers.ICMPv4, *layers.ICMPv6:
		return true
	}
	return false
}

func undecodedNote(last gopacket.LayerType) string {
	if last == gopacket.LayerTypeZero {
		return "not decoded: unknown link type"
	}
	return "not decoded: what follows " + last.String()
}

// contentsOf is a decoded layer's header bytes. Every decoding layer here
// embeds gopacket's BaseLayer, which has them.
func contentsOf(dl gopacket.DecodingLayer) []byte {
	if c, ok := dl.(interface{ LayerContents() []byte }); ok {
		return c.LayerContents()
	}
	return nil
}

func extensionName(dl gopacket.DecodingLayer, t gopacket.LayerType) string {
	if ip, ok := dl.(*layers.IPv6); ok && ip.HopByHop != nil {
		return "IPv6 hop-by-hop options"
	}
	return t.String() + " extension"
}

func (f *frame) add(l Layer) {
	if !f.headersOnly {
		f.layers = append(f.layers, l)
	}
}

func (f *frame) raw(start, end int, note string) {
	f.add(Layer{Level: LevelRaw, Name: "undecoded", Start: start, End: end, Note: note})
}

// header adds one decoded header, bytes [start, end) of the frame.
func (f *frame) header(dl gopacket.DecodingLayer, t gopacket.LayerType, start, end int) {
	switch h := dl.(type) {
	case *layers.IPv4:
		f.ip4, f.netStart, f.netLen = h, start, int(h.Length)
	case *layers.IPv6:
		f.ip6, f.netStart, f.netLen = h, start, 40+int(h.Length)
	case *layers.TCP:
		f.tcp, f.transEnd = h, end
	case *layers.UDP:
		f.udp, f.transEnd = h, end
	}
	if f.headersOnly {
		return
	}
	l := Layer{Name: t.String(), Start: start, End: end}
	b := f.data[start:end]
	fd := fieldsAt{off: start, n: len(b)}
	switch h := dl.(type) {
	case *layers.Ethernet:
		l.Level = LevelLink
		fd.add("destination", 0, 6, h.DstMAC.String())
		fd.add("source", 6, 12, h.SrcMAC.String())
		fd.add("type", 12, 14, fmt.Sprintf("0x%04x (%s)", uint16(h.EthernetType), h.EthernetType))
	case *layers.LinuxSLL:
		l.Level = LevelLink
		fd.add("packet type", 0, 2, fmt.Sprintf("%d (%s)", uint16(h.PacketType), h.PacketType))
		fd.add("address type", 2, 4, strconv.Itoa(int(h.AddrType)))
		fd.add("address length", 4, 6, strconv.Itoa(int(h.AddrLen)))
		fd.add("address", 6, 14, net.HardwareAddr(b[6:6+min(int(h.AddrLen), 8)]).String())
		fd.add("protocol", 14, 16, fmt.Sprintf("0x%04x (%s)", uint16(h.EthernetType), h.EthernetType))
	case *layers.Loopback:
		l.Level = LevelLink
		fd.add("family", 0, 4, fmt.Sprintf("%d (%s)", int(h.Family), h.Family))
	case *layers.Dot1Q:
		l.Level = LevelLink
		fd.addBits("priority", 0, 1, "high 3 bits", strconv.Itoa(int(h.Priority)))
		fd.addBits("VLAN", 0, 2, "low 12 bits", strconv.Itoa(int(h.VLANIdentifier)))
		fd.add("type", 2, 4, fmt.Sprintf("0x%04x (%s)", uint16(h.Type), h.Type))
	case *layers.ARP:
		l.Level = LevelNetwork
		fd.add("operation", 6, 8, map[uint16]string{1: "1 (request)", 2: "2 (reply)"}[h.Operation])
		hl, pl := int(h.HwAddressSize), int(h.ProtAddressSize)
		fd.add("sender MAC", 8, 8+hl, net.HardwareAddr(h.SourceHwAddress).String())
		fd.add("sender IP", 8+hl, 8+hl+pl, net.IP(h.SourceProtAddress).String())
		fd.add("target MAC", 8+hl+pl, 8+2*hl+pl, net.HardwareAddr(h.DstHwAddress).String())
		fd.add("target IP", 8+2*hl+pl, 8+2*hl+2*pl, net.IP(h.DstProtAddress).String())
	case *layers.IPv4:
		l.Level = LevelNetwork
		fd.addBits("version", 0, 1, "high 4 bits", strconv.Itoa(int(h.Version)))
		fd.addBits("header length", 0, 1, "low 4 bits", fmt.Sprintf("%d (%d bytes)", h.IHL, int(h.IHL)*4))
		fd.add("TOS", 1, 2, fmt.Sprintf("0x%02x (DSCP %d, ECN %d)", h.TOS, h.TOS>>2, h.TOS&3))
		fd.add("total length", 2, 4, strconv.Itoa(int(h.Length)))
		fd.add("identification", 4, 6, fmt.Sprintf("0x%04x (%d)", h.Id, h.Id))
		fd.addBits("flags", 6, 7, "high 3 bits", orNone(h.Flags.String()))
		fd.addBits("fragment offset", 6, 8, "low 13 bits", strconv.Itoa(int(h.FragOffset)))
		fd.add("TTL", 8, 9, strconv.Itoa(int(h.TTL)))
		fd.add("protocol", 9, 10, fmt.Sprintf("%d (%s)", uint8(h.Protocol), h.Protocol))
		fd.add("header checksum", 10, 12, fmt.Sprintf("0x%04x", h.Checksum))
		fd.add("source", 12, 16, h.SrcIP.String())
		fd.add("destination", 16, 20, h.DstIP.String())
		if len(b) > 20 {
			fd.add("options", 20, len(b), hexBytes(b[20:]))
		}
	case *layers.IPv6:
		l.Level = LevelNetwork
		fd.addBits("version", 0, 1, "high 4 bits", strconv.Itoa(int(h.Version)))
		fd.addBits("traffic class", 0, 2, "bits 4-11", fmt.Sprintf("0x%02x", h.TrafficClass))
		fd.addBits("flow label", 1, 4, "low 20 bits", fmt.Sprintf("0x%05x", h.FlowLabel))
		fd.add("payload length", 4, 6, strconv.Itoa(int(h.Length)))
		fd.add("next header", 6, 7, fmt.Sprintf("%d (%s)", uint8(h.NextHeader), h.NextHeader))
		fd.add("hop limit", 7, 8, strconv.Itoa(int(h.HopLimit)))
		fd.add("source", 8, 24, h.SrcIP.String())
		fd.add("destination", 24, 40, h.DstIP.String())
	case *layers.IPv6ExtensionSkipper:
		l.Level = LevelNetwork
		fd.add("next header", 0, 1, fmt.Sprintf("%d (%s)", uint8(h.NextHeader), h.NextHeader))
		fd.add("length", 1, 2, fmt.Sprintf("%d (%d bytes)", b[1], len(b)))
	case *layers.TCP:
		l.Level = LevelTransport
		fd.add("source port", 0, 2, strconv.Itoa(int(h.SrcPort)))
		fd.add("destination port", 2, 4, strconv.Itoa(int(h.DstPort)))
		fd.add("sequence number", 4, 8, strconv.FormatUint(uint64(h.Seq), 10))
		fd.add("ack number", 8, 12, strconv.FormatUint(uint64(h.Ack), 10))
		fd.addBits("data offset", 12, 13, "high 4 bits", fmt.Sprintf("%d (%d bytes)", h.DataOffset, int(h.DataOffset)*4))
		fd.addBits("flags", 12, 14, "low 9 bits", fmt.Sprintf("%s (0x%03x)", tcpFlagNames(h), binary.BigEndian.Uint16(b[12:14])&0x1ff))
		fd.add("window", 14, 16, strconv.Itoa(int(h.Window)))
		fd.add("checksum", 16, 18, fmt.Sprintf("0x%04x", h.Checksum))
		fd.add("urgent pointer", 18, 20, strconv.Itoa(int(h.Urgent)))
		o := 20
		for _, opt := range h.Options {
			n := max(int(opt.OptionLength), 1)
			fd.add("option", o, o+n, tcpOption(opt))
			o += n
		}
		if o < len(b) {
			name := "padding"
			if len(h.Options) == 0 || h.Options[len(h.Options)-1].OptionType != layers.TCPOptionKindEndList {
				name = "bad option" // gopacket stopped at a length it could not follow
			}
			fd.add(name, o, len(b), hexBytes(b[o:]))
		}
	case *layers.UDP:
		l.Level = LevelTransport
		fd.add("source port", 0, 2, strconv.Itoa(int(h.SrcPort)))
		fd.add("destination port", 2, 4, strconv.Itoa(int(h.DstPort)))
		fd.add("length", 4, 6, strconv.Itoa(int(h.Length)))
		fd.add("checksum", 6, 8, fmt.Sprintf("0x%04x", h.Checksum))
	case *layers.ICMPv4:
		l.Level = LevelNetwork
		fd.add("type", 0, 1, fmt.Sprintf("%d (%s)", h.TypeCode.Type(), h.TypeCode))
		fd.add("code", 1, 2, strconv.Itoa(int(h.TypeCode.Code())))
		fd.add("checksum", 2, 4, fmt.Sprintf("0x%04x", h.Checksum))
		fd.add("identifier", 4, 6, strconv.Itoa(int(h.Id)))
		fd.add("sequence", 6, 8, strconv.Itoa(int(h.Seq)))
	case *layers.ICMPv6:
		l.Level = LevelNetwork
		fd.add("type", 0, 1, fmt.Sprintf("%d (%s)", h.TypeCode.Type(), h.TypeCode))
		fd.add("code", 1, 2, strconv.Itoa(int(h.TypeCode.Code())))
		fd.add("checksum", 2, 4, fmt.Sprintf("0x%04x", h.Checksum))
	case *layers.DNS:
		l.Level = LevelApplication
		fd.fields = dnsFields(h, b, start)
	}
	l.Fields = fd.fields
	f.add(l)
}

// fieldsAt collects fields given by their offsets within a header of n
// bytes that starts at off in the frame. A field that would reach past the
// header (a length byte that lies) is cut at its end.
type fieldsAt struct {
	off, n int
	fields []Field
}

func (fa *fieldsAt) add(name string, start, end int, value string) {
	fa.addBits(name, start, end, "", value)
}

func (fa *fieldsAt) addBits(name string, start, end int, bits, value string) {
	end = min(end, fa.n)
	start = min(start, end)
	fa.fields = append(fa.fields, Field{Name: name, Value: value, Start: fa.off + start, End: fa.off + end, Bits: bits})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func hexBytes(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}

// tcpFlagNames lists a segment's flags by name, in header order.
func tcpFlagNames(t *layers.TCP) string {
	var names []string
	for _, fl := range []struct {
		on   bool
		name string
	}{{t.NS, "NS"}, {t.CWR, "CWR"}, {t.ECE, "ECE"}, {t.URG, "URG"}, {t.ACK, "ACK"}, {t.PSH, "PSH"}, {t.RST, "RST"}, {t.SYN, "SYN"}, {t.FIN, "FIN"}} {
		if fl.on {
			names = append(names, fl.name)
		}
	}
	return orNone(strings.Join(names, " "))
}

// tcpOption reads one option as tcpdump names it.
func tcpOption(o layers.TCPOption) string {
	d := o.OptionData
	switch {
	case o.OptionType == layers.TCPOptionKindEndList:
		return "eol"
	case o.OptionType == layers.TCPOptionKindNop:
		return "nop"
	case o.OptionType == layers.TCPOptionKindMSS && len(d) == 2:
		return fmt.Sprintf("mss %d", binary.BigEndian.Uint16(d))
	case o.OptionType == layers.TCPOptionKindWindowScale && len(d) == 1:
		return fmt.Sprintf("wscale %d", d[0])
	case o.OptionType == layers.TCPOptionKindSACKPermitted:
		return "sackOK"
	case o.OptionType == layers.TCPOptionKindTimestamps && len(d) == 8:
		return fmt.Sprintf("TS val %d ecr %d", binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:]))
	case o.OptionType == layers.TCPOptionKindSACK && len(d)%8 == 0:
		var blocks []string
		for i := 0; i < len(d); i += 8 {
			blocks = append(blocks, fmt.Sprintf("{%d:%d}", binary.BigEndian.Uint32(d[i:]), binary.BigEndian.Uint32(d[i+4:])))
		}
		return "sack " + strings.Join(blocks, " ")
	}
	return fmt.Sprintf("kind %d, %d bytes", uint8(o.OptionType), o.OptionLength)
}

// application decodes what a transport carries, starting at off in the
// frame: DNS over TCP (port 53), HTTP by its first line, DNS over UDP by
// its content when the port did not say so, else plain bytes.
func (f *frame) application(data []byte, off int) {
	if f.headersOnly {
		return
	}
	switch {
	case f.tcp != nil && (f.tcp.SrcPort == 53 || f.tcp.DstPort == 53) && len(data) >= 14 &&
		int(binary.BigEndian.Uint16(data)) == len(data)-2:
		var d layers.DNS
		if decodeOne(&d, data[2:]) == nil {
			fields := append([]Field{{Name: "length", Value: strconv.Itoa(len(data) - 2), Start: off, End: off + 2}},
				dnsFields(&d, data[2:], off+2)...)
			f.add(Layer{Level: LevelApplication, Name: "DNS", Start: off, End: off + len(data), Fields: fields})
			return
		}
	case f.tcp != nil:
		if fields, ok := httpFields(data, off); ok {
			f.add(Layer{Level: LevelApplication, Name: "HTTP", Start: off, End: off + len(data), Fields: fields})
			return
		}
	case f.udp != nil && looksLikeDNS(data):
		var d layers.DNS
		if decodeOne(&d, data) == nil {
			f.add(Layer{Level: LevelApplication, Name: "DNS", Start: off, End: off + len(data),
				Fields: dnsFields(&d, data, off), Note: "DNS by its content; neither port is 53"})
			return
		}
	}
	f.add(Layer{Level: LevelApplication, Name: "payload", Start: off, End: off + len(data), Fields: payloadFields(data, off)})
}

func payloadFields(data []byte, off int) []Field {
	return []Field{{Name: "data", Value: fmt.Sprintf("%d bytes %s", len(data), quote(data, 48)), Start: off, End: off + len(data)}}
}

// quote shows bytes as a Go string literal, at most max of them.
func quote(b []byte, max int) string {
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// looksLikeDNS accepts a datagram only if miekg's parser reads all of it
// as one message with one question: random UDP data rarely does.
func looksLikeDNS(b []byte) bool {
	var m dns.Msg
	if len(b) < 17 || m.Unpack(b) != nil || len(m.Question) != 1 {
		return false
	}
	packed, err := m.Pack()
	return err == nil && len(packed) <= len(b)
}

// dnsFields lists a DNS message's header, questions and records. The
// values are gopacket's; where each question and record ends is found with
// miekg/dns, which also prints records as dig does.
func dnsFields(d *layers.DNS, b []byte, off int) []Field {
	fd := fieldsAt{off: off, n: len(b)}
	fd.add("id", 0, 2, fmt.Sprintf("0x%04x (%d)", d.ID, d.ID))
	var flags []string
	for _, fl := range []struct {
		on   bool
		name string
	}{{d.QR, "qr"}, {d.AA, "aa"}, {d.TC, "tc"}, {d.RD, "rd"}, {d.RA, "ra"}} {
		if fl.on {
			flags = append(flags, fl.name)
		}
	}
	kind := "query"
	if d.QR {
		kind = "response"
	}
	fd.add("flags", 2, 4, kind+", "+orNone(strings.Join(flags, " ")))
	fd.addBits("opcode", 2, 3, "the 4 bits after qr", orNumber(dns.OpcodeToString[int(d.OpCode)], int(d.OpCode)))
	fd.addBits("status", 3, 4, "low 4 bits", orNumber(dns.RcodeToString[int(d.ResponseCode)], int(d.ResponseCode)))
	fd.add("questions", 4, 6, strconv.Itoa(int(d.QDCount)))
	fd.add("answers", 6, 8, strconv.Itoa(int(d.ANCount)))
	fd.add("authority", 8, 10, strconv.Itoa(int(d.NSCount)))
	fd.add("additional", 10, 12, strconv.Itoa(int(d.ARCount)))
	o := 12
	for _, q := range d.Questions {
		_, e, err := dns.UnpackDomainName(b, o)
		if err != nil || e+4 > len(b) {
			break
		}
		fd.add("question", o, e+4, fmt.Sprintf("%s %s %s", dns.Fqdn(string(q.Name)),
			orNumber(dns.ClassToString[uint16(q.Class)], int(q.Class)), orNumber(dns.TypeToString[uint16(q.Type)], int(q.Type))))
		o = e + 4
	}
	for _, sec := range []struct {
		name string
		n    int
	}{{"answer", int(d.ANCount)}, {"authority", int(d.NSCount)}, {"additional", int(d.ARCount)}} {
		for i := 0; i < sec.n && o < len(b); i++ {
			rr, e, err := dns.UnpackRR(b, o)
			if err != nil || e <= o {
				fd.add("undecoded", o, len(b), fmt.Sprintf("%d bytes", len(b)-o))
				return fd.fields
			}
			fd.add(sec.name, o, e, rrString(rr))
			o = e
		}
	}
	if o < len(b) {
		fd.add("trailing bytes", o, len(b), hexBytes(b[o:min(len(b), o+16)]))
	}
	return fd.fields
}

func orNumber(s string, n int) string {
	if s == "" {
		return strconv.Itoa(n)
	}
	return s
}

func rrString(rr dns.RR) string {
	if opt, ok := rr.(*dns.OPT); ok {
		return fmt.Sprintf("OPT (EDNS version %d, udp %d)", opt.Version(), opt.UDPSize())
	}
	return strings.Join(strings.Fields(rr.String()), " ")
}

// httpFields reads an HTTP/1 message's first line and header lines, each
// with its bytes; false when the data does not begin like HTTP.
func httpFields(data []byte, off int) ([]Field, bool) {
	first, rest, found := cutLine(data)
	if !found || !isHTTPStart(string(trimCRLF(first))) {
		return nil, false
	}
	name := "request line"
	if strings.HasPrefix(string(first), "HTTP/") {
		name = "status line"
	}
	fields := []Field{{Name: name, Value: string(trimCRLF(first)), Start: off, End: off + len(first)}}
	pos := len(first)
	for {
		line, more, found := cutLine(rest)
		if !found {
			if len(rest) > 0 {
				fields = append(fields, Field{Name: "partial line", Value: quote(rest, 48), Start: off + pos, End: off + pos + len(rest)})
			}
			return fields, true
		}
		text := string(trimCRLF(line))
		if text == "" {
			fields = append(fields, Field{Name: "end of headers", Value: "(empty line)", Start: off + pos, End: off + pos + len(line)})
			pos += len(line)
			break
		}
		k, v, _ := strings.Cut(text, ":")
		fields = append(fields, Field{Name: k, Value: strings.TrimSpace(v), Start: off + pos, End: off + pos + len(line)})
		pos += len(line)
		rest = more
	}
	if pos < len(data) {
		fields = append(fields, Field{Name: "body", Value: fmt.Sprintf("%d bytes %s", len(data)-pos, quote(data[pos:], 40)), Start: off + pos, End: off + len(data)})
	}
	return fields, true
}

// cutLine splits off the first line with its \n.
func cutLine(b []byte) (line, rest []byte, found bool) {
	for i, c := range b {
		if c == '\n' {
			return b[:i+1], b[i+1:], true
		}
	}
	return nil, b, false
}

func trimCRLF(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// isHTTPStart accepts "METHOD target HTTP/1.x" and "HTTP/1.x NNN ...".
func isHTTPStart(s string) bool {
	if v, rest, ok := strings.Cut(s, " "); ok && strings.HasPrefix(v, "HTTP/1.") {
		code, _, _ := strings.Cut(rest, " ")
		_, err := strconv.Atoi(code)
		return len(code) == 3 && err == nil
	}
	parts := strings.Split(s, " ")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, c := range parts[0] {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
