package lua

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
	glua "github.com/yuin/gopher-lua"
)

// FuzzMsgToLua feeds DNS messages to the code that turns them into Lua
// tables (the answers of dns.query, the requests a dns.serve handler gets)
// and prints them as dig does. Whatever miekg/dns unpacks must convert
// without a panic, keep its section counts, print its status, and every
// record of a type whose fields a table spells out must come back from
// its table to the same bytes on the wire (that is how a handler hands a
// queried record back).
func FuzzMsgToLua(f *testing.F) {
	for _, m := range fuzzSeedMessages() {
		p, err := m.Pack()
		if err != nil {
			f.Fatalf("seed %v: %v", m.Question, err)
		}
		f.Add(p)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0})
	h := New(Options{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
	f.Cleanup(h.Close)

	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil {
			return
		}
		h.withLock(func() {
			L := h.L
			tbl := msgToLua(L, m)
			sections := []struct {
				key string
				rrs []dns.RR
			}{{"answer", m.Answer}, {"authority", m.Ns}, {"additional", withoutOPT(m.Extra)}}
			if n := tbl.RawGetString("question").(*glua.LTable).Len(); n != len(m.Question) {
				t.Errorf("question: %d entries, message has %d", n, len(m.Question))
			}
			for _, s := range sections {
				list := tbl.RawGetString(s.key).(*glua.LTable)
				if list.Len() != len(s.rrs) {
					t.Fatalf("%s: %d entries, message has %d", s.key, list.Len(), len(s.rrs))
				}
				for i, rr := range s.rrs {
					rt := list.RawGetInt(i + 1).(*glua.LTable)
					if got := rt.RawGetString("type").String(); got != typeName(rr.Header().Rrtype) {
						t.Errorf("%s[%d]: type %s, want %s", s.key, i+1, got, typeName(rr.Header().Rrtype))
					}
					checkRoundTrip(t, rr, rt)
				}
			}
			out := digString(tbl)
			if !strings.Contains(out, "status: "+rcodeName(m.Rcode)+",") {
				t.Errorf("printed form lacks the status %s:\n%s", rcodeName(m.Rcode), out)
			}
			_ = h.tostring(L, tbl)
		})
	})
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if _, ok := rr.(*dns.OPT); !ok && rr != nil {
			out = append(out, rr)
		}
	}
	return out
}

// checkRoundTrip rebuilds a record from its table and compares the wire
// forms. Records with no data (allowed in dynamic updates) have nothing to
// rebuild.
func checkRoundTrip(t *testing.T, rr dns.RR, rt *glua.LTable) {
	t.Helper()
	if _, typed := typeFields[rr.Header().Rrtype]; !typed || rr.Header().Rdlength == 0 || rr.Header().Class != dns.ClassINET {
		return
	}
	want, ok := packRR(rr)
	if !ok {
		return // miekg cannot pack what it unpacked: not ours to judge
	}
	// Nor is a record whose data stopped short (miekg leaves the missing
	// fields empty): only a record whose zone-file form parses back to the
	// same bytes is well formed.
	if again, err := dns.NewRR(rr.String()); err != nil || again == nil {
		return
	} else if w2, ok := packRR(again); !ok || !bytes.Equal(w2, want) {
		return
	}
	back, err := rrFromTable(rt, rrDefaults{origin: "."})
	if err != nil {
		t.Fatalf("%s: table does not convert back: %v", rr, err)
	}
	got, ok := packRR(back)
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("round trip changed the record:\n was %s\n now %s\n wire %x\n  vs  %x", rr, back, want, got)
	}
}

func packRR(rr dns.RR) ([]byte, bool) {
	buf := make([]byte, dns.MaxMsgSize)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, false
	}
	return buf[:off], true
}

// fuzzSeedMessages are answers of every type the tables spell out, with
// the awkward bits: escaped names, binary TXT, EDNS0, TC, NXDOMAIN.
func fuzzSeedMessages() []*dns.Msg {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(s + ": " + err.Error())
		}
		return r
	}
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	q.SetEdns0(1232, true)

	a := new(dns.Msg)
	a.SetReply(q)
	a.Authoritative = true
	a.Answer = []dns.RR{
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
	a.Ns = []dns.RR{rr("example.test. 60 IN NS ns1.example.test.")}
	a.Extra = []dns.RR{rr("ns1.example.test. 60 IN A 192.0.2.53")}
	a.SetEdns0(1232, true)

	nx := new(dns.Msg)
	nx.SetRcode(q, dns.RcodeNameError)
	nx.Ns = []dns.RR{rr("example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 7 3600 600 86400 60")}

	tc := new(dns.Msg)
	tc.SetReply(q)
	tc.Truncated = true
	for i := 0; i < 40; i++ {
		tc.Answer = append(tc.Answer, &dns.A{Hdr: dns.RR_Header{Name: "big.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(10, 0, 0, byte(i))})
	}
	return []*dns.Msg{q, a, nx, tc}
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
		for _, t := range []uint16{dns.TypeA, dns.TypeANY, dns.TypeMX, dns.TypeCNAME} {
			q := new(dns.Msg)
			q.SetQuestion(name, t)
			p, _ := q.Pack()
			f.Add(p)
		}
	}
	var rrs []dns.RR
	for _, s := range []string{
		"example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60",
		"www.example.test. 60 IN A 192.0.2.1", "alias.example.test. 60 IN CNAME www.example.test.",
		"loop.example.test. 60 IN CNAME loop.example.test.", "out.example.test. 60 IN CNAME www.other.test.",
		"*.wild.example.test. 60 IN A 192.0.2.2", "example.test. 60 IN MX 10 www.example.test.",
		"deep.ent.example.test. 60 IN TXT \"x\"",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	for i := 0; i < 100; i++ {
		rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: "big.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(10, 0, 0, byte(i))})
	}
	z, err := newZone("", rrs, 60)
	if err != nil {
		f.Fatal(err)
	}
	srv := &dnsServer{zone: z}
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, transport := range []string{"udp", "tcp"} {
			out := srv.respond(data, client, transport)
			if out == nil {
				continue
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("%s answer does not unpack: %v", transport, err)
			}
			if !m.Response {
				t.Fatalf("%s answer without QR", transport)
			}
			limit := dns.MinMsgSize
			req := new(dns.Msg)
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
