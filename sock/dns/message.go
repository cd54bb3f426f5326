package dns

import (
	"fmt"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// Messages as tables, and printed as dig prints them.

// MessageTable describes a message: id, opcode, rcode, flags, the
// question, and the answer, authority and additional sections (an OPT
// record becomes edns, not an additional record).
func MessageTable(m *mdns.Msg) *Table {
	t := NewTable(KindResult)
	t.set("id", m.Id)
	t.set("opcode", opcodeName(m.Opcode))
	t.set("rcode", rcodeName(m.Rcode))
	flags := NewTable("")
	for _, f := range []struct {
		name string
		on   bool
	}{{"qr", m.Response}, {"aa", m.Authoritative}, {"tc", m.Truncated}, {"rd", m.RecursionDesired},
		{"ra", m.RecursionAvailable}, {"ad", m.AuthenticatedData}, {"cd", m.CheckingDisabled}} {
		flags.set(f.name, f.on)
	}
	t.set("flags", flags)
	qs := list()
	for _, q := range m.Question {
		qt := NewTable("")
		qt.set("name", q.Name)
		qt.set("type", TypeName(q.Qtype))
		qt.set("class", className(q.Qclass))
		qs.List = append(qs.List, qt)
	}
	t.set("question", qs)
	section := func(rrs []mdns.RR, additional bool) *Table {
		s := list()
		for _, rr := range rrs {
			if rr == nil {
				continue
			}
			if opt, ok := rr.(*mdns.OPT); ok && additional {
				if t.Get("edns") == nil {
					t.set("edns", ednsTable(opt))
				}
				continue
			}
			s.List = append(s.List, RecordTable(rr))
		}
		return s
	}
	t.set("answer", section(m.Answer, false))
	t.set("authority", section(m.Ns, false))
	t.set("additional", section(m.Extra, true))
	return t
}

func ednsTable(opt *mdns.OPT) *Table {
	e := NewTable("")
	e.set("udp_size", opt.UDPSize())
	e.set("version", opt.Version())
	e.set("do", opt.Do())
	if len(opt.Option) > 0 {
		opts := make([]string, len(opt.Option))
		for i, o := range opt.Option {
			opts[i] = ednsOptionString(o)
		}
		e.set("options", stringList(opts))
	}
	return e
}

func ednsOptionString(o mdns.EDNS0) string {
	name := "OPTION" + strconv.Itoa(int(o.Option()))
	switch o.(type) {
	case *mdns.EDNS0_NSID:
		name = "NSID"
	case *mdns.EDNS0_COOKIE:
		name = "COOKIE"
	case *mdns.EDNS0_SUBNET:
		name = "CLIENT-SUBNET"
	case *mdns.EDNS0_PADDING:
		name = "PADDING"
	case *mdns.EDNS0_EDE:
		name = "EDE"
	}
	return name + ": " + o.String()
}

// Printing, as dig prints.

// tabCol is the column s has reached, with tab stops every 8.
func tabCol(s string) int {
	col := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\t' {
			col = (col/8 + 1) * 8
		} else {
			col++
		}
	}
	return col
}

// padColumn writes tabs until the line from lineStart reaches col, at
// least one: dig's layout of owner, TTL, class and type.
func padColumn(b *strings.Builder, lineStart, col int) {
	for first := true; first || tabCol(b.String()[lineStart:]) < col; first = false {
		b.WriteByte('\t')
	}
}

// field renders a field as a script would print it ("" when absent).
func field(t *Table, k string) string {
	switch v := t.Get(k).(type) {
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(v)
	case *Table:
		return "table"
	default:
		s, _ := text(v)
		return s
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// RecordLine is a record table as dig prints it: owner, TTL, class, type
// and rdata in columns.
func RecordLine(t *Table) string {
	var b strings.Builder
	b.WriteString(field(t, "name"))
	padColumn(&b, 0, 24)
	b.WriteString(field(t, "ttl"))
	padColumn(&b, 0, 32)
	b.WriteString(orDefault(field(t, "class"), "IN"))
	padColumn(&b, 0, 40)
	b.WriteString(field(t, "type"))
	rdata := field(t, "rdata")
	if rdata == "" {
		if rr, err := recordFromTable(t, Defaults{Origin: "."}); err == nil {
			rdata = rdataString(rr)
		}
	}
	if rdata != "" {
		padColumn(&b, 0, 48)
		b.WriteString(rdata)
	}
	return b.String()
}

// DigText renders a result table (MessageTable, with what Answer.Table
// adds) as dig prints an answer.
func DigText(t *Table) string {
	var b strings.Builder
	if truthy(t.Get("truncated_retry")) {
		b.WriteString(";; Truncated, retrying in TCP mode.\n")
	}
	section := func(k string) []any {
		if l, ok := t.Get(k).(*Table); ok {
			return l.List
		}
		return nil
	}
	edns, hasEDNS := t.Get("edns").(*Table)
	fmt.Fprintf(&b, ";; ->>HEADER<<- opcode: %s, status: %s, id: %s\n",
		orDefault(field(t, "opcode"), "QUERY"), orDefault(field(t, "rcode"), "NOERROR"), field(t, "id"))
	var flags []string
	if ft, ok := t.Get("flags").(*Table); ok {
		for _, f := range []string{"qr", "aa", "tc", "rd", "ra", "ad", "cd"} {
			if truthy(ft.Get(f)) {
				flags = append(flags, f)
			}
		}
	}
	add := 0
	if hasEDNS {
		add = 1
	}
	fmt.Fprintf(&b, ";; flags: %s; QUERY: %d, ANSWER: %d, AUTHORITY: %d, ADDITIONAL: %d\n",
		strings.Join(flags, " "), len(section("question")), len(section("answer")), len(section("authority")),
		len(section("additional"))+add)
	if hasEDNS {
		eflags := ""
		if truthy(edns.Get("do")) {
			eflags = " do"
		}
		fmt.Fprintf(&b, "\n;; OPT PSEUDOSECTION:\n; EDNS: version: %s, flags:%s; udp: %s\n",
			orDefault(field(edns, "version"), "0"), eflags, field(edns, "udp_size"))
		if opts, ok := edns.Get("options").(*Table); ok {
			for _, o := range opts.List {
				s, _ := text(o)
				fmt.Fprintf(&b, "; %s\n", s)
			}
		}
	} else {
		b.WriteByte('\n')
	}
	b.WriteString(";; QUESTION SECTION:\n")
	for _, v := range section("question") {
		q, ok := v.(*Table)
		if !ok {
			continue
		}
		start := b.Len()
		b.WriteString(";" + field(q, "name"))
		padColumn(&b, start, 32)
		b.WriteString(orDefault(field(q, "class"), "IN"))
		padColumn(&b, start, 40)
		b.WriteString(field(q, "type") + "\n")
	}
	for _, s := range []struct{ key, title string }{{"answer", "ANSWER"}, {"authority", "AUTHORITY"}, {"additional", "ADDITIONAL"}} {
		rrs := section(s.key)
		if len(rrs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n;; %s SECTION:\n", s.title)
		for _, v := range rrs {
			if rr, ok := v.(*Table); ok {
				b.WriteString(RecordLine(rr) + "\n")
			}
		}
	}
	if rtt, ok := number(t.Get("rtt")); ok {
		fmt.Fprintf(&b, "\n;; Query time: %d msec\n", int(rtt*1000))
	} else {
		b.WriteByte('\n')
	}
	if server := field(t, "server"); server != "" {
		port := orDefault(field(t, "port"), "53")
		fmt.Fprintf(&b, ";; SERVER: %s#%s(%s) (%s)\n", server, port, server, strings.ToUpper(orDefault(field(t, "transport"), "udp")))
	}
	if size := field(t, "size"); size != "" {
		fmt.Fprintf(&b, ";; MSG SIZE  rcvd: %s\n", size)
	}
	return strings.TrimRight(b.String(), "\n")
}
