package wire

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"sockplay/sock"
)

// flowInfo is what ownership and the call annotations need from a frame:
// its transport, addresses and (for TCP) flags, read by gopacket's
// decoding layers without allocating.
type flowInfo struct {
	ok                 bool
	proto              uint8 // 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6
	src, dst           netip.AddrPort
	syn, ack, fin, rst bool
	payload            int
	seq                uint32
	// icmpError: an ICMP error quoting a datagram; src/dst/proto are the
	// quoted datagram's, which one of our sockets sent.
	icmpError bool
}

// flowDecoder reads flowInfo from frames; one per reader goroutine.
type flowDecoder struct {
	eth     layers.Ethernet
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	udp     layers.UDP
	icmp4   layers.ICMPv4
	icmp6   layers.ICMPv6
	payload gopacket.Payload
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	inner   layers.IPv4
}

func newFlowDecoder() *flowDecoder {
	d := &flowDecoder{parsers: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}}
	for _, first := range []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeIPv4, layers.LayerTypeIPv6} {
		p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.ip4, &d.ip6, &d.tcp, &d.udp, &d.icmp4, &d.icmp6, &d.payload)
		p.IgnoreUnsupported = true
		d.parsers[first] = p
	}
	return d
}

func (d *flowDecoder) flow(link layers.LinkType, data []byte) flowInfo {
	first := layers.LayerTypeEthernet
	if link != layers.LinkTypeEthernet {
		if len(data) == 0 {
			return flowInfo{}
		}
		first = layers.LayerTypeIPv4
		if data[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
	}
	d.decoded = d.decoded[:0]
	func() {
		defer func() { recover() }() // a decoder's panic on bad bytes: use what decoded before it
		d.parsers[first].DecodeLayers(data, &d.decoded)
	}()
	var fi flowInfo
	var src, dst netip.Addr
	ipLen := 0
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			src, _ = netip.AddrFromSlice(d.ip4.SrcIP)
			dst, _ = netip.AddrFromSlice(d.ip4.DstIP)
			fi.proto = uint8(d.ip4.Protocol)
			ipLen = int(d.ip4.Length) - int(d.ip4.IHL)*4
		case layers.LayerTypeIPv6:
			src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			dst, _ = netip.AddrFromSlice(d.ip6.DstIP)
			fi.proto = uint8(d.ip6.NextHeader)
			ipLen = int(d.ip6.Length)
		case layers.LayerTypeTCP:
			fi.ok = true
			fi.src = netip.AddrPortFrom(src.Unmap(), uint16(d.tcp.SrcPort))
			fi.dst = netip.AddrPortFrom(dst.Unmap(), uint16(d.tcp.DstPort))
			fi.syn, fi.ack, fi.fin, fi.rst = d.tcp.SYN, d.tcp.ACK, d.tcp.FIN, d.tcp.RST
			fi.payload = max(ipLen-int(d.tcp.DataOffset)*4, 0)
			fi.seq = d.tcp.Seq
		case layers.LayerTypeUDP:
			fi.ok = true
			fi.src = netip.AddrPortFrom(src.Unmap(), uint16(d.udp.SrcPort))
			fi.dst = netip.AddrPortFrom(dst.Unmap(), uint16(d.udp.DstPort))
			fi.payload = max(int(d.udp.Length)-8, 0)
		case layers.LayerTypeICMPv4:
			fi.ok = true
			fi.src, fi.dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
			if t := d.icmp4.TypeCode.Type(); t == layers.ICMPv4TypeDestinationUnreachable || t == layers.ICMPv4TypeTimeExceeded {
				d.quoted(&fi, d.icmp4.Payload)
			}
			return fi
		case layers.LayerTypeICMPv6:
			fi.ok = true
			fi.src, fi.dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
			return fi
		}
	}
	return fi
}

// quoted reads the datagram an ICMP error quotes: its header and the
// first eight bytes of its transport header, which hold the ports.
func (d *flowDecoder) quoted(fi *flowInfo, b []byte) {
	if decodeOne(&d.inner, b) != nil || len(d.inner.Payload) < 4 {
		return
	}
	p := d.inner.Payload
	src, _ := netip.AddrFromSlice(d.inner.SrcIP)
	dst, _ := netip.AddrFromSlice(d.inner.DstIP)
	fi.icmpError = true
	fi.proto = uint8(d.inner.Protocol)
	fi.src = netip.AddrPortFrom(src, uint16(p[0])<<8|uint16(p[1]))
	fi.dst = netip.AddrPortFrom(dst, uint16(p[2])<<8|uint16(p[3]))
}

// endpoint is one of the process's sockets as a capture sees it.
type endpoint struct {
	fd          int
	owner       string
	proto       uint8
	local, peer netip.AddrPort // peer invalid when not connected
	closed      time.Time      // zero while open
}

type connKey4 struct {
	proto       uint8
	local, peer netip.AddrPort
}

type portKey struct {
	proto uint8
	port  uint16
}

// rescanAfter is how old a scan may be before a packet no socket claims
// makes another.
const rescanAfter = time.Second

// owners maps packets to the sockets of the table that sent or receive
// them, following the table as sockets come, bind, connect and go.
type owners struct {
	table *sock.Table
	netns *sock.Netns // the capture's namespace: only sockets made there are its

	dirty atomic.Bool // an event said addresses may have changed

	mu      sync.Mutex
	conns   map[connKey4]*endpoint
	bound   map[portKey][]*endpoint
	unbound []*sock.Socket // sockets with no port at the last scan
	size    int            // the table's length at the last scan
	scanned time.Time      // when the last scan was

	callsMu sync.Mutex
	calls   map[int]*callRing
	syns    map[synKey]bool
}

type synKey struct {
	src, dst netip.AddrPort
	seq      uint32
}

func newOwners(t *sock.Table, ns *sock.Netns) *owners {
	o := &owners{table: t, netns: ns, calls: map[int]*callRing{}, syns: map[synKey]bool{}}
	o.dirty.Store(true)
	return o
}

func protoOf(k sock.Kind) uint8 {
	if k.Stream() {
		return 6
	}
	return 17
}

// scan rebuilds the index from the table. The caller holds o.mu.
func (o *owners) scan() {
	socks := o.table.Sockets()
	o.size, o.scanned = len(socks), time.Now()
	conns := make(map[connKey4]*endpoint, len(socks))
	bound := make(map[portKey][]*endpoint)
	o.unbound = o.unbound[:0]
	for _, s := range socks {
		if s.Kind == sock.Packet || s.Netns() != o.netns {
			continue
		}
		local, err := s.LocalAddr()
		if err != nil {
			continue
		}
		if local.Port() == 0 {
			o.unbound = append(o.unbound, s)
			continue
		}
		peer, _ := s.PeerAddr()
		o.add(conns, bound, &endpoint{fd: s.FD, owner: s.Owner, proto: protoOf(s.Kind), local: local, peer: peer})
	}
	// Sockets closed since: their last packets may not be read yet. The
	// table moves a socket from one list to the other under one lock, and
	// Sockets was read first, so none falls between.
	for _, cs := range o.table.RecentlyClosed() {
		if cs.Kind == sock.Packet || cs.Netns != o.netns {
			continue
		}
		ep := &endpoint{fd: cs.FD, owner: cs.Owner, proto: protoOf(cs.Kind), local: cs.Local, peer: cs.Peer, closed: cs.Closed}
		if ep.peer.IsValid() && ep.peer.Port() != 0 {
			if k := (connKey4{ep.proto, ep.local, ep.peer}); conns[k] == nil {
				conns[k] = ep
			}
		} else if k := (portKey{ep.proto, ep.local.Port()}); len(bound[k]) == 0 {
			ep.peer = netip.AddrPort{}
			bound[k] = append(bound[k], ep)
		}
	}
	o.conns, o.bound = conns, bound
}

func (o *owners) add(conns map[connKey4]*endpoint, bound map[portKey][]*endpoint, ep *endpoint) {
	if ep.peer.IsValid() && ep.peer.Port() != 0 {
		conns[connKey4{ep.proto, ep.local, ep.peer}] = ep
		return
	}
	ep.peer = netip.AddrPort{}
	k := portKey{ep.proto, ep.local.Port()}
	bound[k] = append(bound[k], ep)
}

// recheckUnbound looks again at the sockets that had no port at the last
// scan: connect and sendto give them one without an event (the event
// comes when the call returns, after its first packet). The caller holds
// o.mu. It reports whether any has one now.
func (o *owners) recheckUnbound() bool {
	found := false
	keep := o.unbound[:0]
	for _, s := range o.unbound {
		local, err := s.LocalAddr()
		if err != nil {
			continue
		}
		if local.Port() == 0 {
			keep = append(keep, s)
			continue
		}
		peer, _ := s.PeerAddr()
		o.add(o.conns, o.bound, &endpoint{fd: s.FD, owner: s.Owner, proto: protoOf(s.Kind), local: local, peer: peer})
		found = true
	}
	o.unbound = keep
	return found
}

// find returns the socket at local talking to remote: a connected one, or
// one bound to local's port (a listener, an unconnected datagram socket),
// which exact reports false for.
func (o *owners) find(proto uint8, local, remote netip.AddrPort) (ep *endpoint, exact bool) {
	if ep := o.conns[connKey4{proto, local, remote}]; ep != nil {
		return ep, true
	}
	for _, ep := range o.bound[portKey{proto, local.Port()}] {
		if a := ep.local.Addr(); a.IsUnspecified() || a == local.Addr() {
			return ep, false
		}
	}
	return nil, false
}

// lookup returns the sockets that sent and that receive a packet, either
// nil when not one of ours.
func (o *owners) lookup(fi *flowInfo) (snd, rcv *endpoint) {
	if !fi.ok || (fi.proto != 6 && fi.proto != 17) {
		return nil, nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conns == nil {
		o.scan()
		o.dirty.Store(false)
	}
	for try := 0; ; try++ {
		var es, er bool
		snd, es = o.find(fi.proto, fi.src, fi.dst)
		rcv, er = o.find(fi.proto, fi.dst, fi.src)
		if try > 0 || (es && er) {
			return snd, rcv
		}
		// A miss, or a match by port only (a listener) where a socket
		// accepted since may be the better one: look at the table again
		// if it changed.
		switch {
		case o.dirty.Swap(false) || o.table.Len() != o.size:
			o.scan()
		case snd == nil && rcv == nil && len(o.unbound) > 0 && o.recheckUnbound():
		case snd == nil && rcv == nil && time.Since(o.scanned) > rescanAfter:
			// Without events (a capture that only writes a file does not
			// listen to calls) a datagram socket that connected elsewhere
			// shows only here; at most once a second for packets of others.
			o.scan()
		default:
			return snd, rcv
		}
	}
}

// call is one socket call that may send packets, with when it ran.
type call struct {
	name       string
	start, end time.Time
}

// callRing keeps an fd's last calls.
type callRing struct {
	calls [8]call
	next  int
}

// hear takes the table's events: address changes mark the index stale,
// and the calls that send are kept for the annotations.
func (o *owners) hear(ev sock.Event) {
	switch ev.Call {
	case "socket", "accept", "bind", "listen", "connect", "sendto":
		o.dirty.Store(true)
	case "write":
		if !ev.Kind.Stream() {
			o.dirty.Store(true) // a datagram socket's first write binds it
		}
	case "close":
		o.dirty.Store(true)
	}
	switch ev.Call {
	case "connect", "write", "sendto", "shutdown", "close":
	default:
		return
	}
	if ev.FD < 0 {
		return
	}
	o.callsMu.Lock()
	r := o.calls[ev.FD]
	if r == nil {
		if len(o.calls) > 4096 {
			clear(o.calls)
		}
		r = &callRing{}
		o.calls[ev.FD] = r
	}
	r.calls[r.next] = call{name: ev.Call, start: ev.Time, end: ev.Time.Add(ev.Dur)}
	r.next = (r.next + 1) % len(r.calls)
	o.callsMu.Unlock()
}

// callAt is the call on fd whose run covers t, "" when none.
func (o *owners) callAt(fd int, t time.Time) string {
	o.callsMu.Lock()
	defer o.callsMu.Unlock()
	r := o.calls[fd]
	if r == nil {
		return ""
	}
	for _, c := range r.calls {
		if c.name != "" && !t.Before(c.start) && !t.After(c.end) {
			return c.name
		}
	}
	return ""
}

// annotate says which call caused p, sent by one of our sockets:
// connect the SYN, write or sendto the data, shutdown or close the FIN (a
// close with unread data the RST); what no call explains (ACKs, the
// SYN-ACK, retransmissions, data a write left queued) is the kernel's.
func (o *owners) annotate(p *Packet, fi *flowInfo, snd *endpoint) {
	if snd == nil || !fi.ok {
		return
	}
	during := o.callAt(snd.fd, p.Time)
	if fi.proto == 17 {
		if during == "write" || during == "sendto" {
			p.Call = during
		}
		return
	}
	switch {
	case fi.syn && !fi.ack:
		o.callsMu.Lock()
		k := synKey{fi.src, fi.dst, fi.seq}
		again := o.syns[k]
		if len(o.syns) > 4096 {
			clear(o.syns)
		}
		o.syns[k] = true
		o.callsMu.Unlock()
		switch {
		case during == "connect":
			p.Call = "connect"
		case again:
			p.Call = "kernel" // the SYN sent again
		default:
			p.Call = "connect" // a connect still waiting for its answer
		}
	case fi.rst:
		if during == "close" || during == "shutdown" {
			p.Call = during
		} else {
			p.Call = "kernel"
		}
	case fi.fin:
		if during == "close" || during == "shutdown" {
			p.Call = during
		} else {
			p.Call = "kernel"
		}
	case fi.payload > 0 && !fi.syn:
		if during == "write" || during == "sendto" {
			p.Call = during
		} else {
			p.Call = "kernel"
		}
	default:
		p.Call = "kernel"
	}
}
