//go:build linux

package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"sockplay/sock"
)

const ethPAll = 0x0003 // ETH_P_ALL

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// DefaultBuffer is the size of a capture's ring, shared with the kernel.
const DefaultBuffer = 16 << 20

// Open starts a capture on t's behalf: the socket is an fd in t (kind
// packet, owned by ctx's owner, in ctx's namespace unless opts names
// one), and without a filter the packets kept are those of t's sockets
// in that namespace. Capturing needs CAP_NET_RAW.
func Open(ctx context.Context, t *sock.Table, opts Options) (*Capture, error) {
	if opts.Netns == nil {
		opts.Netns = sock.NetnsOf(ctx) // a lab host's task captures in its host
	}
	if opts.Iface == "" {
		opts.Iface = "lo"
	}
	if opts.Snaplen <= 0 {
		opts.Snaplen = DefaultSnaplen
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	// Parse before anything is opened: a bad filter is the caller's mistake.
	expr := opts.Filter
	own := strings.TrimSpace(expr) == ""
	if own {
		expr = "ip or ip6"
	}
	tree, err := parseFilter(expr)
	if err != nil {
		return nil, &sock.Error{Op: "capture", Code: "EINVAL", Msg: err.Error(), Errno: unix.EINVAL}
	}

	// The socket listens to no protocol until its filter is on and it is
	// bound to the interface: nothing unfiltered slips in.
	fd := -1
	open := func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		return err
	}
	if opts.Netns != nil {
		err = opts.Netns.Do(open)
	} else {
		err = open()
	}
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, &sock.Error{Op: "capture", Code: "EPERM", Msg: "capturing packets needs CAP_NET_RAW (run sockplay as root)", Errno: unix.EPERM}
		}
		return nil, wrapErr(err)
	}
	ok := false
	defer func() {
		if !ok && fd >= 0 {
			unix.Close(fd)
		}
	}()
	ifindex, hatype, err := ifaceInfo(fd, opts.Iface)
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil, &sock.Error{Op: "capture", Code: "ENODEV", Msg: fmt.Sprintf("no interface named %q (there are: %s)", opts.Iface, ifaceNames(opts.Netns)), Errno: unix.ENODEV}
		}
		return nil, wrapErr(err)
	}
	var link layers.LinkType
	switch hatype {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		link = layers.LinkTypeEthernet
	case unix.ARPHRD_NONE, unix.ARPHRD_PPP, unix.ARPHRD_TUNNEL, unix.ARPHRD_TUNNEL6, unix.ARPHRD_SIT, unix.ARPHRD_IPGRE:
		link = layers.LinkTypeRaw // the IP header first
	default:
		return nil, &sock.Error{Op: "capture", Code: "EPROTONOSUPPORT", Msg: fmt.Sprintf("interface %s has link type %d, which sockplay does not decode", opts.Iface, hatype), Errno: unix.EPROTONOSUPPORT}
	}
	prog, err := assemble(tree, link, opts.Snaplen, hatype == unix.ARPHRD_LOOPBACK)
	if err != nil {
		return nil, &sock.Error{Op: "capture", Code: "EINVAL", Msg: err.Error(), Errno: unix.EINVAL}
	}
	if err := attachFilter(fd, prog); err != nil {
		return nil, wrapErr(err)
	}
	if hatype == unix.ARPHRD_LOOPBACK {
		// Loopback shows each frame twice, going out and coming in; the
		// filter drops the first copy, but the kernel clones every frame
		// to hand it over. Not asking for outgoing copies at all saves the
		// clone (Linux 4.20 and later; older kernels leave it to the filter).
		unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	}
	rg, err := newRing(fd, opts.Buffer)
	if err != nil {
		return nil, wrapErr(err)
	}
	defer func() {
		if !ok {
			rg.close()
		}
	}()
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: ifindex}); err != nil {
		return nil, wrapErr(err)
	}
	args := []string{opts.Iface}
	if opts.Filter != "" {
		args = append(args, fmt.Sprintf("%q", opts.Filter))
	}
	if opts.Netns != nil {
		ctx = sock.WithNetns(ctx, opts.Netns)
	}
	s, err := t.Adopt(ctx, fd, sock.Packet, args...)
	if err != nil {
		return nil, err
	}
	fd = -1 // the table owns it now

	c := &Capture{opts: opts, s: s, iface: opts.Iface, link: link, own: own, readerDone: make(chan struct{})}
	c.owners = newOwners(t, opts.Netns)
	if opts.Pcap != nil {
		if c.pcap, err = NewPcapWriter(opts.Pcap, link, opts.Snaplen); err != nil {
			s.Close()
			rg.close()
			ok = true // s.Close closed the fd
			return nil, wrapErr(err)
		}
	}
	ok = true
	keep := opts.Keep
	if keep == 0 {
		keep = DefaultKeep
	}
	if keep > 0 {
		c.recent = make([]Packet, keep)
	}
	if opts.Queue > 0 {
		c.queue = make(chan Packet, opts.Queue)
	}
	// Calls are followed when someone sees the packets one by one: a
	// capture that only writes a pcap file costs the calls nothing (which
	// sockets are ours the table says without them).
	consumers := opts.OnPacket != nil || opts.Queue > 0 || keep > 0
	c.annotateCalls = consumers
	if consumers {
		c.unlisten = t.Listen(c.owners.hear, false)
	}
	if consumers || opts.OnText != nil {
		c.seq = newSequencer(c.release)
	}
	s.SetCaptureInfo(c.captureInfo)
	rctx, cancel := context.WithCancel(context.Background())
	c.cancelReader = cancel
	go c.read(rctx, rg)
	return c, nil
}

func wrapErr(err error) error {
	var se *sock.Error
	if errors.As(err, &se) {
		return err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return &sock.Error{Op: "capture", Code: unix.ErrnoName(errno), Msg: errno.Error(), Errno: errno}
	}
	return &sock.Error{Op: "capture", Code: "EIO", Msg: err.Error()}
}

// ifaceInfo asks the kernel (in fd's namespace) for an interface's index
// and hardware type.
func ifaceInfo(fd int, name string) (int, uint16, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, 0, unix.ENODEV // a name too long is no interface either
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, 0, err
	}
	index := int(ifr.Uint32())
	hw, _ := unix.NewIfreq(name)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, hw); err != nil {
		return 0, 0, err
	}
	// struct ifreq's union holds a sockaddr: its family is the ARPHRD type.
	return index, hw.Uint16(), nil
}

// ifaceNames lists the interfaces there are, for an error message.
func ifaceNames(ns *sock.Netns) string {
	var names []string
	list := func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	}
	if ns != nil {
		ns.Do(list)
	} else {
		list()
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func attachFilter(fd int, prog []bpf.Instruction) error {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return err
	}
	f := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		f[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}

// read adds PACKET_STATISTICS to the totals (the kernel resets them on
// every read) and returns the totals.
func (k *kernelStats) read(s *sock.Socket) (uint64, uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s.Control("getsockopt", func(fd int) error {
		st, err := unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err == nil {
			// tp_packets counts the dropped ones too.
			k.received += uint64(st.Packets)
			k.dropped += uint64(st.Drops)
		}
		return nil
	})
	return k.received, k.dropped
}

// read is the capture's goroutine: it waits in the poller for the ring's
// blocks and takes each as it comes, until Stop (which takes what is left)
// or until the fd is closed from elsewhere. It owns the ring's memory.
func (c *Capture) read(ctx context.Context, rg *ring) {
	defer close(c.readerDone)
	defer rg.close()
	d := newFlowDecoder()
	frame := func(data []byte, wire int, ts time.Time, pkttype uint8) {
		c.frame(d, data, wire, ts, pkttype)
	}
	err := c.s.Await(ctx, "recvfrom", false, func(int) bool {
		rg.take(frame)
		return false
	})
	if ctx.Err() == nil {
		c.readerErr = err
		return
	}
	// Stopping: the kernel hands over a block that is not full after
	// ringTimeout; on loopback a segment is queued during the send that
	// caused it, so what the script sent is in the ring by then.
	for quiet := 0; quiet < 2; {
		time.Sleep((ringTimeout + 2) * time.Millisecond) // bounded: two quiet rounds end it
		if c.s.Closed() {
			return
		}
		if rg.take(frame) {
			quiet = 0
		} else {
			quiet++
		}
	}
}

// frame takes one frame read from the socket.
func (c *Capture) frame(d *flowDecoder, data []byte, wire int, ts time.Time, pkttype uint8) {
	fi := d.flow(c.link, data)
	snd, rcv := c.owners.lookup(&fi)
	if fi.icmpError {
		// An error about a datagram one of our sockets sent (fi holds the
		// quoted datagram's addresses): it belongs to that socket, as the
		// receiver.
		snd, rcv = nil, snd
	}
	if c.own && snd == nil && rcv == nil {
		return
	}
	c.keep(Packet{Time: ts, Link: c.link, Data: data, WireLen: wire, Iface: c.iface, Out: pkttype == unix.PACKET_OUTGOING}, &fi, snd, rcv)
}
