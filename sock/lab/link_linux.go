//go:build linux

package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// Link joins two hosts: a TAP device at each end, and sockplay moving the
// frames between them, shaped per direction.
type Link struct {
	ID   int
	A, B *Iface

	up    atomic.Bool
	paths [2]*path // 0: A to B, 1: B to A
	rates [2]uint64
	mu    sync.Mutex // orders shape changes
	wg    sync.WaitGroup
}

// LinkOptions are a link's addresses; both zero means the lab picks a
// /24 of 10.0.0.0/8 that no other link uses.
type LinkOptions struct {
	AddrA, AddrB netip.Prefix
	Seed         uint64 // of the loss, duplication and reordering draws; 0: the link's number
}

// AddLink joins a and b.
func (l *Lab) AddLink(a, b *Host, opts LinkOptions) (*Link, error) {
	if a == b {
		return nil, argError("a link joins two different hosts, not %s to itself", a.Name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	if a.lab != l || b.lab != l || l.hostLocked(a.Name) != a || l.hostLocked(b.Name) != b {
		return nil, argError("both hosts must belong to this lab")
	}
	addrA, addrB, err := l.pickAddrs(a, b, opts)
	if err != nil {
		return nil, err
	}
	k := &Link{ID: len(l.links) + 1}
	k.A = &Iface{Name: "eth" + strconv.Itoa(len(a.ifaces)), Addr: addrA, Host: a, Link: k}
	k.B = &Iface{Name: "eth" + strconv.Itoa(len(b.ifaces)), Addr: addrB, Host: b, Link: k}
	for _, i := range []*Iface{k.A, k.B} {
		if err := i.create(); err != nil {
			k.closeTaps()
			return nil, err
		}
	}
	seed := opts.Seed
	if seed == 0 {
		seed = uint64(k.ID)
	}
	k.up.Store(true)
	k.paths[0] = newPath(k.A.tap, k.B.tap, &k.up, seed)
	k.paths[1] = newPath(k.B.tap, k.A.tap, &k.up, seed+1)
	k.paths[0].run(&k.wg)
	k.paths[1].run(&k.wg)
	a.ifaces = append(a.ifaces, k.A)
	b.ifaces = append(b.ifaces, k.B)
	l.links = append(l.links, k)
	if err := l.routeLocked(); err != nil {
		return k, err
	}
	return k, l.writeHosts()
}

func argError(format string, a ...any) error {
	return &sock.Error{Op: "lab", Code: "EINVAL", Msg: fmt.Sprintf(format, a...), Errno: unix.EINVAL}
}

// pickAddrs checks the addresses given, or picks the next free /24: the
// router's end gets .1, as gateways usually do.
func (l *Lab) pickAddrs(a, b *Host, opts LinkOptions) (netip.Prefix, netip.Prefix, error) {
	used := func(p netip.Prefix) bool {
		for _, k := range l.links {
			if k.A.Addr.Masked().Overlaps(p.Masked()) {
				return true
			}
		}
		return false
	}
	if opts.AddrA.IsValid() || opts.AddrB.IsValid() {
		x, y := opts.AddrA, opts.AddrB
		switch {
		case !x.IsValid() || !y.IsValid():
			return x, y, argError("give both ends' addresses, or neither")
		case !x.Addr().Is4() || !y.Addr().Is4():
			return x, y, argError("the lab speaks IPv4: %s, %s", x, y)
		case x.Bits() != y.Bits() || x.Masked() != y.Masked():
			return x, y, argError("%s and %s are not in one subnet", x, y)
		case x.Addr() == y.Addr():
			return x, y, argError("both ends have the address %s", x.Addr())
		case x.Bits() > 30:
			return x, y, argError("a /%d leaves no room for two hosts", x.Bits())
		case x.Addr() == x.Masked().Addr() || y.Addr() == y.Masked().Addr():
			return x, y, argError("%s is a subnet's own address", x.Masked().Addr())
		case used(x) || used(y):
			return x, y, argError("%s overlaps a link the lab has already", x.Masked())
		}
		return x, y, nil
	}
	for n := 1; n < 65536; n++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n >> 8), byte(n), 0}), 24)
		if used(p) {
			continue
		}
		base := p.Addr().As4()
		one, two := base, base
		one[3], two[3] = 1, 2
		x, y := netip.PrefixFrom(netip.AddrFrom4(one), 24), netip.PrefixFrom(netip.AddrFrom4(two), 24)
		if b.Router && !a.Router {
			x, y = y, x
		}
		return x, y, nil
	}
	return netip.Prefix{}, netip.Prefix{}, argError("no free /24 left in 10.0.0.0/8")
}

// create makes the TAP device inside the host and configures it: MAC,
// address, up.
func (i *Iface) create() error {
	h := i.Host
	var fd int
	err := h.ns.Do(func() error {
		// The device is made in the namespace of the thread that opens
		// /dev/net/tun, and lives while the fd is open.
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(i.Name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
		}
		return err
	})
	if err != nil {
		return wrap("tap", err)
	}
	// Non-blocking, so that reads wait in Go's poller and Close ends them.
	i.tap, i.fd = os.NewFile(uintptr(fd), "/dev/net/tun"), fd
	return h.netlink(func(nh *netlink.Handle) error {
		dev, err := nh.LinkByName(i.Name)
		if err != nil {
			return err
		}
		// 02:00 and the IPv4 address: a locally administered MAC a capture
		// reader can map to its host at a glance.
		a := i.Addr.Addr().As4()
		if err := nh.LinkSetHardwareAddr(dev, net.HardwareAddr{0x02, 0x00, a[0], a[1], a[2], a[3]}); err != nil {
			return err
		}
		if err := nh.AddrAdd(dev, &netlink.Addr{IPNet: prefixNet(i.Addr)}); err != nil {
			return err
		}
		return nh.LinkSetUp(dev)
	})
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// FD is the TAP device's descriptor in sockplay's table of fds.
// (os.File.Fd would make it blocking.)
func (i *Iface) FD() int { return i.fd }

// Peer is the other end of the link.
func (i *Iface) Peer() *Iface {
	if i.Link.A == i {
		return i.Link.B
	}
	return i.Link.A
}

func (k *Link) closeTaps() {
	for _, i := range []*Iface{k.A, k.B} {
		if i != nil && i.tap != nil {
			i.tap.Close()
		}
	}
}

// close removes both devices (the kernel removes a TAP when its fd
// closes, and the routes through it) and waits for the paths to stop.
func (k *Link) close() {
	k.closeTaps()
	k.wg.Wait()
}

// end returns the path leaving from h, with its index.
func (k *Link) end(from *Host) (int, *Iface, error) {
	switch from {
	case k.A.Host:
		return 0, k.A, nil
	case k.B.Host:
		return 1, k.B, nil
	}
	return 0, nil, argError("%s is not an end of link %s-%s", from.Name, k.A.Host.Name, k.B.Host.Name)
}

// Name is the link's name, its hosts joined: client-router.
func (k *Link) Name() string { return k.A.Host.Name + "-" + k.B.Host.Name }

// SetShape shapes the frames leaving from (nil: both directions). It acts
// at once on frames sent from then on, while connections run.
func (k *Link) SetShape(from *Host, s Shape) error {
	if err := s.Check(); err != nil {
		return argError("%s", err)
	}
	dirs := []int{0, 1}
	if from != nil {
		d, _, err := k.end(from)
		if err != nil {
			return err
		}
		dirs = []int{d}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, d := range dirs {
		i := k.A
		if d == 1 {
			i = k.B
		}
		if s.Rate != k.rates[d] {
			if err := i.setRate(s.Rate); err != nil {
				return err
			}
			k.rates[d] = s.Rate
		}
		k.paths[d].setShape(s)
	}
	return nil
}

// Shape is the shape of the frames leaving from.
func (k *Link) Shape(from *Host) Shape {
	d, _, err := k.end(from)
	if err != nil {
		return Shape{}
	}
	return *k.paths[d].shape.Load()
}

// Stats counts what the link did to the frames leaving from.
func (k *Link) Stats(from *Host) Stats {
	d, _, err := k.end(from)
	if err != nil {
		return Stats{}
	}
	return k.paths[d].snapshot()
}

// setRate puts a tbf on the device's egress (0 takes it off): the
// sending host's kernel queues and paces what leaves, as a slower line
// would make it.
func (i *Iface) setRate(bps uint64) error {
	return i.Host.netlink(func(nh *netlink.Handle) error {
		dev, err := nh.LinkByName(i.Name)
		if err != nil {
			return err
		}
		attrs := netlink.QdiscAttrs{LinkIndex: dev.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}
		if bps == 0 {
			err := nh.QdiscDel(&netlink.Tbf{QdiscAttrs: attrs})
			if err == unix.ENOENT || err == unix.EINVAL {
				return nil
			}
			return err
		}
		bytes := bps / 8
		// A burst of 10 ms (at least two full frames) and a queue of
		// 100 ms: enough for TCP to fill the line, short enough that the
		// queue's delay is not the lesson.
		burst := max(bytes/100, 3200)
		limit := max(bytes/10, 3*burst)
		return nh.QdiscReplace(&netlink.Tbf{QdiscAttrs: attrs, Rate: bytes, Limit: uint32(min(limit, 1<<31)),
			Buffer: netlink.Xmittime(bytes, uint32(burst))})
	})
}

// SetUp plugs the link in or pulls it out: down, both devices lose their
// carrier (NO-CARRIER in ip link) and every frame is dropped.
func (k *Link) SetUp(up bool) error {
	k.up.Store(up)
	var v int32
	if up {
		v = 1
	}
	for _, i := range []*Iface{k.A, k.B} {
		rc, err := i.tap.SyscallConn()
		if err != nil {
			return wrap("tap", err)
		}
		var ierr error
		if err := rc.Control(func(fd uintptr) {
			_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.TUNSETCARRIER, uintptr(unsafe.Pointer(&v)))
			if errno != 0 {
				ierr = errno
			}
		}); err != nil {
			return wrap("tap", err)
		}
		if ierr != nil {
			return wrap("tap", ierr)
		}
	}
	return nil
}

// Up reports whether the link is plugged in.
func (k *Link) Up() bool { return k.up.Load() }
