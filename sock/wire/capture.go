package wire

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/gopacket/gopacket/layers"

	"sockplay/sock"
)

// Options say what a capture listens to and where its packets go.
type Options struct {
	// Iface is the interface to capture on: "lo" when empty.
	Iface string
	// Netns captures on an interface of that namespace; when nil, of the
	// namespace Open's context names (sock.NetnsOf), else this process's.
	Netns *sock.Netns
	// Filter is a tcpdump filter (see CompileFilter), run in the kernel.
	// Empty means the packets of this process's own sockets only: every
	// IP packet reaches the capture, which keeps those whose addresses
	// belong to a socket in the table.
	Filter string
	// Snaplen is how many bytes of each frame are kept: DefaultSnaplen
	// when 0.
	Snaplen int
	// Buffer is the size of the ring the kernel fills, in bytes (default
	// 16 MiB): what the reader falls behind by beyond it is dropped and
	// counted.
	Buffer int

	// Pcap, when set, gets every packet kept, as a pcap file, at once.
	Pcap io.Writer
	// OnPacket gets every packet kept, in time order and annotated with
	// the call that caused it, Hold after it was captured. It runs on
	// the capture's own goroutine.
	OnPacket func(Packet)
	// OnText gets the lines given to Interleave, in time order among the
	// packets, on the same goroutine as OnPacket.
	OnText func(string)
	// Queue is how many packets wait for Next (0: Next is not used).
	// When the reader falls behind, the newest are dropped and counted.
	Queue int
	// Keep is how many recent packets Recent and Connection remember
	// (DefaultKeep when 0, none when negative).
	Keep int
}

// DefaultKeep is how many recent packets a capture remembers.
const DefaultKeep = 4096

// Stats are a capture's counters.
type Stats struct {
	Received uint64 // frames the kernel passed to the capture (after the filter)
	Dropped  uint64 // frames the kernel dropped: the capture fell behind
	Kept     uint64 // packets kept (without a filter: those of our sockets)
	Missed   uint64 // packets dropped because Next's queue was full
}

// ErrStopped is what Next returns once a capture is stopped and its queue
// is empty.
var ErrStopped = errors.New("capture stopped")

// Capture is a packet capture: an AF_PACKET socket on one interface, an
// fd in the descriptor table like any socket (kind packet), read through
// Go's poller by a goroutine of its own.
type Capture struct {
	opts     Options
	s        *sock.Socket
	iface    string
	link     layers.LinkType
	own      bool // no filter: keep this process's packets only
	owners   *owners
	unlisten func()

	pcapMu sync.Mutex
	pcap   *PcapWriter

	seq   *sequencer
	queue chan Packet

	recentMu sync.Mutex
	recent   []Packet // a ring: count packets from head on
	head     int
	count    int
	bytes    int // of the packets in it

	kernel        kernelStats
	kept, missed  atomic.Uint64
	readerDone    chan struct{}
	readerErr     error
	stopOnce      sync.Once
	stopErr       error
	cancelReader  context.CancelFunc
	annotateCalls bool
}

// FD is the capture's descriptor.
func (c *Capture) FD() int { return c.s.FD }

// Iface is the interface the capture listens on.
func (c *Capture) Iface() string { return c.iface }

// Filter is the filter as given ("" for this process's own packets).
func (c *Capture) Filter() string { return c.opts.Filter }

// LinkType says how the capture's frames begin.
func (c *Capture) LinkType() layers.LinkType { return c.link }

// Stats returns the capture's counters so far.
func (c *Capture) Stats() Stats {
	r, d := c.kernel.read(c.s)
	return Stats{Received: r, Dropped: d, Kept: c.kept.Load(), Missed: c.missed.Load()}
}

// Interleave adds a line of text (a trace line) to the packets shown
// through OnText, placed by its time among them. It reports false when
// the capture has stopped (or shows nothing): the caller prints it.
func (c *Capture) Interleave(ev sock.Event, text string) bool {
	return c.seq != nil && c.seq.push(seqItem{at: ev.Time, text: text})
}

// Next returns the next packet kept, waiting for one. Once the capture is
// stopped and nothing is left it returns ErrStopped.
func (c *Capture) Next(ctx context.Context) (Packet, error) {
	if c.queue == nil {
		return Packet{}, errors.New("capture: opened without a queue for Next")
	}
	select {
	case p, ok := <-c.queue:
		if !ok {
			return Packet{}, ErrStopped
		}
		return p, nil
	case <-ctx.Done():
		return Packet{}, ctx.Err()
	}
}

// Recent returns the packets the capture remembers, oldest first.
func (c *Capture) Recent() []Packet {
	c.recentMu.Lock()
	defer c.recentMu.Unlock()
	out := make([]Packet, 0, c.count)
	for i := 0; i < c.count; i++ {
		out = append(out, c.recent[(c.head+i)%len(c.recent)])
	}
	return out
}

// Connection returns the remembered packets of the connection that fd
// last had (its TCP or UDP four-tuple, both directions), oldest first;
// nil when none of them belongs to fd.
func (c *Capture) Connection(fd int) []Packet {
	return ConnectionOf(c.Recent(), fd)
}

// ConnectionOf picks from pkts those of the connection fd last had.
func ConnectionOf(pkts []Packet, fd int) []Packet {
	d := newFlowDecoder()
	var a, b netip.AddrPort
	var proto uint8
	for i := len(pkts) - 1; i >= 0; i-- {
		p := pkts[i]
		if p.FD != fd && p.PeerFD != fd {
			continue
		}
		if fi := d.flow(p.Link, p.Data); fi.ok && !fi.icmpError && (fi.proto == 6 || fi.proto == 17) {
			a, b, proto = fi.src, fi.dst, fi.proto
			break
		}
	}
	if proto == 0 {
		return nil
	}
	var out []Packet
	for _, p := range pkts {
		fi := d.flow(p.Link, p.Data)
		if fi.ok && fi.proto == proto && !fi.icmpError && ((fi.src == a && fi.dst == b) || (fi.src == b && fi.dst == a)) {
			out = append(out, p)
		}
	}
	return out
}

// maxRecentBytes bounds the bytes the recent packets hold: loopback's
// frames reach 64 KiB, and 4096 of them would be a quarter of a GiB.
const maxRecentBytes = 32 << 20

// remember adds p to the recent packets, forgetting the oldest when the
// ring is full or holds too many bytes.
func (c *Capture) remember(p Packet) {
	if c.recent == nil {
		return
	}
	c.recentMu.Lock()
	for c.count > 0 && (c.count == len(c.recent) || c.bytes+len(p.Data) > maxRecentBytes) {
		c.bytes -= len(c.recent[c.head].Data)
		c.recent[c.head] = Packet{}
		c.head = (c.head + 1) % len(c.recent)
		c.count--
	}
	c.recent[(c.head+c.count)%len(c.recent)] = p
	c.count++
	c.bytes += len(p.Data)
	c.recentMu.Unlock()
}

// release is where a packet (or a line) goes once its time has come.
func (c *Capture) release(it seqItem) {
	if it.pkt == nil {
		if c.opts.OnText != nil {
			c.opts.OnText(it.text)
		}
		return
	}
	p := *it.pkt
	if c.annotateCalls {
		c.owners.annotate(&p, &it.fi, it.snd)
	}
	c.remember(p)
	if c.opts.OnPacket != nil {
		c.opts.OnPacket(p)
	}
	if c.queue != nil {
		select {
		case c.queue <- p:
		default:
			c.missed.Add(1)
		}
	}
}

// keep takes one frame the kernel passed: ownership, the pcap file, and
// the way to the consumers. data is only valid during the call.
func (c *Capture) keep(p Packet, fi *flowInfo, snd, rcv *endpoint) {
	c.kept.Add(1)
	if c.pcap != nil {
		c.pcapMu.Lock()
		c.pcap.Write(p)
		c.pcapMu.Unlock()
	}
	if c.seq != nil {
		c.sequence(p, fi, snd, rcv)
	}
}

// sequence copies p out of the ring and hands it to the sequencer, with the
// sockets it belongs to. (Apart from keep: p escapes here, and a
// capture that only writes a file should not pay for that.)
func (c *Capture) sequence(p Packet, fi *flowInfo, snd, rcv *endpoint) {
	p.Data = append([]byte(nil), p.Data...)
	p.FD, p.PeerFD = -1, -1
	switch {
	case snd != nil:
		p.FD, p.Owner = snd.fd, snd.owner
		if rcv != nil {
			p.PeerFD, p.PeerOwner = rcv.fd, rcv.owner
		}
	case rcv != nil:
		p.FD, p.Owner = rcv.fd, rcv.owner
	}
	c.seq.push(seqItem{at: p.Time, pkt: &p, fi: *fi, snd: snd})
}

// Stop ends the capture: it reads what the kernel still holds, shows
// every packet waiting, flushes the pcap file and closes the fd. It is
// safe to call more than once; Close is the same.
func (c *Capture) Stop() error {
	c.stopOnce.Do(func() {
		c.cancelReader()
		<-c.readerDone
		if c.unlisten != nil {
			c.unlisten()
		}
		if c.seq != nil {
			c.seq.stop()
		}
		if c.queue != nil {
			close(c.queue)
		}
		if c.pcap != nil {
			c.pcapMu.Lock()
			c.stopErr = c.pcap.Flush()
			c.pcapMu.Unlock()
		}
		c.kernel.read(c.s) // the last counts, before the fd goes
		if err := c.s.Close(); err != nil && c.stopErr == nil && sock.Code(err) != "EBADF" {
			c.stopErr = err
		}
	})
	return c.stopErr
}

// Close is Stop.
func (c *Capture) Close() error { return c.Stop() }

// Done is closed when the capture's reader has ended: Stop was called, or
// its fd was closed from elsewhere (fds closed at the end of a script).
func (c *Capture) Done() <-chan struct{} { return c.readerDone }

// Err is why the reader ended, when not by Stop.
func (c *Capture) Err() error {
	select {
	case <-c.readerDone:
		return c.readerErr
	default:
		return nil
	}
}

// kernelStats adds up PACKET_STATISTICS, which the kernel resets on
// every read.
type kernelStats struct {
	mu                sync.Mutex
	received, dropped uint64
}

// captureInfo is what the descriptor table shows for the capture.
func (c *Capture) captureInfo() sock.CaptureInfo {
	r, d := c.kernel.read(c.s)
	iface := c.iface
	if c.opts.Netns != nil {
		iface += " (netns)"
	}
	return sock.CaptureInfo{Iface: iface, Filter: c.opts.Filter, Received: r, Dropped: d}
}
