package dns

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// The options tables of a query and of a server, as a script writes them.
// A mistake in one is the script's: the error says which option and why.

// QueryOptions say where a question goes and how: dig's @server, -p, +tcp,
// +time, +bufsize, +dnssec, +norec and -c.
type QueryOptions struct {
	Question Question      // its options; Name and Type are the caller's
	Host     string        // the server: an address or a name; "": resolv.conf's
	Port     int           // 0: the server's own, or 53
	TCP      bool          // ask over TCP from the start
	Timeout  time.Duration // per server
}

// optionReader reads one options table, keeping the first error.
type optionReader struct {
	t   *Table
	key string
	err error
}

func (r *optionReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("option %q: "+format, append([]any{r.key}, a...)...)
	}
}

func (r *optionReader) bad(want string) {
	r.fail("%s expected, got %s", want, typeOf(r.t.Fields[r.key]))
}

func (r *optionReader) boolean() bool {
	b, ok := r.t.Fields[r.key].(bool)
	if !ok {
		r.bad("boolean")
	}
	return b
}

func (r *optionReader) str(want string) string {
	s, ok := r.t.Fields[r.key].(string)
	if !ok {
		r.bad(want)
	}
	return s
}

// whole reads a whole number in lo..hi.
func (r *optionReader) whole(want string, lo, hi float64) int {
	n, ok := number(r.t.Fields[r.key])
	if !ok || n < lo || n > hi || n != float64(int(n)) {
		r.bad(want)
	}
	return int(n)
}

// each calls read for every option in name order, and names the unknown
// ones.
func (r *optionReader) each(known string, read func(key string) bool) error {
	if odd := r.t.otherKeys(); len(odd) > 0 {
		return fmt.Errorf("unknown option %s (known: %s)", odd[0], known)
	}
	for _, k := range r.t.fieldNames() {
		r.key = k
		if !read(k) {
			return fmt.Errorf("unknown option %q (known: %s)", k, known)
		}
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// ParseQueryOptions reads {server=, port=, tcp=, timeout=, edns=, dnssec=,
// rd=, class=}; nil gives the defaults.
func ParseQueryOptions(t *Table) (QueryOptions, error) {
	o := QueryOptions{Timeout: DefaultTimeout, Question: Question{RD: true}}
	if t == nil {
		return o, nil
	}
	serverPort := 0
	r := &optionReader{t: t}
	err := r.each("server, port, tcp, timeout, edns, dnssec, rd, class", func(key string) bool {
		v := t.Fields[key]
		switch key {
		case "server":
			if s := r.str("host or host:port"); r.err == nil {
				var err error
				if o.Host, serverPort, err = ParseServer(s); err != nil {
					r.fail("%v", err)
				}
			}
		case "port":
			o.Port = r.whole("port 1-65535", 1, 65535)
		case "tcp":
			o.TCP = r.boolean()
		case "timeout":
			if n, ok := number(v); !ok || n <= 0 {
				r.bad("positive number of seconds")
			} else {
				o.Timeout = time.Duration(n * float64(time.Second))
			}
		case "edns":
			if b, ok := v.(bool); ok {
				o.Question.EDNS = 0
				if b {
					o.Question.EDNS = 1232
				}
			} else if n, ok := number(v); ok {
				if n < 512 || n > 65535 {
					r.fail("UDP size %v out of range 512-65535", n)
				}
				o.Question.EDNS = int(n)
			} else {
				r.bad("UDP size or boolean")
			}
		case "dnssec":
			o.Question.DNSSEC = r.boolean()
		case "rd":
			o.Question.RD = r.boolean()
		case "class":
			if s := r.str("class name"); r.err == nil {
				var err error
				if o.Question.Class, err = ParseClass(s); err != nil {
					r.fail("%v", err)
				}
			}
		default:
			return false
		}
		return true
	})
	if serverPort != 0 { // host:port wins over port
		o.Port = serverPort
	}
	return o, err
}

// ServeOptions say where a server listens and what it answers from.
type ServeOptions struct {
	Host     string // default 127.0.0.1
	Port     int    // default 0: any free port
	Zone     *Zone  // a zone given as a table
	ZoneFile string // a zone given as a file, for ZoneFromFile
	Origin   string
	TTL      uint32 // the records' default TTL
	Log      bool   // a line per question
}

// ParseServeOptions reads {addr= | host=, port=, zone=, origin=, ttl=,
// log=}. A handler, which only the binding can read, is not among them:
// hasHandler says whether there is one.
func ParseServeOptions(t *Table, hasHandler bool) (ServeOptions, error) {
	o := ServeOptions{Host: "127.0.0.1", TTL: DefaultTTL}
	var zone any
	var addrSet, hostSet bool
	r := &optionReader{t: t}
	err := r.each("addr, host, port, zone, origin, ttl, handler, log", func(key string) bool {
		v := t.Fields[key]
		switch key {
		case "addr":
			s := r.str(`"host:port"`)
			host, port, err := net.SplitHostPort(s)
			if err != nil {
				host, port = s, "53"
			}
			if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
				r.fail("bad port in %q", s)
			} else {
				o.Host, o.Port, addrSet = host, p, true
			}
		case "host":
			o.Host, hostSet = r.str("host"), true
		case "port":
			o.Port, hostSet = r.whole("port 0-65535", 0, 65535), true
		case "zone":
			switch v.(type) {
			case *Table, string:
				zone = v
			default:
				r.bad("zone table or zone file name")
			}
		case "origin":
			if o.Origin = r.str("domain name"); r.err == nil {
				if err := ValidName(o.Origin); err != nil {
					r.fail("%v", err)
				}
			}
		case "ttl":
			o.TTL = uint32(r.whole("TTL in seconds", 0, 2147483647))
		case "log":
			o.Log = r.boolean()
		default:
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return o, err
	case addrSet && hostSet:
		return o, fmt.Errorf("give addr or host and port, not both")
	case zone == nil && !hasHandler:
		return o, fmt.Errorf("a zone or a handler is needed")
	}
	switch z := zone.(type) {
	case string:
		o.ZoneFile = z
	case *Table:
		if o.Zone, err = ZoneFromTable(z, o.Origin, o.TTL); err != nil {
			return o, fmt.Errorf("zone: %v", err)
		}
	}
	return o, nil
}
