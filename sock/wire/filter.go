package wire

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// A filter is tcpdump's filter language, its common part:
//
//	tcp  udp  icmp  icmp6  ip  ip6  arp
//	host A  net A/N  port N  portrange N-M     (each may follow src, dst, src or dst, src and dst)
//	tcp port N  udp src port N  ip host A ...  (a protocol narrows what follows)
//	and  or  not  && || !  ( )
//
// As in tcpdump, a bare value after and/or repeats the last kind:
// "port 53 or 80" is "port 53 or port 80". The filter compiles to classic
// BPF (assembled by golang.org/x/net/bpf) that the kernel runs on every
// frame before it reaches the capture.

// FilterError is a filter that does not parse, with where it went wrong.
type FilterError struct {
	Filter string
	Pos    int // 1-based position of the offending word
	Msg    string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("filter: %s at position %d: %q", e.Msg, e.Pos, e.Filter)
}

// CompileFilter parses expr and returns its BPF program for frames of the
// given link type (Ethernet, or raw IP for a TUN device), accepting up to
// snaplen bytes of each. An empty expr accepts everything.
func CompileFilter(expr string, link layers.LinkType, snaplen int) ([]bpf.Instruction, error) {
	n, err := parseFilter(expr)
	if err != nil {
		return nil, err
	}
	return assemble(n, link, snaplen, false)
}

// node is a parsed filter: a test of the frame, or and/or/not of others.
type node struct {
	op   string // "and", "or", "not", "test", "true"
	a, b *node
	t    test
}

// test is one comparison of frame bytes: load, then compare.
type test struct {
	net     int    // which network header the offset is relative to: netNone, netIPv4, netIPv6
	off     uint32 // offset from that header (or from the frame start with netNone)
	size    int
	cond    bpf.JumpTest
	val     uint32
	mask    uint32 // compare the loaded value and mask (0: no mask)
	pkttype bool   // load the packet type instead (loopback's outgoing copies)
	// afterIPv4Header makes off relative to the end of the IPv4 header
	// (the transport header), whose length the header itself says.
	afterIPv4Header bool
}

const (
	netLink = iota - 1 // from the frame's start: the EtherType
	netNone
	netIPv4
	netIPv6
)

func and(a, b *node) *node { return &node{op: "and", a: a, b: b} }
func or(a, b *node) *node  { return &node{op: "or", a: a, b: b} }
func not(a *node) *node    { return &node{op: "not", a: a} }
func leaf(t test) *node    { return &node{op: "test", t: t} }

// Tests the filter's words become.
func isIPv4() *node {
	return leaf(test{cond: bpf.JumpEqual, val: 0x0800, size: 2, off: 12, net: netLink})
}
func isIPv6() *node {
	return leaf(test{cond: bpf.JumpEqual, val: 0x86dd, size: 2, off: 12, net: netLink})
}
func isARP() *node {
	return or(leaf(test{cond: bpf.JumpEqual, val: 0x0806, size: 2, off: 12, net: netLink}),
		leaf(test{cond: bpf.JumpEqual, val: 0x8035, size: 2, off: 12, net: netLink}))
}

func ip4Proto(p uint32) *node {
	return leaf(test{net: netIPv4, off: 9, size: 1, cond: bpf.JumpEqual, val: p})
}
func ip6Proto(p uint32) *node {
	// The protocol, or a fragment header (44) followed by it.
	next := leaf(test{net: netIPv6, off: 6, size: 1, cond: bpf.JumpEqual, val: p})
	frag := and(leaf(test{net: netIPv6, off: 6, size: 1, cond: bpf.JumpEqual, val: 44}),
		leaf(test{net: netIPv6, off: 40, size: 1, cond: bpf.JumpEqual, val: p}))
	return or(next, frag)
}

// proto is "ip proto p or ip6 proto p", each side only where the family allows.
func proto(p uint32, v4, v6 bool) *node {
	var n *node
	if v4 {
		n = and(isIPv4(), ip4Proto(p))
	}
	if v6 {
		m := and(isIPv6(), ip6Proto(p))
		if n == nil {
			return m
		}
		n = or(n, m)
	}
	return n
}

// dirs combines the source and destination forms of a test by the
// direction the filter named.
func dirs(dir string, src, dst *node) *node {
	switch dir {
	case "src":
		return src
	case "dst":
		return dst
	case "src and dst":
		return and(src, dst)
	}
	return or(src, dst)
}

// portTest is a port (or a range) in the transport header of IPv4 (after
// its variable header, not in later fragments) or IPv6, for the
// protocols given.
func portTest(lo, hi uint32, dir string, protos []uint32, v4, v6 bool) *node {
	cmp := func(net int, off uint32, after bool) *node {
		t := test{net: net, off: off, size: 2, afterIPv4Header: after}
		if lo == hi {
			t.cond, t.val = bpf.JumpEqual, lo
			return leaf(t)
		}
		t.cond, t.val = bpf.JumpGreaterOrEqual, lo
		u := t
		u.cond, u.val = bpf.JumpLessOrEqual, hi
		return and(leaf(t), leaf(u))
	}
	anyOf := func(f func(p uint32) *node) *node {
		var n *node
		for _, p := range protos {
			if n == nil {
				n = f(p)
			} else {
				n = or(n, f(p))
			}
		}
		return n
	}
	var out *node
	if v4 {
		notFrag := leaf(test{net: netIPv4, off: 6, size: 2, cond: bpf.JumpBitsNotSet, val: 0x1fff})
		out = and(isIPv4(), and(anyOf(ip4Proto), and(notFrag, dirs(dir, cmp(netIPv4, 0, true), cmp(netIPv4, 2, true)))))
	}
	if v6 {
		six := and(isIPv6(), and(anyOf(func(p uint32) *node {
			return leaf(test{net: netIPv6, off: 6, size: 1, cond: bpf.JumpEqual, val: p})
		}), dirs(dir, cmp(netIPv6, 40, false), cmp(netIPv6, 42, false))))
		if out == nil {
			return six
		}
		out = or(six, out)
	}
	return out
}

// hostTest is an address (with a prefix length for net) as source or
// destination: IPv4 (and in ARP, as tcpdump does) or IPv6.
func hostTest(p netip.Prefix, dir string, arp bool) *node {
	a := p.Addr()
	if a.Is4() {
		v := be32(a.AsSlice())
		mask := uint32(0xffffffff)
		if p.Bits() < 32 {
			mask = ^(uint32(0xffffffff) >> p.Bits())
		}
		word := func(net int, off uint32) *node { return maskedWord(net, off, mask, v&mask) }
		n := and(isIPv4(), dirs(dir, word(netIPv4, 12), word(netIPv4, 16)))
		if arp {
			// ARP's sender and target protocol addresses.
			n = or(n, and(isARP(), dirs(dir, word(netIPv4, 14), word(netIPv4, 24))))
		}
		return n
	}
	b := a.As16()
	match := func(off uint32) *node {
		var n *node
		for i := 0; i < 4; i++ {
			bits := p.Bits() - 32*i
			if bits <= 0 {
				break
			}
			mask := uint32(0xffffffff)
			if bits < 32 {
				mask = ^(uint32(0xffffffff) >> bits)
			}
			w := maskedWord(netIPv6, off+uint32(4*i), mask, be32(b[4*i:])&mask)
			if n == nil {
				n = w
			} else {
				n = and(n, w)
			}
		}
		if n == nil {
			return &node{op: "true"}
		}
		return n
	}
	return and(isIPv6(), dirs(dir, match(8), match(24)))
}

// maskedWord compares a 32-bit word under a mask: net 10.0.0.0/8.
func maskedWord(net int, off, mask, val uint32) *node {
	if mask == 0xffffffff {
		mask = 0
	}
	return leaf(test{net: net, off: off, size: 4, cond: bpf.JumpEqual, val: val, mask: mask})
}

// ---- parsing ----

type token struct {
	s   string
	pos int // 1-based
}

func tokenize(expr string) []token {
	var out []token
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')':
			out = append(out, token{string(c), i + 1})
			i++
		case c == '!':
			out = append(out, token{"not", i + 1})
			i++
		case strings.HasPrefix(expr[i:], "&&"):
			out = append(out, token{"and", i + 1})
			i += 2
		case strings.HasPrefix(expr[i:], "||"):
			out = append(out, token{"or", i + 1})
			i += 2
		default:
			j := i
			for j < len(expr) && !strings.ContainsRune(" \t\n()!", rune(expr[j])) && !strings.HasPrefix(expr[j:], "&&") && !strings.HasPrefix(expr[j:], "||") {
				j++
			}
			out = append(out, token{strings.ToLower(expr[i:j]), i + 1})
			i = j
		}
	}
	return out
}

type parser struct {
	expr string
	toks []token
	i    int
	// last is the most recent primitive's qualifiers, for a bare value.
	last *qualifiers
}

// qualifiers are the words before a value: tcp src port, ip6 host ...
type qualifiers struct {
	proto string // "", tcp, udp, icmp, ip, ip6 ...
	dir   string // "", src, dst, "src or dst", "src and dst"
	kind  string // host, net, port, portrange
}

func parseFilter(expr string) (*node, error) {
	p := &parser{expr: expr, toks: tokenize(expr)}
	if len(p.toks) == 0 {
		return &node{op: "true"}, nil
	}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, p.fail("expected and, or or the end", p.toks[p.i])
	}
	return n, nil
}

func (p *parser) fail(msg string, at token) error {
	return &FilterError{Filter: p.expr, Pos: at.pos, Msg: msg}
}

// end is a token just past the last, for errors at the end.
func (p *parser) end() token { return token{pos: len(p.expr) + 1} }

func (p *parser) peek() (token, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return p.end(), false
}

func (p *parser) or() (*node, error)  { return p.chain("or", p.and, or) }
func (p *parser) and() (*node, error) { return p.chain("and", p.unary, and) }

// chain parses operands joined by word, left to right.
func (p *parser) chain(word string, operand func() (*node, error), join func(a, b *node) *node) (*node, error) {
	n, err := operand()
	for err == nil {
		t, ok := p.peek()
		if !ok || t.s != word {
			break
		}
		p.i++
		var m *node
		if m, err = operand(); err == nil {
			n = join(n, m)
		}
	}
	return n, err
}

func (p *parser) unary() (*node, error) {
	t, ok := p.peek()
	if !ok {
		return nil, p.fail("expected a primitive (tcp, host, port ...)", t)
	}
	switch t.s {
	case "not":
		p.i++
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return not(n), nil
	case "(":
		p.i++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if c, ok := p.peek(); !ok || c.s != ")" {
			return nil, p.fail("expected )", c)
		}
		p.i++
		return n, nil
	case ")", "and", "or":
		return nil, p.fail("expected a primitive (tcp, host, port ...)", t)
	}
	return p.primitive()
}

var protoWords = map[string]bool{"tcp": true, "udp": true, "icmp": true, "icmp6": true, "ip": true, "ip6": true, "arp": true, "sctp": true}
var kindWords = map[string]bool{"host": true, "net": true, "port": true, "portrange": true}

func (p *parser) primitive() (*node, error) {
	var q qualifiers
	start := p.i
	t, _ := p.peek()
	if protoWords[t.s] {
		q.proto = t.s
		p.i++
	}
	if t, ok := p.peek(); ok && (t.s == "src" || t.s == "dst") {
		q.dir = t.s
		p.i++
		if c, ok := p.peek(); ok && (c.s == "or" || c.s == "and") && p.i+1 < len(p.toks) && (p.toks[p.i+1].s == "src" || p.toks[p.i+1].s == "dst") {
			q.dir = "src " + c.s + " dst"
			p.i += 2
		}
	}
	if t, ok := p.peek(); ok && kindWords[t.s] {
		q.kind = t.s
		p.i++
	}
	if p.i == start {
		// A bare value repeats the last primitive's qualifiers.
		if p.last == nil {
			return nil, p.fail("expected a primitive (tcp, host, port ...)", t)
		}
		q = *p.last
	} else if q.kind == "" {
		if q.dir != "" {
			q.kind = "host" // "src 10.0.0.1" is "src host 10.0.0.1"
		} else {
			// A protocol alone: tcp, udp, ip ...
			p.last = nil
			return protoNode(q.proto), nil
		}
	}
	if q.proto != "" && !validFor(q) {
		return nil, p.fail(fmt.Sprintf("%s does not go with %s", q.proto, q.kind), p.toks[start])
	}
	v, ok := p.peek()
	if !ok || v.s == "and" || v.s == "or" || v.s == ")" || v.s == "(" || v.s == "not" {
		return nil, p.fail("expected "+valueName(q.kind), v)
	}
	p.i++
	p.last = &q
	return valueNode(p, q, v)
}

func validFor(q qualifiers) bool {
	switch q.kind {
	case "port", "portrange":
		return q.proto == "tcp" || q.proto == "udp" || q.proto == "sctp" || q.proto == "ip" || q.proto == "ip6"
	case "host", "net":
		return q.proto == "ip" || q.proto == "ip6" || q.proto == "arp"
	}
	return false
}

func valueName(kind string) string {
	switch kind {
	case "port":
		return "a port number"
	case "portrange":
		return "a port range (N-M)"
	case "net":
		return "a network (A/N)"
	}
	return "an IP address"
}

func protoNode(p string) *node {
	switch p {
	case "tcp":
		return proto(6, true, true)
	case "udp":
		return proto(17, true, true)
	case "sctp":
		return proto(132, true, true)
	case "icmp":
		return and(isIPv4(), ip4Proto(1))
	case "icmp6":
		return and(isIPv6(), ip6Proto(58))
	case "ip":
		return isIPv4()
	case "ip6":
		return isIPv6()
	}
	return isARP()
}

func parsePort(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 16)
	return uint32(n), err == nil
}

func valueNode(p *parser, q qualifiers, v token) (*node, error) {
	dir := q.dir
	v4, v6 := q.proto != "ip6", q.proto != "ip"
	switch q.kind {
	case "port", "portrange":
		var lo, hi uint32
		if q.kind == "port" {
			n, ok := parsePort(v.s)
			if !ok {
				return nil, p.fail("expected a port number", v)
			}
			lo, hi = n, n
		} else {
			a, b, found := strings.Cut(v.s, "-")
			l, ok1 := parsePort(a)
			h, ok2 := parsePort(b)
			if !found || !ok1 || !ok2 || l > h {
				return nil, p.fail("expected a port range (N-M)", v)
			}
			lo, hi = l, h
		}
		protos := []uint32{132, 6, 17}
		switch q.proto {
		case "tcp":
			protos = []uint32{6}
		case "udp":
			protos = []uint32{17}
		case "sctp":
			protos = []uint32{132}
		}
		return portTest(lo, hi, dir, protos, v4, v6), nil
	case "net":
		pfx, err := netip.ParsePrefix(v.s)
		if err != nil {
			if a, err2 := netip.ParseAddr(v.s); err2 == nil {
				pfx = netip.PrefixFrom(a, a.BitLen())
			} else {
				return nil, p.fail("expected a network (A/N)", v)
			}
		}
		return familyHost(p, q, pfx.Masked(), v)
	}
	a, err := netip.ParseAddr(v.s)
	if err != nil {
		return nil, p.fail("expected an IP address (names are not looked up)", v)
	}
	return familyHost(p, q, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), v)
}

func familyHost(p *parser, q qualifiers, pfx netip.Prefix, v token) (*node, error) {
	switch {
	case q.proto == "ip6" && pfx.Addr().Is4(), (q.proto == "ip" || q.proto == "arp") && pfx.Addr().Is6():
		return nil, p.fail("address of the wrong family for "+q.proto, v)
	case q.proto == "arp":
		return and(isARP(), hostTest(pfx, q.dir, true)), nil
	}
	return hostTest(pfx, q.dir, q.proto == ""), nil
}

// ---- code generation ----

// asm emits a program whose instructions jump to labels, resolved once
// every instruction is placed.
type asm struct {
	ins    []bpf.Instruction
	jumps  []pendingJump
	labels []int // label -> instruction index
	link   layers.LinkType
}

type pendingJump struct {
	at          int
	t, f        int // labels; -1: the next instruction
	conditional bool
}

func (a *asm) label() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *asm) place(l int) { a.labels[l] = len(a.ins) }

// load emits the loads for t's field into A.
func (a *asm) load(t test) {
	if t.pkttype {
		a.ins = append(a.ins, bpf.LoadExtension{Num: bpf.ExtType})
		return
	}
	base := uint32(14) // Ethernet
	if a.link != layers.LinkTypeEthernet {
		base = 0
	}
	switch {
	case t.net == netLink:
		a.ins = append(a.ins, bpf.LoadAbsolute{Off: t.off, Size: t.size})
	case t.afterIPv4Header:
		a.ins = append(a.ins, bpf.LoadMemShift{Off: base}, bpf.LoadIndirect{Off: base + t.off, Size: t.size})
	default:
		a.ins = append(a.ins, bpf.LoadAbsolute{Off: base + t.off, Size: t.size})
	}
	if t.mask != 0 {
		a.ins = append(a.ins, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: t.mask})
	}
}

// gen emits n so that it jumps to label t when it holds, f when not.
func (a *asm) gen(n *node, t, f int) {
	switch n.op {
	case "true":
		a.ins = append(a.ins, bpf.Jump{})
		a.jumps = append(a.jumps, pendingJump{at: len(a.ins) - 1, t: t})
	case "and":
		mid := a.label()
		a.gen(n.a, mid, f)
		a.place(mid)
		a.gen(n.b, t, f)
	case "or":
		mid := a.label()
		a.gen(n.a, t, mid)
		a.place(mid)
		a.gen(n.b, t, f)
	case "not":
		a.gen(n.a, f, t)
	default:
		if n.t.net == netLink && a.link != layers.LinkTypeEthernet {
			// No link header: the IP version nibble says the family.
			fam := uint32(4)
			switch n.t.val {
			case 0x86dd:
				fam = 6
			case 0x0800:
			default: // ARP never comes through a TUN device
				a.ins = append(a.ins, bpf.Jump{})
				a.jumps = append(a.jumps, pendingJump{at: len(a.ins) - 1, t: f})
				return
			}
			a.ins = append(a.ins, bpf.LoadAbsolute{Off: 0, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
			a.cond(test{cond: bpf.JumpEqual, val: fam << 4}, t, f)
			return
		}
		a.load(n.t)
		a.cond(n.t, t, f)
	}
}

func (a *asm) cond(t test, tl, fl int) {
	a.ins = append(a.ins, bpf.JumpIf{Cond: t.cond, Val: t.val})
	a.jumps = append(a.jumps, pendingJump{at: len(a.ins) - 1, t: tl, f: fl, conditional: true})
}

// assemble compiles n into a program that returns snaplen for a frame it
// accepts and 0 for one it rejects. dropOutgoing first rejects the copies
// of frames this host sends (loopback shows every frame twice).
func assemble(n *node, link layers.LinkType, snaplen int, dropOutgoing bool) ([]bpf.Instruction, error) {
	if snaplen <= 0 {
		snaplen = DefaultSnaplen
	}
	a := &asm{link: link}
	accept, reject := a.label(), a.label()
	if dropOutgoing {
		keep := a.label()
		a.load(test{pkttype: true})
		a.cond(test{cond: bpf.JumpEqual, val: 4 /* PACKET_OUTGOING */}, reject, keep)
		a.place(keep)
	}
	a.gen(n, accept, reject)
	a.place(accept)
	a.ins = append(a.ins, bpf.RetConstant{Val: uint32(snaplen)})
	a.place(reject)
	a.ins = append(a.ins, bpf.RetConstant{Val: 0})
	for _, j := range a.jumps {
		skip := func(l int) (int, error) {
			target := a.labels[l]
			d := target - j.at - 1
			if d < 0 {
				return 0, fmt.Errorf("filter: internal error: backward jump")
			}
			if j.conditional && d > 255 {
				return 0, fmt.Errorf("filter: too long for classic BPF (a jump of %d instructions)", d)
			}
			return d, nil
		}
		st, err := skip(j.t)
		if err != nil {
			return nil, err
		}
		if !j.conditional {
			a.ins[j.at] = bpf.Jump{Skip: uint32(st)}
			continue
		}
		sf, err := skip(j.f)
		if err != nil {
			return nil, err
		}
		ji := a.ins[j.at].(bpf.JumpIf)
		ji.SkipTrue, ji.SkipFalse = uint8(st), uint8(sf)
		a.ins[j.at] = ji
	}
	if len(a.ins) > 4096 {
		return nil, fmt.Errorf("filter: %d instructions, more than the kernel takes (4096)", len(a.ins))
	}
	if _, err := bpf.Assemble(a.ins); err != nil {
		return nil, fmt.Errorf("filter: %v", err)
	}
	return a.ins, nil
}
