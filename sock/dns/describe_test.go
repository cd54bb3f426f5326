package dns

import (
	"encoding/binary"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestDescribe(t *testing.T) {
	pack := func(m *mdns.Msg) []byte {
		p, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	q := new(mdns.Msg)
	q.SetQuestion("x.bar.test.", mdns.TypeA)
	q.Id = 4242
	norec := q.Copy()
	norec.RecursionDesired = false
	a := new(mdns.Msg)
	a.SetReply(q)
	a.Authoritative, a.RecursionAvailable = true, true
	for _, s := range []string{"x.bar.test. 60 IN CNAME y.bar.test.", "y.bar.test. 60 IN A 127.0.0.42", "y.bar.test. 60 IN A 127.0.0.43", "y.bar.test. 60 IN A 127.0.0.44"} {
		rr, _ := mdns.NewRR(s)
		a.Answer = append(a.Answer, rr)
	}
	nx := new(mdns.Msg)
	nx.SetRcode(q, mdns.RcodeNameError)
	soa, _ := mdns.NewRR("bar.test. 60 IN SOA ns hm 1 2 3 4 5")
	nx.Ns = []mdns.RR{soa}
	nx.SetEdns0(1232, false)
	tc := new(mdns.Msg)
	tc.SetReply(q)
	tc.Truncated = true
	framed := binary.BigEndian.AppendUint16(nil, uint16(len(pack(q))))

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"question", pack(q), "4242+ A? x.bar.test."},
		{"without recursion", pack(norec), "4242 A? x.bar.test."},
		{"answer", pack(a), "4242* q: A? x.bar.test. 4/0/0 CNAME y.bar.test., A 127.0.0.42, A 127.0.0.43, ..."},
		{"NXDOMAIN, OPT not counted", pack(nx), "4242 NXDomain- q: A? x.bar.test. 0/1/0"},
		{"truncated", pack(tc), "4242-| q: A? x.bar.test. 0/0/0"},
		{"over TCP, with its length", append(framed, pack(q)...), "4242+ A? x.bar.test."},
		{"the length alone", framed, "length 28"},
		{"not DNS", []byte("GET / HTTP/1.1\r\n"), ""},
		{"a short header", []byte{1, 2, 3}, ""},
	} {
		if got := describe(c.data); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
