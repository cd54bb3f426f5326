package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// Records as tables: name, type, class, ttl, rdata (the presentation form)
// and the fields of its type (address, target, preference and exchange
// ...). A script may give a record back as such a table, with only the
// fields of its type, or as a zone-file line.

// typeFields are the fields of the types a table can spell out, in
// zone-file order.
var typeFields = map[uint16][]string{
	mdns.TypeA:     {"address"},
	mdns.TypeAAAA:  {"address"},
	mdns.TypeCNAME: {"target"},
	mdns.TypeNS:    {"target"},
	mdns.TypePTR:   {"target"},
	mdns.TypeDNAME: {"target"},
	mdns.TypeMX:    {"preference", "exchange"},
	mdns.TypeTXT:   {"text"},
	mdns.TypeSPF:   {"text"},
	mdns.TypeSOA:   {"mname", "rname", "serial", "refresh", "retry", "expire", "minimum"},
	mdns.TypeSRV:   {"priority", "weight", "port", "target"},
	mdns.TypeCAA:   {"flag", "tag", "value"},
	mdns.TypeHINFO: {"cpu", "os"},
}

var commonFields = map[string]bool{"name": true, "type": true, "class": true, "ttl": true, "rdata": true}

// readOnlyFields are fields RecordTable writes for types that tables
// cannot spell out; a table carrying them (a queried record handed back by
// a handler) is built from its rdata.
var readOnlyFields = map[string]bool{
	"key_tag": true, "algorithm": true, "digest_type": true, "digest": true, "flags": true, "protocol": true,
	"public_key": true, "type_covered": true, "labels": true, "original_ttl": true, "expiration": true,
	"inception": true, "signer": true, "signature": true, "next": true, "types": true,
}

// rdataString is the presentation form of a record's data, without the
// owner, TTL, class and type in front.
func rdataString(rr mdns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// RecordTable describes a record: its header, its rdata, and the fields of
// its type.
func RecordTable(rr mdns.RR) *Table {
	t := NewTable(KindRecord)
	hdr := rr.Header()
	t.set("name", hdr.Name)
	t.set("type", TypeName(hdr.Rrtype))
	t.set("class", className(hdr.Class))
	t.set("ttl", hdr.Ttl)
	t.set("rdata", rdataString(rr))
	switch rr := rr.(type) {
	case *mdns.A:
		t.set("address", ipString(rr.A))
	case *mdns.AAAA:
		t.set("address", ipString(rr.AAAA))
	case *mdns.CNAME:
		t.set("target", rr.Target)
	case *mdns.NS:
		t.set("target", rr.Ns)
	case *mdns.PTR:
		t.set("target", rr.Ptr)
	case *mdns.DNAME:
		t.set("target", rr.Target)
	case *mdns.MX:
		t.set("preference", rr.Preference)
		t.set("exchange", rr.Mx)
	case *mdns.TXT:
		t.set("text", textList(rr.Txt))
	case *mdns.SPF:
		t.set("text", textList(rr.Txt))
	case *mdns.SOA:
		t.set("mname", rr.Ns)
		t.set("rname", rr.Mbox)
		t.set("serial", rr.Serial)
		t.set("refresh", rr.Refresh)
		t.set("retry", rr.Retry)
		t.set("expire", rr.Expire)
		t.set("minimum", rr.Minttl)
	case *mdns.SRV:
		t.set("priority", rr.Priority)
		t.set("weight", rr.Weight)
		t.set("port", rr.Port)
		t.set("target", rr.Target)
	case *mdns.CAA:
		t.set("flag", rr.Flag)
		t.set("tag", rr.Tag)
		t.set("value", rr.Value)
	case *mdns.HINFO:
		t.set("cpu", rr.Cpu)
		t.set("os", rr.Os)
	case *mdns.DS:
		t.set("key_tag", rr.KeyTag)
		t.set("algorithm", rr.Algorithm)
		t.set("digest_type", rr.DigestType)
		t.set("digest", rr.Digest)
	case *mdns.DNSKEY:
		t.set("flags", rr.Flags)
		t.set("protocol", rr.Protocol)
		t.set("algorithm", rr.Algorithm)
		t.set("public_key", rr.PublicKey)
	case *mdns.RRSIG:
		t.set("type_covered", TypeName(rr.TypeCovered))
		t.set("algorithm", rr.Algorithm)
		t.set("labels", rr.Labels)
		t.set("original_ttl", rr.OrigTtl)
		t.set("expiration", rr.Expiration)
		t.set("inception", rr.Inception)
		t.set("key_tag", rr.KeyTag)
		t.set("signer", rr.SignerName)
		t.set("signature", rr.Signature)
	case *mdns.NSEC:
		types := make([]string, len(rr.TypeBitMap))
		for i, ty := range rr.TypeBitMap {
			types[i] = TypeName(ty)
		}
		t.set("next", rr.NextDomain)
		t.set("types", stringList(types))
	}
	return t
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

// textList gives the character-strings of a TXT record as the bytes they
// are: miekg keeps them escaped for the zone-file form.
func textList(parts []string) *Table {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = unescapeText(p)
	}
	return stringList(out)
}

// unescapeText undoes the \X and \DDD escapes of a presentation string.
func unescapeText(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

// escapeText is what miekg's packer expects of a raw character-string:
// backslashes escaped, everything else as it is.
func escapeText(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Defaults fill what a record leaves out.
type Defaults struct {
	Origin string // relative names are under it; "@" is it ("": the root)
	Name   string // the owner when a table has no name
	TTL    uint32
}

// absName makes a name absolute under origin, zone-file style.
func absName(n, origin string) (string, error) {
	if n == "@" {
		return origin, nil
	}
	if err := ValidName(n); err != nil {
		return "", err
	}
	if mdns.IsFqdn(n) {
		return n, nil
	}
	if origin == "" || origin == "." {
		return n + ".", nil
	}
	return n + "." + origin, nil
}

// ParseRecord builds a record from a zone-file line or a record table.
func ParseRecord(v any, d Defaults) (mdns.RR, error) {
	if d.Origin == "" {
		d.Origin = "."
	}
	switch v := v.(type) {
	case string:
		return parseLine(v, d)
	case *Table:
		return recordFromTable(v, d)
	}
	return nil, fmt.Errorf("record expected (a table or a zone-file line), got %s", typeOf(v))
}

// parseLine parses one zone-file line with origin and default TTL.
func parseLine(s string, d Defaults) (mdns.RR, error) {
	zp := mdns.NewZoneParser(strings.NewReader(s), d.Origin, "")
	zp.SetDefaultTTL(d.TTL)
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("%q: %s", s, strings.TrimPrefix(err.Error(), "dns: "))
	}
	if !ok || rr == nil {
		return nil, fmt.Errorf("%q holds no record", s)
	}
	if _, more := zp.Next(); more {
		return nil, fmt.Errorf("%q holds more than one record", s)
	}
	return rr, nil
}

// fieldReader reads a record table's fields, keeping the first error.
type fieldReader struct {
	t      *Table
	rrtype uint16
	err    error
}

func (r *fieldReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}

// str reads a text field; absent is "" and false, or an error when
// required.
func (r *fieldReader) str(k string, required bool) (string, bool) {
	v := r.t.Get(k)
	if v == nil {
		if required {
			r.fail("field %q missing for a %s record", k, TypeName(r.rrtype))
		}
		return "", false
	}
	s, ok := text(v)
	if !ok {
		r.fail("field %q: string expected, got %s", k, typeOf(v))
	}
	return s, ok
}

func (r *fieldReader) name(k, origin string) string {
	s, ok := r.str(k, true)
	if !ok {
		return ""
	}
	n, err := absName(s, origin)
	if err != nil {
		r.fail("field %q: %v", k, err)
	}
	return n
}

// num reads a whole number in 0..max; def < 0 makes it required.
func (r *fieldReader) num(k string, max uint64, def int64) uint64 {
	v := r.t.Get(k)
	if v == nil {
		if def < 0 {
			r.fail("field %q missing for a %s record", k, TypeName(r.rrtype))
			return 0
		}
		return uint64(def)
	}
	n, ok := number(v)
	switch {
	case !ok:
		r.fail("field %q: number expected, got %s", k, typeOf(v))
	case n < 0 || n > float64(max) || n != float64(int64(n)):
		r.fail("field %q: %v out of range 0-%d", k, n, max)
	default:
		return uint64(n)
	}
	return 0
}

func (r *fieldReader) addr(want6 bool) net.IP {
	s, ok := r.str("address", true)
	if !ok {
		return nil
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		r.fail("field \"address\": %q is not an IP address", s)
	case want6 && !a.Is6():
		r.fail("field \"address\": %s is not an IPv6 address (AAAA)", s)
	case !want6 && !a.Is4():
		r.fail("field \"address\": %s is not an IPv4 address (A)", s)
	default:
		return net.IP(a.AsSlice())
	}
	return nil
}

func recordFromTable(t *Table, d Defaults) (mdns.RR, error) {
	typ := t.Get("type")
	if typ == nil {
		return nil, errors.New(`field "type" missing`)
	}
	var rrtype uint16
	var err error
	if s, ok := typ.(string); ok {
		rrtype, err = ParseType(s)
	} else if n, ok := number(typ); ok {
		rrtype, err = TypeNumber(n)
	} else {
		err = fmt.Errorf("record type expected, got %s", typeOf(typ))
	}
	if err != nil {
		return nil, fmt.Errorf("field \"type\": %v", err)
	}
	r := &fieldReader{t: t, rrtype: rrtype}
	name := d.Name
	if n, ok := r.str("name", false); ok {
		name = n
	}
	if r.err != nil {
		return nil, r.err
	}
	if name == "" {
		return nil, errors.New(`field "name" missing`)
	}
	owner, err := absName(name, d.Origin)
	if err != nil {
		return nil, fmt.Errorf("field \"name\": %v", err)
	}
	class := uint16(mdns.ClassINET)
	if c, ok := r.str("class", false); ok {
		if class, err = ParseClass(c); err != nil {
			return nil, fmt.Errorf("field \"class\": %v", err)
		}
	}
	ttl := uint32(r.num("ttl", 1<<32-1, int64(d.TTL)))
	if r.err != nil {
		return nil, r.err
	}
	fields, typed := typeFields[rrtype]
	hasTyped := false
	for _, key := range t.fieldNames() {
		switch {
		case commonFields[key]:
		case typed && contains(fields, key):
			hasTyped = true
		case !typed && readOnlyFields[key]:
			// a queried record handed back: its rdata says it all
		default:
			return nil, unknownField(strconv.Quote(key), rrtype, fields, typed)
		}
	}
	if odd := t.otherKeys(); len(odd) > 0 {
		return nil, unknownField(odd[0], rrtype, fields, typed)
	}
	if rdata, ok := r.str("rdata", false); ok && (!typed || !hasTyped) {
		line := fmt.Sprintf("%s %d %s %s %s", owner, ttl, className(class), TypeName(rrtype), rdata)
		return parseLine(line, d)
	}
	if r.err != nil {
		return nil, r.err
	}
	if !typed {
		return nil, fmt.Errorf("field \"rdata\" missing: a %s record is given as rdata (its zone-file form)", TypeName(rrtype))
	}
	rr := r.build(mdns.RR_Header{Name: owner, Rrtype: rrtype, Class: class, Ttl: ttl}, d.Origin)
	if r.err != nil {
		return nil, r.err
	}
	return rr, nil
}

func unknownField(key string, rrtype uint16, fields []string, typed bool) error {
	want := "name, type, class, ttl, rdata"
	if typed {
		want += ", " + strings.Join(fields, ", ")
	}
	return fmt.Errorf("unknown field %s for a %s record (known: %s)", key, TypeName(rrtype), want)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// build makes a record of one of typeFields' types from its fields.
func (r *fieldReader) build(hdr mdns.RR_Header, origin string) mdns.RR {
	str := func(k string) string { s, _ := r.str(k, true); return s }
	switch hdr.Rrtype {
	case mdns.TypeA:
		return &mdns.A{Hdr: hdr, A: r.addr(false)}
	case mdns.TypeAAAA:
		return &mdns.AAAA{Hdr: hdr, AAAA: r.addr(true)}
	case mdns.TypeCNAME:
		return &mdns.CNAME{Hdr: hdr, Target: r.name("target", origin)}
	case mdns.TypeNS:
		return &mdns.NS{Hdr: hdr, Ns: r.name("target", origin)}
	case mdns.TypePTR:
		return &mdns.PTR{Hdr: hdr, Ptr: r.name("target", origin)}
	case mdns.TypeDNAME:
		return &mdns.DNAME{Hdr: hdr, Target: r.name("target", origin)}
	case mdns.TypeMX:
		return &mdns.MX{Hdr: hdr, Preference: uint16(r.num("preference", 65535, -1)), Mx: r.name("exchange", origin)}
	case mdns.TypeTXT:
		return &mdns.TXT{Hdr: hdr, Txt: r.text()}
	case mdns.TypeSPF:
		return &mdns.SPF{Hdr: hdr, Txt: r.text()}
	case mdns.TypeSOA:
		return &mdns.SOA{Hdr: hdr, Ns: r.name("mname", origin), Mbox: r.name("rname", origin),
			Serial: uint32(r.num("serial", 1<<32-1, 1)), Refresh: uint32(r.num("refresh", 1<<32-1, 3600)),
			Retry: uint32(r.num("retry", 1<<32-1, 600)), Expire: uint32(r.num("expire", 1<<32-1, 86400)),
			Minttl: uint32(r.num("minimum", 1<<32-1, 60))}
	case mdns.TypeSRV:
		return &mdns.SRV{Hdr: hdr, Priority: uint16(r.num("priority", 65535, 0)), Weight: uint16(r.num("weight", 65535, 0)),
			Port: uint16(r.num("port", 65535, -1)), Target: r.name("target", origin)}
	case mdns.TypeCAA:
		// miekg unpacks the value as raw bytes but packs it as escaped text
		return &mdns.CAA{Hdr: hdr, Flag: uint8(r.num("flag", 255, 0)), Tag: str("tag"), Value: escapeText(str("value"))}
	case mdns.TypeHINFO:
		return &mdns.HINFO{Hdr: hdr, Cpu: str("cpu"), Os: str("os")}
	}
	r.fail("no fields known for a %s record", TypeName(hdr.Rrtype))
	return nil
}

// text reads a TXT record's text: one string (cut into 255-byte
// character-strings) or a list of character-strings.
func (r *fieldReader) text() []string {
	var parts []string
	switch v := r.t.Get("text").(type) {
	case string:
		for len(v) > 255 {
			parts = append(parts, escapeText(v[:255]))
			v = v[255:]
		}
		parts = append(parts, escapeText(v))
	case *Table:
		for i, item := range v.List {
			s, ok := item.(string)
			if !ok {
				r.fail("field \"text\": item %d: string expected, got %s", i+1, typeOf(item))
				return nil
			}
			if len(s) > 255 {
				r.fail("field \"text\": item %d is %d bytes; a character-string holds at most 255", i+1, len(s))
				return nil
			}
			parts = append(parts, escapeText(s))
		}
	case nil:
		r.fail("field \"text\" missing for a TXT record")
	default:
		r.fail("field \"text\": string or list of strings expected, got %s", typeOf(v))
	}
	return parts
}
