package dns

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzMessageTable feeds DNS messages to the code that describes them to
// scripts (the answers of a query, the requests a handler gets), prints
// them as dig does and describes them in the trace. Whatever miekg/dns
// unpacks must convert without a panic, keep its section counts, print
// its status, and every record of a type whose fields a table spells out
// must come back from its table to the same bytes on the wire (that is how
// a handler hands a queried record back).
func FuzzMessageTable(f *testing.F) {
	for _, m := range fuzzSeedMessages() {
		p, err := m.Pack()
		if err != nil {
			f.Fatalf("seed %v: %v", m.Question, err)
		}
		f.Add(p)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		desc := describe(data)
		m := new(mdns.Msg)
		if m.Unpack(data) != nil {
			return
		}
		if len(data) >= 12 && desc == "" {
			t.Errorf("a message that unpacks is not described")
		}
		tbl := MessageTable(m)
		if n := len(tbl.Get("question").(*Table).List); n != len(m.Question) {
			t.Errorf("question: %d entries, message has %d", n, len(m.Question))
		}
		for _, s := range []struct {
			key string
			rrs []mdns.RR
		}{{"answer", m.Answer}, {"authority", m.Ns}, {"additional", withoutOPT(m.Extra)}} {
			list := tbl.Get(s.key).(*Table).List
			if len(list) != len(s.rrs) {
				t.Fatalf("%s: %d entries, message has %d", s.key, len(list), len(s.rrs))
			}
			for i, rr := range s.rrs {
				rt := list[i].(*Table)
				if got := rt.Get("type"); got != TypeName(rr.Header().Rrtype) {
					t.Errorf("%s[%d]: type %v, want %s", s.key, i+1, got, TypeName(rr.Header().Rrtype))
				}
				_ = RecordLine(rt)
				checkRoundTrip(t, rr, rt)
			}
		}
		out := DigText(tbl)
		if !strings.Contains(out, "status: "+rcodeName(m.Rcode)+",") {
			t.Errorf("printed form lacks the status %s:\n%s", rcodeName(m.Rcode), out)
		}
	})
}

func withoutOPT(rrs []mdns.RR) []mdns.RR {
	var out []mdns.RR
	for _, rr := range rrs {
		if _, ok := rr.(*mdns.OPT); !ok && rr != nil {
			out = append(out, rr)
		}
	}
	return out
}

// checkRoundTrip rebuilds a record from its table and compares the wire
// forms. Records with no data (allowed in dynamic updates) have nothing to
// rebuild.
func checkRoundTrip(t *testing.T, rr mdns.RR, rt *Table) {
	t.Helper()
	if _, typed := typeFields[rr.Header().Rrtype]; !typed || rr.Header().Rdlength == 0 || rr.Header().Class != mdns.ClassINET {
		return
	}
	want, ok := packRR(rr)
	if !ok {
		return // miekg cannot pack what it unpacked: not ours to judge
	}
	// Nor is a record whose data stopped short (miekg leaves the missing
	// fields empty): only a record whose zone-file form parses back to the
	// same bytes is well formed.
	if again, err := mdns.NewRR(rr.String()); err != nil || again == nil {
		return
	} else if w2, ok := packRR(again); !ok || !bytes.Equal(w2, want) {
		return
	}
	back, err := recordFromTable(rt, Defaults{Origin: "."})
	if err != nil {
		t.Fatalf("%s: table does not convert back: %v", rr, err)
	}
	got, ok := packRR(back)
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("round trip changed the record:\n was %s\n now %s\n wire %x\n  vs  %x", rr, back, want, got)
	}
}

func packRR(rr mdns.RR) ([]byte, bool) {
	buf := make([]byte, mdns.MaxMsgSize)
	off, err := mdns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, false
	}
	return buf[:off], true
}

// fuzzSeedMessages are answers of every type the tables spell out, with
// the awkward bits: escaped names, binary TXT, EDNS0, TC, NXDOMAIN.
func fuzzSeedMessages() []*mdns.Msg {
	rr := func(s string) mdns.RR {
		r, err := mdns.NewRR(s)
		if err != nil {
			panic(s + ": " + err.Error())
		}
		return r
	}
	q := new(mdns.Msg)
	q.SetQuestion("www.example.test.", mdns.TypeA)
	q.SetEdns0(1232, true)

	a := new(mdns.Msg)
	a.SetReply(q)
	a.Authoritative = true
	a.Answer = []mdns.RR{
		rr("www.example.test. 300 IN A 192.0.2.1"),
		rr("www.example.test. 300 IN AAAA 2001:db8::1"),
		rr("alias.example.test. 60 IN CNAME www.example.test."),
		rr("example.test. 60 IN MX 10 mail.example.test."),
		rr(`txt.example.test. 60 IN TXT "hello world" "quote \" backslash \\ bin \000\255"`),
		rr("example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 7 3600 600 86400 60"),
		rr("_sip._tcp.example.test. 60 IN SRV 10 5 5060 www.example.test."),
		rr(`example.test. 60 IN CAA 0 issue "ca.example"`),
		rr("1.2.0.192.in-addr.arpa. 60 IN PTR www.example.test."),
		rr("example.test. 60 IN NS ns1.example.test."),
		rr(`host.example.test. 60 IN HINFO "cpu" "os"`),
		rr(`a\.b\032c.example.test. 60 IN A 192.0.2.9`),
		rr("example.test. 60 IN DS 12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"),
		rr("example.test. 60 IN DNSKEY 257 3 8 AwEAAQ=="),
		rr("example.test. 60 IN NSEC z.example.test. A MX RRSIG NSEC"),
		rr("example.test. 60 IN TYPE65534 \\# 3 010203"),
	}
	a.Ns = []mdns.RR{rr("example.test. 60 IN NS ns1.example.test.")}
	a.Extra = []mdns.RR{rr("ns1.example.test. 60 IN A 192.0.2.53")}
	a.SetEdns0(1232, true)

	nx := new(mdns.Msg)
	nx.SetRcode(q, mdns.RcodeNameError)
	nx.Ns = []mdns.RR{rr("example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 7 3600 600 86400 60")}

	tc := new(mdns.Msg)
	tc.SetReply(q)
	tc.Truncated = true
	for i := 0; i < 40; i++ {
		tc.Answer = append(tc.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: "big.example.test.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 1}, A: net.IPv4(10, 0, 0, byte(i))})
	}
	return []*mdns.Msg{q, a, nx, tc}
}

// FuzzServeZone feeds datagrams to the server's answering code with a
// zone: any bytes a client sends get no answer or a well-formed one that
// fits the client's UDP size.
func FuzzServeZone(f *testing.F) {
	for _, m := range fuzzSeedMessages() {
		if p, err := m.Pack(); err == nil {
			f.Add(p)
		}
	}
	for _, name := range []string{"www.example.test.", "a.b.wild.example.test.", "alias.example.test.", "nope.example.test.", "example.test.", "other.test.", "."} {
		for _, t := range []uint16{mdns.TypeA, mdns.TypeANY, mdns.TypeMX, mdns.TypeCNAME} {
			q := new(mdns.Msg)
			q.SetQuestion(name, t)
			p, _ := q.Pack()
			f.Add(p)
		}
	}
	var rrs []mdns.RR
	for _, s := range []string{
		"example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60",
		"www.example.test. 60 IN A 192.0.2.1", "alias.example.test. 60 IN CNAME www.example.test.",
		"loop.example.test. 60 IN CNAME loop.example.test.", "out.example.test. 60 IN CNAME www.other.test.",
		"*.wild.example.test. 60 IN A 192.0.2.2", "example.test. 60 IN MX 10 www.example.test.",
		"deep.ent.example.test. 60 IN TXT \"x\"",
	} {
		rr, err := mdns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	for i := 0; i < 100; i++ {
		rrs = append(rrs, &mdns.A{Hdr: mdns.RR_Header{Name: "big.example.test.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IPv4(10, 0, 0, byte(i))})
	}
	z, err := newZone("", rrs, 60)
	if err != nil {
		f.Fatal(err)
	}
	srv := &Server{cfg: ServerConfig{Zone: z}}
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, transport := range []string{"udp", "tcp"} {
			out := srv.respond(data, client, transport)
			if out == nil {
				continue
			}
			m := new(mdns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("%s answer does not unpack: %v", transport, err)
			}
			if !m.Response {
				t.Fatalf("%s answer without QR", transport)
			}
			limit := mdns.MinMsgSize
			req := new(mdns.Msg)
			if req.Unpack(data) == nil {
				if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > limit {
					limit = int(opt.UDPSize())
				}
			}
			if transport == "udp" && len(out) > limit {
				t.Fatalf("UDP answer of %d bytes for a client that takes %d", len(out), limit)
			}
		}
	})
}
