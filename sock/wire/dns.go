package wire

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket/layers"
)

// dnsSummary writes a DNS message the way tcpdump summarises it without
// -v: the id and flags, the question of a query, the counts and answers
// of a response, then the message length:
//
//	55081+ [1au] A? example.test. (53)
//	55081* 1/0/1 A 10.1.2.3 (57)
//
// mdns marks multicast DNS (port 5353), whose questions carry the
// unicast-response bit. What does not decode ends in [|domain].
func dnsSummary(b *strings.Builder, msg []byte, mdns bool) {
	if len(msg) < 12 {
		fmt.Fprintf(b, "domain [length %d < 12] (invalid)", len(msg))
		return
	}
	var d layers.DNS
	decodeOne(&d, msg) // what decodes before an error (or a decoder's panic) stays
	id := uint16(msg[0])<<8 | uint16(msg[1])
	flags := uint16(msg[2])<<8 | uint16(msg[3])
	qd, an, ns, ar := be16(msg[4:]), be16(msg[6:]), be16(msg[8:]), be16(msg[10:])
	opcode := (flags >> 11) & 0xf
	if flags&0x8000 != 0 { // a response
		fmt.Fprintf(b, "%d%s%s", id, dnsOpcodes[opcode], dnsRcode(flags&0xf))
		if flags&0x0400 != 0 {
			b.WriteByte('*')
		}
		if flags&0x0080 == 0 {
			b.WriteByte('-')
		}
		if flags&0x0200 != 0 {
			b.WriteByte('|')
		}
		if flags&0x0020 != 0 {
			b.WriteByte('$')
		}
		if qd != 1 {
			fmt.Fprintf(b, " [%dq]", qd)
		}
		if len(d.Questions) < int(qd) {
			b.WriteString(" [|domain]")
			return
		}
		fmt.Fprintf(b, " %d/%d/%d", an, ns, ar)
		for i, rr := range d.Answers {
			if i > 0 {
				b.WriteByte(',')
			}
			dnsRecord(b, &rr, mdns)
		}
		if len(d.Answers) < int(an) {
			b.WriteString(" [|domain]")
			return
		}
	} else { // a query
		fmt.Fprintf(b, "%d%s", id, dnsOpcodes[opcode])
		if flags&0x0100 != 0 {
			b.WriteByte('+')
		}
		if flags&0x0010 != 0 {
			b.WriteByte('%')
		}
		if flags&0x6cf != 0 {
			fmt.Fprintf(b, " [b2&3=0x%x]", flags)
		}
		if opcode == 1 { // inverse query
			if qd != 0 {
				fmt.Fprintf(b, " [%dq]", qd)
			}
			if an != 1 {
				fmt.Fprintf(b, " [%da]", an)
			}
		} else {
			if an != 0 {
				fmt.Fprintf(b, " [%da]", an)
			}
			if qd != 1 {
				fmt.Fprintf(b, " [%dq]", qd)
			}
		}
		if ns != 0 {
			fmt.Fprintf(b, " [%dn]", ns)
		}
		if ar != 0 {
			fmt.Fprintf(b, " [%dau]", ar)
		}
		for _, q := range d.Questions {
			fmt.Fprintf(b, " %s", dnsType(q.Type))
			class := uint16(q.Class)
			if mdns {
				class &^= 0x8000
			}
			if class != 1 {
				fmt.Fprintf(b, " %s", dnsClass(class))
			}
			if mdns {
				if q.Class&0x8000 != 0 {
					b.WriteString(" (QU)")
				} else {
					b.WriteString(" (QM)")
				}
			}
			b.WriteString("? ")
			b.WriteString(dnsName(q.Name))
		}
		if len(d.Questions) < int(qd) {
			b.WriteString(" [|domain]")
			return
		}
	}
	fmt.Fprintf(b, " (%d)", len(msg))
}

func be16(d []byte) uint16 { return uint16(d[0])<<8 | uint16(d[1]) }

// dnsRecord writes one answer: its type and, for the common types, its data.
func dnsRecord(b *strings.Builder, rr *layers.DNSResourceRecord, mdns bool) {
	class := uint16(rr.Class)
	if mdns {
		class &^= 0x8000
	}
	if class != 1 && rr.Type != layers.DNSTypeOPT {
		fmt.Fprintf(b, " %s", dnsClass(class))
	}
	if mdns && uint16(rr.Class)&0x8000 != 0 {
		b.WriteString(" (Cache flush)")
	}
	fmt.Fprintf(b, " %s", dnsType(rr.Type))
	switch rr.Type {
	case layers.DNSTypeA, layers.DNSTypeAAAA:
		if a, ok := netip.AddrFromSlice(rr.IP); ok {
			if rr.Type == layers.DNSTypeA {
				a = a.Unmap()
			}
			fmt.Fprintf(b, " %s", a)
		}
	case layers.DNSTypeNS:
		fmt.Fprintf(b, " %s", dnsName(rr.NS))
	case layers.DNSTypeCNAME:
		fmt.Fprintf(b, " %s", dnsName(rr.CNAME))
	case layers.DNSTypePTR:
		fmt.Fprintf(b, " %s", dnsName(rr.PTR))
	case layers.DNSTypeMX:
		fmt.Fprintf(b, " %s %d", dnsName(rr.MX.Name), rr.MX.Preference)
	case layers.DNSTypeTXT:
		for _, t := range rr.TXTs {
			fmt.Fprintf(b, " \"%s\"", printable(t))
		}
	case layers.DNSTypeSRV:
		fmt.Fprintf(b, " %s:%d %d %d", dnsName(rr.SRV.Name), rr.SRV.Port, rr.SRV.Priority, rr.SRV.Weight)
	case layers.DNSTypeOPT:
		fmt.Fprintf(b, " UDPsize=%d", uint16(rr.Class))
		if rr.TTL&0x8000 != 0 {
			b.WriteString(" DO")
		}
	}
}

// dnsName is a decoded name as tcpdump prints it, with the root's dot.
func dnsName(n []byte) string {
	if len(n) == 0 {
		return "."
	}
	return printable(n) + "."
}

// printable escapes what a terminal should not see, as tcpdump does.
func printable(p []byte) string {
	var b strings.Builder
	for _, c := range p {
		switch {
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		case c >= 0x80:
			b.WriteString("M-")
			c -= 0x80
			if c < 0x20 || c == 0x7f {
				b.WriteByte('^')
				b.WriteByte(c ^ 0x40)
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte('^')
			b.WriteByte(c ^ 0x40)
		}
	}
	return b.String()
}

var dnsOpcodes = [16]string{"", " inv_q", " stat", " op3", " notify", " update", " op6", " op7",
	" op8", " updateA", " updateD", " updateDA", " updateM", " updateMA", " zoneInit", " zoneRef"}

func dnsRcode(r uint16) string {
	names := [...]string{"", " FormErr", " ServFail", " NXDomain", " NotImp", " Refused", " YXDomain",
		" YXRRSet", " NXRRSet", " NotAuth", " NotZone", " Resp11", " Resp12", " Resp13", " Resp14", " NoChange"}
	return names[r&0xf]
}

// dnsTypeNames are the record types tcpdump knows by name.
var dnsTypeNames = map[layers.DNSType]string{
	1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR", 10: "NULL",
	11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB",
	19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAP_PTR", 24: "SIG", 25: "KEY", 26: "PX",
	27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC", 33: "SRV", 34: "ATMA",
	35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6", 39: "DNAME", 40: "SINK", 41: "OPT", 42: "APL",
	43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 99: "SPF",
	100: "UINFO", 101: "UID", 102: "GID", 103: "UNSPEC", 104: "UNSPECA", 249: "TKEY", 250: "TSIG",
	251: "IXFR", 252: "AXFR", 253: "MAILB", 254: "MAILA", 255: "ANY",
}

func dnsType(t layers.DNSType) string {
	if n, ok := dnsTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type%d", uint16(t))
}

func dnsClass(c uint16) string {
	switch c {
	case 1:
		return "IN"
	case 3:
		return "CHAOS"
	case 4:
		return "HS"
	case 255:
		return "ANY"
	}
	return fmt.Sprintf("(Class %d)", c)
}
