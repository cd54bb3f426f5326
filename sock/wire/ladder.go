package wire

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// A Conn names one TCP connection by its endpoints. A is the side that
// opened it (sent the first SYN) when the packets show the handshake,
// else the sender of its first packet seen.
type Conn struct {
	A, B netip.AddrPort
}

func (c Conn) String() string { return c.A.String() + " > " + c.B.String() }

// same reports whether a segment from src to dst belongs to c, and
// whether it travels from A to B.
func (c Conn) same(src, dst netip.AddrPort) (ok, fromA bool) {
	switch {
	case src == c.A && dst == c.B:
		return true, true
	case src == c.B && dst == c.A:
		return true, false
	}
	return false, false
}

// A Ladder is one TCP connection's segments in time order: the sequence
// diagram between its two endpoints that LadderText and LadderSVG draw.
type Ladder struct {
	Conn  Conn
	Start time.Time // the first segment's time
	Steps []Step
	// The endpoints' descriptors and owners when they are this process's
	// sockets (FD -1 when not, or not known).
	A, B Endpoint
}

// An Endpoint is the socket at one end of the ladder.
type Endpoint struct {
	FD    int
	Owner string
}

func (e Endpoint) String() string {
	if e.FD < 0 {
		return ""
	}
	var b strings.Builder
	fdOwner(&b, e.FD, e.Owner)
	return b.String()
}

// A Step is one segment, an arrow from one endpoint to the other.
type Step struct {
	Time  time.Duration // since the connection's first segment
	FromA bool
	Kind  string // "SYN", "SYN-ACK", "ACK", "data", "FIN", "RST" ...
	// Seq and Ack are relative to each side's initial sequence number,
	// as tcpdump prints them; Len is the data carried (on the wire, even
	// when the capture cut the frame short).
	Seq, Ack   uint32
	HasAck     bool
	Len        int
	Window     int
	SACK       [][2]uint32 // relative, as Seq
	Retransmit bool        // data (or SYN, FIN) sent before
	Call       string      // what caused it, from Packet.Call
	FD         int
	Label      string // what the arrow says: "data seq 1:79 len 78 ack 1"
}

// tcpSeg is one TCP segment's decoded facts.
type tcpSeg struct {
	p                   Packet
	src, dst            netip.AddrPort
	seq, ack            uint32
	syn, fin, rst, ack_ bool
	win, length         int
	sack                [][2]uint32
}

// tcpSegment decodes p as a TCP segment, false when it is not one.
func tcpSegment(p Packet) (tcpSeg, bool) {
	f := decodeFrame(p, false)
	if f.tcp == nil || (f.ip4 == nil && f.ip6 == nil) {
		return tcpSeg{}, false
	}
	var sa, da netip.Addr
	if f.ip4 != nil {
		sa, _ = netip.AddrFromSlice(f.ip4.SrcIP.To4())
		da, _ = netip.AddrFromSlice(f.ip4.DstIP.To4())
	} else {
		sa, _ = netip.AddrFromSlice(f.ip6.SrcIP)
		da, _ = netip.AddrFromSlice(f.ip6.DstIP)
	}
	t := f.tcp
	s := tcpSeg{
		p: p, src: netip.AddrPortFrom(sa, uint16(t.SrcPort)), dst: netip.AddrPortFrom(da, uint16(t.DstPort)),
		seq: t.Seq, ack: t.Ack, syn: t.SYN, fin: t.FIN, rst: t.RST, ack_: t.ACK, win: int(t.Window),
		length: max(0, f.netStart+f.netLen-f.transEnd),
	}
	for _, o := range t.Options {
		if d := o.OptionData; o.OptionType == 5 && len(d)%8 == 0 {
			for i := 0; i < len(d); i += 8 {
				s.sack = append(s.sack, [2]uint32{be32(d[i:]), be32(d[i+4:])})
			}
		}
	}
	return s, true
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Connections lists the TCP connections that pkts hold segments of, in the
// order of each one's first segment.
func Connections(pkts []Packet) []Conn {
	return connections(tcpSegments(pkts))
}

// tcpSegments decodes the TCP segments among pkts.
func tcpSegments(pkts []Packet) []tcpSeg {
	var segs []tcpSeg
	for _, p := range pkts {
		if s, ok := tcpSegment(p); ok {
			segs = append(segs, s)
		}
	}
	return segs
}

func connections(segs []tcpSeg) []Conn {
	var out []Conn
	for _, s := range segs {
		known := false
		for _, c := range out {
			if ok, _ := c.same(s.src, s.dst); ok {
				known = true
				break
			}
		}
		if !known {
			c := Conn{A: s.src, B: s.dst}
			if s.syn && s.ack_ { // the answer to a SYN we did not see
				c = Conn{A: s.dst, B: s.src}
			}
			out = append(out, c)
		}
	}
	return out
}

// NewLadder draws the connection c from pkts (the first connection they
// hold when c is the zero Conn). A packet seen twice on loopback (sent,
// then received) is drawn once. The second result is false when pkts hold
// no segment of c.
func NewLadder(pkts []Packet, c Conn) (Ladder, bool) {
	segs := tcpSegments(pkts)
	if c == (Conn{}) {
		conns := connections(segs)
		if len(conns) == 0 {
			return Ladder{}, false
		}
		c = conns[0]
	}
	l := Ladder{Conn: c, A: Endpoint{FD: -1}, B: Endpoint{FD: -1}}
	var (
		base    [2]uint32 // initial sequence number, A's and B's
		haveISN [2]bool
		next    [2]uint32 // the highest sequence number sent so far, plus one
		sent    [2]bool
	)
	echoes := loopbackEchoes{}
	for _, s := range segs {
		p := s.p
		ok, fromA := c.same(s.src, s.dst)
		if !ok || echoes.seen(p) {
			continue
		}
		me, peer := side(fromA), side(!fromA)
		l.learnEndpoints(p, fromA)
		if !haveISN[me] {
			base[me], haveISN[me] = s.seq, true
		}
		if s.ack_ && !haveISN[peer] {
			// The peer's SYN was not seen: its ack names the byte after it.
			base[peer], haveISN[peer] = s.ack-1, true
		}
		if len(l.Steps) == 0 {
			l.Start = p.Time
		}
		st := Step{
			Time: p.Time.Sub(l.Start), FromA: fromA, Seq: s.seq - base[me], HasAck: s.ack_,
			Len: s.length, Window: s.win, Call: p.Call, FD: p.FD,
		}
		if s.ack_ {
			st.Ack = s.ack - base[peer]
		}
		for _, b := range s.sack {
			st.SACK = append(st.SACK, [2]uint32{b[0] - base[peer], b[1] - base[peer]})
		}
		span := uint32(s.length)
		if s.syn {
			span++
		}
		if s.fin {
			span++
		}
		if span > 0 {
			if sent[me] && int32(s.seq-next[me]) < 0 {
				st.Retransmit = true
			}
			if !sent[me] || int32(s.seq+span-next[me]) > 0 {
				next[me], sent[me] = s.seq+span, true
			}
		}
		st.Kind = segmentKind(s)
		st.Label = stepLabel(st, s)
		l.Steps = append(l.Steps, st)
	}
	return l, len(l.Steps) > 0
}

// learnEndpoints takes the descriptors a packet from A (or B) names: the
// capture puts the sender in FD when the sender is ours (then it also
// names the call, and the receiver in PeerFD when that is ours too), else
// the receiver.
func (l *Ladder) learnEndpoints(p Packet, fromA bool) {
	snd, rcv := &l.A, &l.B
	if !fromA {
		snd, rcv = rcv, snd
	}
	switch {
	case p.FD < 0:
	case p.Call != "" || p.PeerFD >= 0:
		*snd = Endpoint{p.FD, p.Owner}
		if p.PeerFD >= 0 {
			*rcv = Endpoint{p.PeerFD, p.PeerOwner}
		}
	default:
		*rcv = Endpoint{p.FD, p.Owner}
	}
}

func side(fromA bool) int {
	if fromA {
		return 0
	}
	return 1
}

// loopbackEchoes drops the second copy of a frame that a live capture on
// loopback sees twice, once leaving and once arriving: a received frame
// identical to a sent one not yet matched.
type loopbackEchoes map[string]int

func (e loopbackEchoes) seen(p Packet) bool {
	if p.Iface == "" {
		return false // from a file: no directions to match
	}
	k := p.Iface + "\x00" + string(p.Data)
	if p.Out {
		e[k]++
		return false
	}
	if e[k] > 0 {
		e[k]--
		return true
	}
	return false
}

func segmentKind(s tcpSeg) string {
	k := ""
	switch {
	case s.syn:
		k = "SYN"
	case s.rst:
		k = "RST"
	case s.fin && s.length > 0:
		k = "data+FIN"
	case s.fin:
		k = "FIN"
	case s.length > 0:
		return "data"
	case s.ack_:
		return "ACK"
	default:
		return "no flags"
	}
	if s.ack_ && s.syn {
		k += "-ACK"
	}
	return k
}

// stepLabel is what the arrow says, in tcpdump's words where it has some.
func stepLabel(st Step, s tcpSeg) string {
	var b strings.Builder
	b.WriteString(st.Kind)
	if st.Kind == "ACK" {
		fmt.Fprintf(&b, " %d", st.Ack)
	} else {
		if st.Len > 0 {
			fmt.Fprintf(&b, " seq %d:%d len %d", st.Seq, st.Seq+uint32(st.Len), st.Len)
		} else {
			fmt.Fprintf(&b, " seq %d", st.Seq)
		}
		if st.HasAck {
			fmt.Fprintf(&b, " ack %d", st.Ack)
		}
	}
	for _, r := range st.SACK {
		fmt.Fprintf(&b, " sack %d:%d", r[0], r[1])
	}
	if st.Window == 0 && !s.rst {
		b.WriteString(" win 0")
	}
	if st.Retransmit {
		b.WriteString(" (retransmission)")
	}
	return b.String()
}

// Ladder text geometry: a time column, the A side's calls, the lane
// between the two endpoints' bars, the B side's calls; 96 columns in all.
const (
	timeCol = 9
	callCol = 9
	laneCol = 62 // from bar to bar, both bars included
)

// LadderText draws the ladder in fixed-width text that fits 100 columns:
// time runs down the page, each segment an arrow between the endpoints'
// bars with its flags, relative seq, len and ack, a retransmission drawn
// with ~ instead of -, and the call that caused it beside the sender.
func LadderText(l Ladder) string {
	var b strings.Builder
	fmt.Fprintf(&b, "TCP %s: %s\n\n", l.Conn, ladderSummary(l))
	left, right := l.Conn.A.String(), l.Conn.B.String()
	pad := strings.Repeat(" ", timeCol+2+callCol+1)
	head := fmt.Sprintf("%*s  %-*s ", timeCol, "ms", callCol, "call")
	b.WriteString(twoEnds(head, pad, left, right, "  call"))
	if l.A.FD >= 0 || l.B.FD >= 0 {
		b.WriteString(twoEnds(pad, pad, cut(l.A.String(), laneCol/2-1), cut(l.B.String(), laneCol/2-1), ""))
	}
	for _, st := range l.Steps {
		ms := fmt.Sprintf("%.3f", float64(st.Time)/float64(time.Millisecond))
		leftCall, rightCall := "", ""
		if st.FromA {
			leftCall = st.Call
		} else {
			rightCall = st.Call
		}
		line := fmt.Sprintf("%*s  %-*s %s", timeCol, ms, callCol, cut(leftCall, callCol), arrow(st))
		if rightCall != "" {
			line += "  " + rightCall
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// twoEnds writes left over A's bar and right ending at B's, on one line
// when they fit, else on two.
func twoEnds(head, pad, left, right, tail string) string {
	if len(left)+len(right)+2 <= laneCol {
		return strings.TrimRight(fmt.Sprintf("%s%s%*s%s", head, left, laneCol-len(left), right, tail), " ") + "\n"
	}
	return head + left + "\n" + fmt.Sprintf("%s%*s%s\n", pad, laneCol, right, tail)
}

func ladderSummary(l Ladder) string {
	n, re := len(l.Steps), 0
	for _, st := range l.Steps {
		if st.Retransmit {
			re++
		}
	}
	s := fmt.Sprintf("%d segments", n)
	if n > 0 {
		s += fmt.Sprintf(" in %.3f ms", float64(l.Steps[n-1].Time)/float64(time.Millisecond))
	}
	if re > 0 {
		s += fmt.Sprintf(", %d retransmitted (~)", re)
	}
	return s
}

// arrow draws one step between the bars, laneCol wide.
func arrow(st Step) string {
	dash := "-"
	if st.Retransmit {
		dash = "~"
	}
	label := cut(st.Label, laneCol-8)
	fill := laneCol - 7 - len(label) // less the bars, the head, two dashes and two spaces
	if st.FromA {
		return "|" + dash + dash + " " + label + " " + strings.Repeat(dash, fill) + ">|"
	}
	return "|<" + strings.Repeat(dash, fill) + " " + label + " " + dash + dash + "|"
}

// cut shortens s to n bytes, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "~"
}
