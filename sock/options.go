package sock

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// option is a named socket option. Values are ints; booleans are 0 and 1,
// linger is seconds with -1 for off.
type option struct {
	level, name int
	v6name      int // the IPv6 level's option where it differs (ttl)
	doc         string
	addr        bool // read-only, an address rather than an int (Socket.OriginalDst)
}

var options = map[string]option{
	"reuseaddr":    {level: unix.SOL_SOCKET, name: unix.SO_REUSEADDR, doc: "SO_REUSEADDR: bind a port that has connections in TIME_WAIT"},
	"reuseport":    {level: unix.SOL_SOCKET, name: unix.SO_REUSEPORT, doc: "SO_REUSEPORT: several sockets listen on one port; the kernel spreads connections"},
	"nodelay":      {level: unix.IPPROTO_TCP, name: unix.TCP_NODELAY, doc: "TCP_NODELAY: send small writes at once (no Nagle)"},
	"keepalive":    {level: unix.SOL_SOCKET, name: unix.SO_KEEPALIVE, doc: "SO_KEEPALIVE: probe an idle connection"},
	"broadcast":    {level: unix.SOL_SOCKET, name: unix.SO_BROADCAST, doc: "SO_BROADCAST: allow datagrams to broadcast addresses"},
	"rcvbuf":       {level: unix.SOL_SOCKET, name: unix.SO_RCVBUF, doc: "SO_RCVBUF: receive buffer size in bytes (the kernel doubles it)"},
	"sndbuf":       {level: unix.SOL_SOCKET, name: unix.SO_SNDBUF, doc: "SO_SNDBUF: send buffer size in bytes (the kernel doubles it)"},
	"linger":       {level: unix.SOL_SOCKET, name: unix.SO_LINGER, doc: "SO_LINGER: seconds close waits for unsent data; 0 resets the connection, -1 is off"},
	"ttl":          {level: unix.IPPROTO_IP, name: unix.IP_TTL, v6name: unix.IPV6_UNICAST_HOPS, doc: "IP_TTL / IPV6_UNICAST_HOPS: hop limit of outgoing packets"},
	"original_dst": {addr: true, doc: "SO_ORIGINAL_DST (read-only): the host and port a connection was meant for before NAT redirected it (a transparent proxy's question)"},
}

// OptionIsAddr reports whether the option reads as an address (host,
// port) instead of an int; such options are read-only.
func OptionIsAddr(name string) bool { return options[name].addr }

// OptionNames lists the option names SetOption and Option accept.
func OptionNames() []string {
	names := make([]string, 0, len(options))
	for n := range options {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OptionDoc describes an option in one line.
func OptionDoc(name string) string { return options[name].doc }

func lookupOption(op, name string, k Kind) (level, opt int, err error) {
	o, ok := options[name]
	if !ok {
		return 0, 0, argError(op, "unknown option %q", name)
	}
	if o.addr {
		if op == "setsockopt" {
			return 0, 0, argError(op, "%s is read-only", name)
		}
		return 0, 0, argError(op, "%s is an address, not a number (OriginalDst)", name)
	}
	level, opt = o.level, o.name
	if o.v6name != 0 && k.IPv6() {
		level, opt = unix.IPPROTO_IPV6, o.v6name
	}
	return level, opt, nil
}

// SetOption sets a named option.
func (s *Socket) SetOption(name string, value int) error {
	start := s.table.traceStart()
	level, opt, err := lookupOption("setsockopt", name, s.Kind)
	if err == nil {
		err = s.control("setsockopt", func(fd int) error {
			if opt == unix.SO_LINGER && level == unix.SOL_SOCKET {
				l := &unix.Linger{}
				if value >= 0 {
					l.Onoff, l.Linger = 1, int32(value)
				}
				return unix.SetsockoptLinger(fd, level, opt, l)
			}
			return unix.SetsockoptInt(fd, level, opt, value)
		})
	}
	if !start.IsZero() {
		s.emit(start, Event{Call: "setsockopt", Args: []string{name, strconv.Itoa(value)}}, 0, err)
	}
	return err
}

// Option reads a named option.
func (s *Socket) Option(name string) (int, error) {
	level, opt, err := lookupOption("getsockopt", name, s.Kind)
	if err != nil {
		return 0, err
	}
	var v int
	err = s.control("getsockopt", func(fd int) error {
		if opt == unix.SO_LINGER && level == unix.SOL_SOCKET {
			l, err := unix.GetsockoptLinger(fd, level, opt)
			if err != nil {
				return err
			}
			v = -1
			if l.Onoff != 0 {
				v = int(l.Linger)
			}
			return nil
		}
		var err error
		v, err = unix.GetsockoptInt(fd, level, opt)
		return err
	})
	return v, err
}

// SetOptionBytes sets an option by its level and number, for callers with
// option names of their own (LuaSocket's "tcp-nodelay",
// "ip-add-membership"); value is the option's bytes as the kernel takes
// them (an int in host byte order, a struct linger, an ip_mreq). name
// labels the call in the trace.
func (s *Socket) SetOptionBytes(name string, level, opt int, value []byte) error {
	start := s.table.traceStart()
	err := s.control("setsockopt", func(fd int) error {
		return unix.SetsockoptString(fd, level, opt, string(value))
	})
	if !start.IsZero() {
		s.emit(start, Event{Call: "setsockopt", Args: []string{name, optionBytesString(value)}}, 0, err)
	}
	return err
}

// OptionBytes reads an option by its level and number: at most size bytes
// of its value, as the kernel gives them.
func (s *Socket) OptionBytes(level, opt, size int) ([]byte, error) {
	buf := make([]byte, max(size, 1))
	n := uint32(len(buf))
	err := s.control("getsockopt", func(fd int) error {
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if errno != 0 {
			return errno
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return buf[:min(int(n), len(buf))], nil
}

// optionBytesString shows an option value in a trace: an int-sized value
// as the number, anything else in hex.
func optionBytesString(v []byte) string {
	if len(v) == 4 {
		return strconv.Itoa(int(int32(binary.NativeEndian.Uint32(v))))
	}
	return fmt.Sprintf("%x", v)
}
