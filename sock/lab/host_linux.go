//go:build linux

package lab

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// Host is one machine of the lab: a network namespace of its own.
type Host struct {
	Name   string
	Router bool // forwards IPv4 between its links

	lab    *Lab
	ns     *sock.Netns
	path   string   // its name under /run/netns
	ifaces []*Iface // one per link, eth0, eth1 ... in link order
	routes []route  // the routes the lab installed
	nat    natRules
}

// Iface is a host's end of a link: a TAP device inside the host.
type Iface struct {
	Name string       // eth0, eth1 ...
	Addr netip.Prefix // 10.0.1.2/24
	Host *Host
	Link *Link
	tap  *os.File // the device lives while this is open
	fd   int      // tap's descriptor
}

func newHost(l *Lab, name string, router bool) (*Host, error) {
	ns, err := sock.NewNamedNetns(name)
	if err != nil {
		if sock.Code(err) == "EPERM" {
			return nil, ErrNeedAdmin
		}
		return nil, err
	}
	h := &Host{Name: name, Router: router, lab: l, ns: ns, path: filepath.Join(netnsDir, l.prefix+name)}
	err = ns.Do(func() error {
		// IPv4 only: a device without IPv6 sends no router solicitations
		// or MLD reports, so a capture shows the traffic the user made.
		sysctls := map[string]string{"net/ipv6/conf/default/disable_ipv6": "1"}
		if router {
			sysctls["net/ipv4/ip_forward"] = "1"
		}
		for k, v := range sysctls {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = h.name()
	}
	if err != nil {
		ns.Close()
		return nil, wrap("lab", err)
	}
	return h, nil
}

// name makes the namespace reachable as /run/netns/sockplay-PID-ID-NAME,
// the way ip netns add names one: a bind mount of the namespace.
func (h *Host) name() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(h.path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	src := "/proc/self/fd/" + strconv.Itoa(h.ns.FD())
	if err := unix.Mount(src, h.path, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(h.path)
		return err
	}
	return nil
}

func (h *Host) close() error {
	err := unix.Unmount(h.path, unix.MNT_DETACH)
	os.Remove(h.path)
	h.ns.Close()
	return err
}

// Netns is the host's namespace: sockets opened in it are the host's.
func (h *Host) Netns() *sock.Netns { return h.ns }

// NetnsName is the namespace's name under /run/netns.
func (h *Host) NetnsName() string { return filepath.Base(h.path) }

// Lab is the lab the host belongs to.
func (h *Host) Lab() *Lab { return h.lab }

// Addrs lists the host's addresses, one per link.
func (h *Host) Addrs() []netip.Addr {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	return h.addrsLocked()
}

func (h *Host) addrsLocked() []netip.Addr {
	var out []netip.Addr
	for _, i := range h.ifaces {
		out = append(out, i.Addr.Addr())
	}
	return out
}

// Ifaces lists the host's ends of links.
func (h *Host) Ifaces() []*Iface {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	return append([]*Iface(nil), h.ifaces...)
}

// Iface finds the host's end of a link by its device name.
func (h *Host) Iface(name string) *Iface {
	for _, i := range h.Ifaces() {
		if i.Name == name {
			return i
		}
	}
	return nil
}

// netlink runs fn with a netlink handle inside the host.
func (h *Host) netlink(fn func(nh *netlink.Handle) error) error {
	nh, err := netlink.NewHandleAt(netns.NsHandle(h.ns.FD()), unix.NETLINK_ROUTE)
	if err != nil {
		return wrap("netlink", err)
	}
	defer nh.Close()
	return wrap("netlink", fn(nh))
}

// Start starts cmd inside the host, as `ip netns exec` would: in its
// network namespace, with the lab's hosts file as /etc/hosts, the host's
// devices under /sys/class/net and the host's name as its hostname. The
// caller waits for it as for any exec.Cmd.
//
// The child inherits the namespaces of the thread that forks it, so a
// locked thread moves into them and forks; having left sockplay's mount
// and UTS namespaces it can never go back, and ends with its goroutine.
func (h *Host) Start(cmd *exec.Cmd) error {
	nsfd := h.ns.FD()
	hosts := h.lab.hostsFile()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		errc <- func() error {
			if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
				return wrap("exec", err)
			}
			if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWUTS); err != nil {
				return wrap("exec", err)
			}
			// Nothing mounted from here on may reach sockplay's own view.
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return wrap("exec", err)
			}
			if err := unix.Mount(hosts, "/etc/hosts", "", unix.MS_BIND, ""); err != nil {
				return wrap("exec", err)
			}
			// sysfs shows the devices of the namespace that mounts it.
			if unix.Unmount("/sys", unix.MNT_DETACH) == nil {
				unix.Mount(h.Name, "/sys", "sysfs", 0, "")
			}
			unix.Sethostname([]byte(h.Name))
			return cmd.Start()
		}()
	}()
	return <-errc
}
