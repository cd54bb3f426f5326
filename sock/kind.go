package sock

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind is a socket's family and type together, the way users name them.
type Kind uint8

const (
	TCP Kind = iota + 1
	UDP
	TCP6
	UDP6
	// Packet is an AF_PACKET socket: a packet capture on one interface.
	// Package wire opens it and hands it to the table (Table.Adopt); Open
	// does not make one.
	Packet
)

var kindNames = [...]string{TCP: "tcp", UDP: "udp", TCP6: "tcp6", UDP6: "udp6", Packet: "packet"}

func (k Kind) String() string {
	if k >= TCP && k <= Packet {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind accepts "tcp", "udp", "tcp6" and "udp6" in any case.
func ParseKind(s string) (Kind, error) {
	for k := TCP; k <= UDP6; k++ {
		if strings.EqualFold(s, kindNames[k]) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown socket kind %q: want tcp, udp, tcp6 or udp6", s)
}

// Stream reports whether the kind is a byte stream (TCP) rather than datagrams.
func (k Kind) Stream() bool { return k == TCP || k == TCP6 }

// IPv6 reports whether the kind uses the IPv6 family.
func (k Kind) IPv6() bool { return k == TCP6 || k == UDP6 }

func (k Kind) family() int {
	if k.IPv6() {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func (k Kind) sotype() int {
	if k.Stream() {
		return unix.SOCK_STREAM
	}
	return unix.SOCK_DGRAM
}

// Label is the short upper-case tag used in traces: TCP, UDP, TCPv6, UDPv6.
func (k Kind) Label() string {
	switch k {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case TCP6:
		return "TCPv6"
	case UDP6:
		return "UDPv6"
	case Packet:
		return "PACKET"
	}
	return "?"
}

// ParseAddr checks a numeric host and a port and joins them. Names are not
// resolved here: resolution belongs to the caller (getaddrinfo's job).
func ParseAddr(host string, port int) (netip.AddrPort, error) {
	if port < 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("port %d out of range 0-65535", port)
	}
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if h == "" || h == "*" {
		h = "0.0.0.0"
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q does not parse as IPv4 or IPv6", host)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// familyAddr is ap's address as a socket of kind k takes it: an IPv4
// address on an IPv6 socket becomes v4-mapped (::ffff:a.b.c.d), as the
// kernel expects, and an IPv6 address on an IPv4 socket is an error.
func familyAddr(k Kind, ap netip.AddrPort) (netip.Addr, error) {
	a := ap.Addr()
	if k.IPv6() {
		if a.Is4() {
			a = netip.AddrFrom16(a.As16())
		}
		return a, nil
	}
	a = a.Unmap()
	if !a.Is4() {
		return netip.Addr{}, &Error{Code: "EAFNOSUPPORT", Msg: fmt.Sprintf("%s is an IPv6 address; use a tcp6 or udp6 socket", ap.Addr()), Errno: unix.EAFNOSUPPORT}
	}
	return a, nil
}

// toSockaddr is familyAddr in x/sys's form, for the calls off the hot
// paths.
func toSockaddr(k Kind, ap netip.AddrPort) (unix.Sockaddr, error) {
	a, err := familyAddr(k, ap)
	if err != nil {
		return nil, err
	}
	if k.IPv6() {
		sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
		if z := a.Zone(); z != "" {
			if id, err := zoneID(z); err == nil {
				sa.ZoneId = id
			}
		}
		return sa, nil
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, nil
}

func zoneID(zone string) (uint32, error) {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, err
	}
	return uint32(ifi.Index), nil
}
