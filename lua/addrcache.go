package lua

import (
	"net/netip"

	glua "github.com/yuin/gopher-lua"
)

// peerCache keeps the Lua values of recent datagram peers: the host string
// and port number recvfrom returns, and the address a sendto to that host
// string means. A UDP server answers the peers it hears from, so recvfrom
// returns the same strings again and again and sendto gets them back:
// without the cache every datagram made a new host string (and boxed it
// and the port) on the way in and parsed it again on the way out.
//
// It is direct-mapped on the port, which both directions know before they
// look: clients' ephemeral ports are consecutive, so up to len(entries)
// clients of one server each keep an entry. The cache is the host's and is
// used under the interpreter lock.
type peerCache struct {
	entries [64]peerEntry
}

type peerEntry struct {
	ap    netip.AddrPort
	host  string      // ap's address as recvfrom writes it
	hostV glua.LValue // host, boxed once; nil in an empty entry
	portV glua.LValue // ap's port, boxed once
}

func (c *peerCache) entry(port uint16) *peerEntry { return &c.entries[int(port)%len(c.entries)] }

// values returns the Lua host and port of ap.
func (c *peerCache) values(ap netip.AddrPort) (host, port glua.LValue) {
	e := c.entry(ap.Port())
	if e.hostV == nil || e.ap != ap {
		e.set(ap, ap.Addr().String())
	}
	return e.hostV, e.portV
}

// lookup returns the address that host and port name, when host is one
// the cache knows.
func (c *peerCache) lookup(host string, port int) (netip.AddrPort, bool) {
	if port < 0 || port > 0xffff {
		return netip.AddrPort{}, false
	}
	// A string recvfrom returned compares equal by its pointer, at once.
	if e := c.entry(uint16(port)); e.hostV != nil && int(e.ap.Port()) == port && e.host == host {
		return e.ap, true
	}
	return netip.AddrPort{}, false
}

// add remembers that host names ap, when host is ap's address written as
// recvfrom would write it.
func (c *peerCache) add(host string, ap netip.AddrPort) {
	if host == ap.Addr().String() {
		c.entry(ap.Port()).set(ap, host)
	}
}

func (e *peerEntry) set(ap netip.AddrPort, host string) {
	e.ap, e.host = ap, host
	e.hostV, e.portV = glua.LString(host), glua.LNumber(ap.Port())
}
