//go:build linux

package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// Lab is one network of hosts and links. Its methods are safe to call from
// several goroutines.
type Lab struct {
	ID     int    // the lab's number in this process, from 1
	prefix string // of its namespaces' names: sockplay-PID-ID-
	dir    string // holds the hosts file its programs see as /etc/hosts

	mu     sync.Mutex
	hosts  []*Host
	links  []*Link
	closed bool
	gone   chan struct{} // closed when Close has finished
}

// Where names live: ip netns keeps named namespaces in netnsDir, and the
// lab keeps its hosts files in runDir.
const (
	netnsDir = "/run/netns"
	runDir   = "/run/sockplay"
)

var labIDs atomic.Int32

// ErrNeedAdmin is what every lab function says without the privilege.
var ErrNeedAdmin = &sock.Error{Op: "lab", Code: "EPERM", Msg: "the lab needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run sockplay as root)", Errno: unix.EPERM}

// New starts an empty lab, first removing what processes killed by
// SIGKILL left behind.
func New() (*Lab, error) {
	if !privileged() {
		return nil, ErrNeedAdmin
	}
	RemoveLeftovers()
	id := int(labIDs.Add(1))
	pid := os.Getpid()
	l := &Lab{ID: id, prefix: fmt.Sprintf("sockplay-%d-%d-", pid, id), dir: filepath.Join(runDir, fmt.Sprintf("%d-%d", pid, id)),
		gone: make(chan struct{})}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, wrap("lab", err)
	}
	if err := l.writeHosts(); err != nil {
		os.RemoveAll(l.dir)
		return nil, err
	}
	return l, nil
}

// privileged reports whether the process has CAP_NET_ADMIN (links,
// routes, nftables) and CAP_SYS_ADMIN (namespaces and their names).
func privileged() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_NET_ADMIN) != 0 && caps&(1<<unix.CAP_SYS_ADMIN) != 0
		}
	}
	return false
}

// Prefix is what the names of the lab's namespaces start with: a host
// "client" is `ip netns exec sockplay-PID-ID-client ...` from a shell.
func (l *Lab) Prefix() string { return l.prefix }

// Compiled at first use: package initialisers run at every start of sockplay.
var hostName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`) })

// CheckHostName says what is wrong with a host's name: it becomes a host
// name in /etc/hosts and part of a namespace's name.
func CheckHostName(name string) error {
	if !hostName().MatchString(name) || strings.HasSuffix(name, "-") {
		return fmt.Errorf("host name %q must be 1-31 lower-case letters, digits and inner dashes, starting with a letter", name)
	}
	return nil
}

// AddHost makes a host: a namespace with its loopback up. A router
// forwards IPv4 packets between its links.
func (l *Lab) AddHost(name string, router bool) (*Host, error) {
	if err := CheckHostName(name); err != nil {
		return nil, &sock.Error{Op: "lab", Code: "EINVAL", Msg: err.Error(), Errno: unix.EINVAL}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	if l.hostLocked(name) != nil {
		return nil, &sock.Error{Op: "lab", Code: "EEXIST", Msg: "the lab has a host " + name + " already", Errno: unix.EEXIST}
	}
	h, err := newHost(l, name, router)
	if err != nil {
		return nil, err
	}
	l.hosts = append(l.hosts, h)
	if err := l.writeHosts(); err != nil {
		return nil, err
	}
	return h, nil
}

var errClosed = &sock.Error{Op: "lab", Code: "EBADF", Msg: "the lab is closed", Errno: unix.EBADF}

// Host finds a host by name.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hostLocked(name)
}

func (l *Lab) hostLocked(name string) *Host {
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Hosts lists the hosts in the order they were made.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// Links lists the links in the order they were made.
func (l *Lab) Links() []*Link {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Link(nil), l.links...)
}

// Owns reports whether ns is one of the lab's hosts.
func (l *Lab) Owns(ns *sock.Netns) bool { return l.HostOf(ns) != nil }

// HostOf is the host whose namespace ns is, or nil.
func (l *Lab) HostOf(ns *sock.Netns) *Host {
	if ns == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.ns == ns {
			return h
		}
	}
	return nil
}

// Lookup resolves a host's name to its addresses, in the order of its
// links, as the hosts file of the lab's programs does.
func (l *Lab) Lookup(name string) []netip.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.hostLocked(strings.ToLower(strings.TrimSuffix(name, ".")))
	if h == nil {
		return nil
	}
	return h.addrsLocked()
}

// writeHosts rewrites the hosts file in place: programs started later
// bind-mount it as their /etc/hosts. The caller holds l.mu (or l is new).
func (l *Lab) writeHosts() error {
	var b strings.Builder
	fmt.Fprintf(&b, "# the hosts of sockplay's lab %d (process %d)\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", l.ID, os.Getpid())
	for _, h := range l.hosts {
		for _, a := range h.addrsLocked() {
			fmt.Fprintf(&b, "%s\t%s\n", a, h.Name)
		}
	}
	return wrap("lab", os.WriteFile(l.hostsFile(), []byte(b.String()), 0o644))
}

func (l *Lab) hostsFile() string { return filepath.Join(l.dir, "hosts") }

// Close takes the lab down: links (their devices and goroutines), NAT
// rules, the namespaces' names. A namespace itself goes when the last
// socket inside is closed too. Close is safe to call more than once, from
// several goroutines: each returns once the lab is gone.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.gone
		return nil
	}
	l.closed = true
	defer close(l.gone)
	links, hosts := l.links, l.hosts
	l.links, l.hosts = nil, nil
	l.mu.Unlock()
	var errs []error
	for _, k := range links {
		k.close()
	}
	for _, h := range hosts {
		errs = append(errs, h.close())
	}
	errs = append(errs, os.RemoveAll(l.dir))
	return wrap("lab", errors.Join(errs...))
}

// Closed reports whether Close has been called.
func (l *Lab) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

var leftoverName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sockplay-(\d+)-\d+-`) })

// RemoveLeftovers removes the labs of processes that are gone: their
// namespaces' names under /run/netns, the programs still running inside
// them, and their hosts files. It returns the names it removed.
func RemoveLeftovers() []string {
	var removed []string
	dead := func(name string) bool {
		m := leftoverName().FindStringSubmatch(name + "-")
		if m == nil {
			return false
		}
		pid, _ := strconv.Atoi(m[1])
		return pid != os.Getpid() && unix.Kill(pid, 0) == unix.ESRCH
	}
	ents, _ := os.ReadDir(netnsDir)
	inodes := map[uint64]bool{}
	var stale []string
	for _, e := range ents {
		if !dead(e.Name()) {
			continue
		}
		p := filepath.Join(netnsDir, e.Name())
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil {
			inodes[st.Ino] = true
		}
		stale = append(stale, p)
	}
	if len(inodes) > 0 {
		killInside(inodes)
	}
	for _, p := range stale {
		unix.Unmount(p, unix.MNT_DETACH)
		if os.Remove(p) == nil {
			removed = append(removed, filepath.Base(p))
		}
	}
	if dirs, err := os.ReadDir(runDir); err == nil {
		for _, d := range dirs {
			pid, _, ok := strings.Cut(d.Name(), "-")
			if n, err := strconv.Atoi(pid); ok && err == nil && n != os.Getpid() && unix.Kill(n, 0) == unix.ESRCH {
				os.RemoveAll(filepath.Join(runDir, d.Name()))
			}
		}
	}
	sort.Strings(removed)
	return removed
}

// killInside kills the processes whose network namespace is one of
// inodes: what a killed sockplay ran in its hosts, which would otherwise
// keep them alive.
func killInside(inodes map[uint64]bool) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+p.Name()+"/ns/net", &st) == nil && inodes[st.Ino] {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// wrap makes err a sock.Error for op.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *sock.Error
	if errors.As(err, &se) {
		return err
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		if errno == unix.EPERM || errno == unix.EACCES {
			return ErrNeedAdmin
		}
		return &sock.Error{Op: op, Code: unix.ErrnoName(errno), Msg: err.Error(), Errno: errno}
	}
	return &sock.Error{Op: op, Code: "EIO", Msg: err.Error()}
}
