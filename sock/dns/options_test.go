package dns

import (
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	opts := func(kv ...any) *Table {
		t := NewTable("")
		for i := 0; i < len(kv); i += 2 {
			t.Fields[kv[i].(string)] = kv[i+1]
		}
		return t
	}
	q, err := ParseQueryOptions(opts("server", "[::1]:5353", "port", 53.0, "tcp", true, "timeout", 0.5, "dnssec", true, "rd", false, "class", "ch"))
	if err != nil || q.Host != "::1" || q.Port != 5353 || !q.TCP || q.Timeout != 500*time.Millisecond ||
		!q.Question.DNSSEC || q.Question.RD || q.Question.Class != 3 {
		t.Errorf("%+v %v", q, err)
	}
	if q, _ := ParseQueryOptions(nil); !q.Question.RD || q.Timeout != DefaultTimeout {
		t.Errorf("defaults %+v", q)
	}
	for _, c := range []struct {
		t    *Table
		want string
	}{
		{opts("tpc", true), `unknown option "tpc" (known: server, port, tcp, timeout, edns, dnssec, rd, class)`},
		{opts("timeout", -1.0), `option "timeout": positive number of seconds expected, got number`},
		{opts("edns", 100.0), `option "edns": UDP size 100 out of range 512-65535`},
		{opts("server", "a..b"), `option "server": malformed domain name "a..b" (empty label, label over 63 bytes or name over 255)`},
		{opts("class", "XX"), `option "class": unknown class "XX" (IN, CH, HS, ANY)`},
		{opts("tcp", Foreign("function")), `option "tcp": boolean expected, got function`},
		{&Table{List: []any{"x"}}, `unknown option 1 (known: server, port, tcp, timeout, edns, dnssec, rd, class)`},
	} {
		if _, err := ParseQueryOptions(c.t); err == nil || err.Error() != c.want {
			t.Errorf("%v, want %s", err, c.want)
		}
	}

	s, err := ParseServeOptions(opts("addr", "[::1]:0", "zone", list("www A 127.0.0.1"), "origin", "example.test", "ttl", 60.0, "log", true), false)
	if err != nil || s.Host != "::1" || s.Port != 0 || s.Zone == nil || !s.Log || s.TTL != 60 {
		t.Errorf("%+v %v", s, err)
	}
	if s, err := ParseServeOptions(opts("zone", "/some/file"), false); err != nil || s.ZoneFile != "/some/file" || s.Host != "127.0.0.1" {
		t.Errorf("%+v %v", s, err)
	}
	for _, c := range []struct {
		t       *Table
		handler bool
		want    string
	}{
		{opts(), false, "a zone or a handler is needed"},
		{opts("addr", "1.2.3.4:1", "port", 5.0), true, "give addr or host and port, not both"},
		{opts("addr", "1.2.3.4:99999"), true, `option "addr": bad port in "1.2.3.4:99999"`},
		{opts("zone", list("www A not-an-ip")), false, `zone: [1]: "www A not-an-ip": bad A A: "not-an-ip" at line: 1:15`},
		{opts("bogus", 1.0), true, `unknown option "bogus" (known: addr, host, port, zone, origin, ttl, handler, log)`},
	} {
		if _, err := ParseServeOptions(c.t, c.handler); err == nil || err.Error() != c.want {
			t.Errorf("%v, want %s", err, c.want)
		}
	}
}
