package dns

import (
	"encoding/binary"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// describe is the sock.Describer of every socket this package opens: it
// renders a DNS message as tcpdump prints one, so a trace reads at a
// glance.
//
//	12345+ A? www.test.                      a question (+: recursion desired)
//	12345*- q: A? www.test. 1/0/0 A 10.0.0.5 an answer (*: authoritative, -: no recursion available)
//	12345 NXDomain*- q: A? x.test. 0/1/0     an error status
//
// On TCP a message comes with its two-byte length in front, and a reader
// may take the length alone first: both are described too. It returns ""
// for bytes that are not a message, which the trace then quotes.
func describe(p []byte) string {
	if len(p) == 2 {
		return "length " + strconv.Itoa(int(binary.BigEndian.Uint16(p)))
	}
	if len(p) >= 14 && int(binary.BigEndian.Uint16(p)) == len(p)-2 {
		if s := describeMsg(p[2:]); s != "" {
			return s
		}
	}
	return describeMsg(p)
}

// maxDescribed is how many records of an answer the trace shows.
const maxDescribed = 3

// rcodeWords are tcpdump's names of the statuses.
var rcodeWords = map[int]string{
	mdns.RcodeFormatError: "FormErr", mdns.RcodeServerFailure: "ServFail", mdns.RcodeNameError: "NXDomain",
	mdns.RcodeNotImplemented: "NotImp", mdns.RcodeRefused: "Refused",
}

func describeMsg(p []byte) string {
	m := new(mdns.Msg)
	if len(p) < 12 || m.Unpack(p) != nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(m.Id)))
	if m.Opcode != mdns.OpcodeQuery {
		b.WriteString(" " + opcodeName(m.Opcode))
	}
	question := func() {
		for i, q := range m.Question {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(" " + TypeName(q.Qtype) + "? " + q.Name)
		}
	}
	if !m.Response {
		if m.RecursionDesired {
			b.WriteByte('+')
		}
		question()
		return b.String()
	}
	if m.Rcode != mdns.RcodeSuccess {
		w, ok := rcodeWords[m.Rcode]
		if !ok {
			w = rcodeName(m.Rcode)
		}
		b.WriteString(" " + w)
	}
	if m.Authoritative {
		b.WriteByte('*')
	}
	if !m.RecursionAvailable {
		b.WriteByte('-')
	}
	if m.Truncated {
		b.WriteByte('|')
	}
	if len(m.Question) > 0 {
		b.WriteString(" q:")
		question()
	}
	extra := 0
	for _, rr := range m.Extra {
		if _, ok := rr.(*mdns.OPT); !ok {
			extra++
		}
	}
	b.WriteString(" " + strconv.Itoa(len(m.Answer)) + "/" + strconv.Itoa(len(m.Ns)) + "/" + strconv.Itoa(extra))
	for i, rr := range m.Answer {
		if i == maxDescribed {
			b.WriteString(", ...")
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" " + TypeName(rr.Header().Rrtype) + " " + strings.TrimPrefix(rdataString(rr), "\t"))
	}
	return b.String()
}
