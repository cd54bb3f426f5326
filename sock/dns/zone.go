package dns

import (
	"errors"
	"fmt"
	"os"
	"strings"

	mdns "github.com/miekg/dns"

	"sockplay/sock"
)

// DefaultTTL is the usual default TTL of a zone's records.
const DefaultTTL = 3600

// Zone is the data of one authoritative zone, by owner name.
type Zone struct {
	origin string // canonical: lower case, fully qualified
	ttl    uint32
	soa    *mdns.SOA
	names  map[string][]mdns.RR // canonical owner -> records
	ents   map[string]bool      // names that exist only because names below them do
}

// ZoneFromTable reads a zone given as a table: {origin=, ttl=, "zone-file
// line", {record table}, ...}. An origin given ("" for none) wins over the
// table's; the table's ttl wins over the ttl given (the records' default).
func ZoneFromTable(t *Table, origin string, ttl uint32) (*Zone, error) {
	hasOrigin := origin != ""
	if hasOrigin {
		origin = mdns.Fqdn(origin)
	}
	for _, k := range t.fieldNames() {
		v := t.Fields[k]
		switch k {
		case "origin":
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("origin: domain name expected, got %s", typeOf(v))
			}
			if err := ValidName(s); err != nil {
				return nil, fmt.Errorf("origin: %v", err)
			}
			if !hasOrigin {
				origin, hasOrigin = mdns.Fqdn(s), true
			}
		case "ttl":
			n, ok := number(v)
			if !ok || n < 0 || n > 2147483647 {
				s, _ := text(v)
				return nil, fmt.Errorf("ttl: seconds expected, got %s", orDefault(s, typeOf(v)))
			}
			ttl = uint32(n)
		default:
			return nil, fmt.Errorf("unknown key %q: a zone holds origin, ttl and a list of records", k)
		}
	}
	if len(t.Other) > 0 {
		return nil, fmt.Errorf("unknown key %s: a zone holds origin, ttl and a list of records", t.Other[0])
	}
	d := Defaults{Origin: origin, TTL: ttl}
	var rrs []mdns.RR
	for i, v := range t.List {
		rr, err := ParseRecord(v, d)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %v", i+1, err)
		}
		rrs = append(rrs, rr)
	}
	return newZone(origin, rrs, ttl)
}

// ZoneFromFile reads a zone file (origin "": the file's $ORIGIN or SOA;
// ttl: the records' default). A missing file or a syntax error is a
// failure of the world, not of the script.
func ZoneFromFile(path, origin string, ttl uint32) (*Zone, error) {
	if origin != "" {
		origin = mdns.Fqdn(origin)
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &sock.Error{Op: "open", Code: sock.Code(err), Msg: fmt.Sprintf("cannot open zone file %s: %v", path, err)}
	}
	defer f.Close()
	start := origin
	if start == "" {
		start = "."
	}
	zp := mdns.NewZoneParser(f, start, path)
	zp.SetDefaultTTL(ttl)
	var rrs []mdns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, &sock.Error{Op: "zone", Code: "EINVAL", Msg: strings.TrimPrefix(err.Error(), "dns: ")}
	}
	z, err := newZone(origin, rrs, ttl)
	if err != nil {
		return nil, &sock.Error{Op: "zone", Code: "EINVAL", Msg: fmt.Sprintf("%s: %v", path, err)}
	}
	return z, nil
}

// newZone indexes records. With no origin given the zone's apex is its SOA's
// owner, else the root.
func newZone(origin string, rrs []mdns.RR, ttl uint32) (*Zone, error) {
	z := &Zone{ttl: ttl, names: map[string][]mdns.RR{}, ents: map[string]bool{}}
	for _, rr := range rrs {
		if rr.Header().Class != mdns.ClassINET {
			return nil, fmt.Errorf("%s: only class IN is served", rr.Header().Name)
		}
		key := mdns.CanonicalName(rr.Header().Name)
		z.names[key] = append(z.names[key], rr)
		if soa, ok := rr.(*mdns.SOA); ok && z.soa == nil {
			z.soa = soa
		}
	}
	switch {
	case origin != "":
		z.origin = mdns.CanonicalName(origin)
	case z.soa != nil:
		z.origin = mdns.CanonicalName(z.soa.Hdr.Name)
	default:
		z.origin = "."
	}
	if z.soa != nil && mdns.CanonicalName(z.soa.Hdr.Name) != z.origin {
		return nil, fmt.Errorf("the SOA record is for %s, not the origin %s", z.soa.Hdr.Name, z.origin)
	}
	for name := range z.names {
		if !mdns.IsSubDomain(z.origin, name) {
			return nil, fmt.Errorf("%s is outside the zone %s", name, z.origin)
		}
		for p := parentName(name); p != "" && p != z.origin && mdns.IsSubDomain(z.origin, p); p = parentName(p) {
			if _, ok := z.names[p]; !ok {
				z.ents[p] = true
			}
		}
	}
	return z, nil
}

// parentName is name without its first label; "" above the root.
func parentName(name string) string {
	if name == "." || name == "" {
		return ""
	}
	off, end := mdns.NextLabel(name, 0)
	if end || off >= len(name) {
		return "."
	}
	return name[off:]
}

// find returns the records at name: its own, or a wildcard's renamed to
// it. exists is false for a name the zone does not have (NXDOMAIN).
func (z *Zone) find(name string) (rrs []mdns.RR, exists bool) {
	key := mdns.CanonicalName(name)
	if rrs, ok := z.names[key]; ok {
		return rrs, true
	}
	if z.ents[key] {
		return nil, true
	}
	// The closest ancestor that exists decides: its wildcard child, if any,
	// stands for name.
	for p := parentName(key); p != "" && mdns.IsSubDomain(z.origin, p); p = parentName(p) {
		if wild, ok := z.names["*."+p]; ok {
			out := make([]mdns.RR, len(wild))
			for i, rr := range wild {
				out[i] = mdns.Copy(rr)
				out[i].Header().Name = name
			}
			return out, true
		}
		if _, ok := z.names[p]; ok || z.ents[p] {
			break
		}
	}
	return nil, false
}

// answer fills reply for q from the zone: the records, CNAMEs followed
// inside the zone, NXDOMAIN or NODATA with the SOA, and addresses of MX,
// SRV and NS targets as additional records. No delegations.
func (z *Zone) answer(q mdns.Question, reply *mdns.Msg) {
	qname := q.Name
	if !mdns.IsSubDomain(z.origin, mdns.CanonicalName(qname)) || (q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY) {
		reply.Rcode = mdns.RcodeRefused
		return
	}
	reply.Authoritative = true
	name := qname
	for hops := 0; hops < 8; hops++ {
		rrs, exists := z.find(name)
		if !exists {
			reply.Rcode = mdns.RcodeNameError
			break
		}
		var match []mdns.RR
		var cname mdns.RR
		for _, rr := range rrs {
			t := rr.Header().Rrtype
			if t == q.Qtype || q.Qtype == mdns.TypeANY {
				match = append(match, rr)
			}
			if t == mdns.TypeCNAME {
				cname = rr
			}
		}
		if len(match) > 0 {
			reply.Answer = append(reply.Answer, match...)
			break
		}
		if cname == nil {
			break // NODATA
		}
		reply.Answer = append(reply.Answer, cname)
		name = cname.(*mdns.CNAME).Target
		if !mdns.IsSubDomain(z.origin, mdns.CanonicalName(name)) {
			break // the client follows it elsewhere
		}
	}
	if len(reply.Answer) == 0 || reply.Rcode == mdns.RcodeNameError {
		if z.soa != nil {
			reply.Ns = append(reply.Ns, z.soa)
		}
		return
	}
	seen := map[string]bool{}
	for _, rr := range reply.Answer {
		var target string
		switch rr := rr.(type) {
		case *mdns.MX:
			target = rr.Mx
		case *mdns.SRV:
			target = rr.Target
		case *mdns.NS:
			target = rr.Ns
		default:
			continue
		}
		key := mdns.CanonicalName(target)
		if seen[key] || !mdns.IsSubDomain(z.origin, key) {
			continue
		}
		seen[key] = true
		for _, a := range z.names[key] {
			if t := a.Header().Rrtype; t == mdns.TypeA || t == mdns.TypeAAAA {
				reply.Extra = append(reply.Extra, a)
			}
		}
	}
}
