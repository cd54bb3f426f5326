//go:build linux

package sock

import (
	"runtime"
	"sync"
	"unsafe"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Netns is a network namespace of sockplay's own, with its own loopback.
// Loss injected there (Loss) hits real kernel TCP and UDP traffic and
// nothing else on the machine, so TCP's retransmissions can be seen
// recovering from it. Creating one needs CAP_NET_ADMIN (root).
//
// Sockets are opened inside it without a new process: a locked OS thread
// switches to the namespace, calls socket(2), and switches back. A socket
// stays in the namespace it was made in, and its fd is an ordinary entry
// in sockplay's table.
type Netns struct {
	mu     sync.Mutex
	fd     int // an nsfs fd: holding it keeps the namespace alive
	closed bool
	loss   float64
	name   string // what views call it: a lab host's name
}

// NewNetns creates a namespace with its loopback up, called "netns" in
// the views.
func NewNetns() (*Netns, error) { return NewNamedNetns("netns") }

// NewNamedNetns is NewNetns with the name the descriptor table and the
// trace show for the sockets inside (a lab host's name).
func NewNamedNetns(name string) (*Netns, error) {
	var ns *Netns
	err := onLockedThread(func() error {
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return wrap("netns", err)
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			if err == unix.EPERM {
				return &Error{Op: "netns", Code: "EPERM", Msg: "creating a network namespace needs root (CAP_NET_ADMIN)", Errno: unix.EPERM}
			}
			return wrap("netns", err)
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = loopbackUp()
		}
		// Back to where the thread came from before anything else runs
		// on it; if that fails the thread must not be reused.
		if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
			panic("sock: cannot return a thread to its network namespace: " + serr.Error())
		}
		if err != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			return wrap("netns", err)
		}
		ns = &Netns{fd: fd, name: name}
		return nil
	})
	return ns, err
}

// onLockedThread runs fn on a thread of its own, so a namespace switch
// never leaks into other goroutines.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- fn()
	}()
	return <-errc
}

// loopbackUp sets IFF_UP on lo in the calling thread's namespace, with an
// Ethernet-sized MTU: loopback's usual 64 KiB would carry a megabyte in a
// dozen segments, and loss would hardly show.
func loopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return err
	}
	mtu, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	mtu.SetUint32(1500)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, mtu); err != nil {
		return err
	}
	// Without segmentation offload the kernel hands the device (and the
	// loss rule) real 1448-byte segments instead of 64 KiB bursts.
	for _, cmd := range []uint32{unix.ETHTOOL_STSO, unix.ETHTOOL_SGSO} {
		if err := ethtoolSet(s, "lo", cmd, 0); err != nil {
			return err
		}
	}
	return nil
}

// ethtoolSet is `ethtool -K dev ... off` for one feature: SIOCETHTOOL with
// a struct ethtool_value {cmd, data}.
func ethtoolSet(fd int, dev string, cmd, value uint32) error {
	ev := struct{ cmd, data uint32 }{cmd, value}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	copy(ifr.name[:], dev)
	ifr.data = uintptr(unsafe.Pointer(&ev))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&ev)
	if errno != 0 {
		return errno
	}
	return nil
}

// Do runs fn on an OS thread inside the namespace: what fn opens there
// (a socket, an AF_PACKET capture, a TUN device, a netlink socket) belongs
// to the namespace and keeps to it after fn returns. fn must not start
// goroutines expecting them to run inside too; the thread is locked to fn
// and goes back to sockplay's own namespace afterwards.
func (n *Netns) Do(fn func() error) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return &Error{Op: "netns", Code: "EBADF", Msg: "network namespace is closed", Errno: unix.EBADF}
	}
	nsfd := n.fd
	n.mu.Unlock()
	return onLockedThread(func() error {
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return wrap("netns", err)
		}
		defer unix.Close(orig)
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			return wrap("netns", err)
		}
		ferr := fn()
		if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
			panic("sock: cannot return a thread to its network namespace: " + serr.Error())
		}
		return ferr
	})
}

// SetLoss makes the namespace's kernel drop a fraction p (0..1) of all
// arriving packets, TCP and UDP alike, with an nftables rule; 0 removes it.
// The rule sits on the input hook, after the packet has "crossed the
// wire": a drop on output would be reported to the sending TCP as a local
// failure and quietly resent, which is not what network loss looks like.
func (n *Netns) SetLoss(p float64) error {
	if p < 0 || p > 1 {
		return argError("netns", "loss %g is outside 0..1", p)
	}
	err := n.Nftables(func(c *nftables.Conn) {
		t := &nftables.Table{Family: nftables.TableFamilyINet, Name: "sockplay"}
		// Add then delete: the batch removes the table whether or not an
		// earlier call made it, and replaces it in one step.
		c.AddTable(t)
		c.DelTable(t)
		if p == 0 {
			return
		}
		c.AddTable(t)
		in := c.AddChain(&nftables.Chain{Name: "in", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
		c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: lossExprs(p)})
	})
	if err == nil {
		n.mu.Lock()
		n.loss = p
		n.mu.Unlock()
	}
	return err
}

// Nftables sends the rules build adds as one batch to the namespace's
// nftables: all of them take effect, or none.
func (n *Netns) Nftables(build func(c *nftables.Conn)) error {
	n.mu.Lock()
	closed, fd := n.closed, n.fd
	n.mu.Unlock()
	if closed {
		return &Error{Op: "nftables", Code: "EBADF", Msg: "network namespace is closed", Errno: unix.EBADF}
	}
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return wrap("nftables", err)
	}
	build(c)
	if err := c.Flush(); err != nil {
		return wrap("nftables", err)
	}
	return nil
}

// lossExprs is the nftables rule body "numgen random mod 10000 < p*10000
// counter drop": a random fraction p of the packets it sees is dropped.
func lossExprs(p float64) []expr.Any {
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: 10000, Type: unix.NFT_NG_RANDOM},
		// numgen leaves a host-order number; cmp compares bytes, so the
		// number goes big-endian first, as nft itself compiles it.
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(uint32(p*10000 + 0.5))},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// Loss is the fraction SetLoss set.
func (n *Netns) Loss() float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.loss
}

// Name is what the views call the namespace; "" for nil, sockplay's own.
func (n *Netns) Name() string {
	if n == nil {
		return ""
	}
	return n.name
}

// FD is the namespace's nsfs descriptor (it shows in the fd table).
func (n *Netns) FD() int { return n.fd }

// Close releases the namespace; the kernel removes it when the last socket
// in it is closed too.
func (n *Netns) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return withOp("netns", ErrClosed)
	}
	n.closed = true
	return wrap("netns", unix.Close(n.fd))
}
