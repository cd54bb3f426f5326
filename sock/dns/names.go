package dns

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// Record types callers name without importing the wire-format package.
const (
	TypeA    = mdns.TypeA
	TypeAAAA = mdns.TypeAAAA
	TypePTR  = mdns.TypePTR
	TypeAXFR = mdns.TypeAXFR
	TypeIXFR = mdns.TypeIXFR
	ClassIN  = mdns.ClassINET
)

// ValidName checks a domain name in presentation form: labels of at most
// 63 bytes, at most 255 in all, no empty label, white space only escaped.
func ValidName(name string) error {
	if name == "" {
		return errors.New("empty domain name")
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++ // an escaped character (\ , \.) is part of its label
		case ' ', '\t', '\r', '\n':
			return fmt.Errorf("malformed domain name %q (white space must be escaped)", name)
		}
	}
	if _, ok := mdns.IsDomainName(name); !ok {
		return fmt.Errorf("malformed domain name %q (empty label, label over 63 bytes or name over 255)", name)
	}
	return nil
}

// ParseType accepts a type's name in any case ("mx") or TYPEnnn.
func ParseType(s string) (uint16, error) {
	u := strings.ToUpper(s)
	if t, ok := mdns.StringToType[u]; ok {
		return t, nil
	}
	if rest, ok := strings.CutPrefix(u, "TYPE"); ok {
		if n, err := strconv.ParseUint(rest, 10, 16); err == nil && n > 0 {
			return uint16(n), nil
		}
	}
	return 0, fmt.Errorf("unknown record type %q (A, AAAA, CNAME, MX, NS, TXT, SOA, PTR, SRV, CAA, ANY ...)", s)
}

// TypeNumber checks a type given as a number.
func TypeNumber(n float64) (uint16, error) {
	if n >= 1 && n <= 65535 && n == float64(int(n)) {
		return uint16(n), nil
	}
	return 0, fmt.Errorf("record type %v out of range 1-65535", n)
}

// TypeName is a type's name: "MX", or "TYPE65400" for one without a name.
func TypeName(t uint16) string {
	if s, ok := mdns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// ParseClass accepts IN, CH, HS, NONE or ANY in any case.
func ParseClass(s string) (uint16, error) {
	if c, ok := mdns.StringToClass[strings.ToUpper(s)]; ok {
		return c, nil
	}
	return 0, fmt.Errorf("unknown class %q (IN, CH, HS, ANY)", s)
}

func className(c uint16) string {
	if s, ok := mdns.ClassToString[c]; ok {
		return s
	}
	return "CLASS" + strconv.Itoa(int(c))
}

func rcodeName(r int) string {
	if s, ok := mdns.RcodeToString[r]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(r)
}

func opcodeName(o int) string {
	if s, ok := mdns.OpcodeToString[o]; ok {
		return s
	}
	return "OPCODE" + strconv.Itoa(o)
}

// parseRcode reads a status given by name (NXDOMAIN) or number.
func parseRcode(v any) (int, error) {
	switch v := v.(type) {
	case string:
		if r, ok := mdns.StringToRcode[strings.ToUpper(v)]; ok {
			return r, nil
		}
		return 0, fmt.Errorf("unknown rcode %q (NOERROR, NXDOMAIN, SERVFAIL, REFUSED ...)", v)
	}
	if n, ok := number(v); ok {
		if n >= 0 && n <= 15 && n == float64(int(n)) {
			return int(n), nil
		}
		return 0, fmt.Errorf("%v out of range 0-15", n)
	}
	return 0, fmt.Errorf("name expected, got %s", typeOf(v))
}

// ReverseName is the in-addr.arpa or ip6.arpa name of an address.
func ReverseName(addr string) (string, error) { return mdns.ReverseAddr(addr) }

// Fqdn makes a name absolute.
func Fqdn(name string) string { return mdns.Fqdn(name) }
