package sock

import (
	"context"
	"net/netip"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Table is the process's socket table: the only place that maps a kernel fd
// number to the *Socket that owns it. The zero value is not usable; call
// NewTable.
type Table struct {
	mu      sync.Mutex
	sockets map[int]*Socket
	// byFD is sockets again, indexed by fd for Get, which every socket
	// call makes: readers load it without the lock; writers hold mu.
	byFD   atomic.Pointer[[]atomic.Pointer[Socket]]
	recent []closedConn // sockets closed lately: TIME_WAIT, late packets
	// recentNext is where the ring of recent overwrites next once full.
	recentNext int
	tracer     atomic.Pointer[listeners] // nil when nobody listens
	trace      Tracer                    // SetTracer's; guarded by mu
	listening  []*listener               // Listen's; guarded by mu
	now        func() time.Time
	notes      map[int]string // what sockplay holds other fds for (SetNote)
}

// closedConn remembers a socket after its fd is gone: the kernel keeps a
// TCP connection (FIN_WAIT2, TIME_WAIT ...) with no fd, and a learner
// wants to see it there; a capture that reads a packet late still wants
// to know whose it was.
type closedConn struct {
	fd          int
	kind        Kind
	local, peer netip.AddrPort
	owner       string
	netns       *Netns
	closedAt    time.Time
	bytesIn     uint64
	bytesOut    uint64
}

// recentFor is how long a closed connection is looked for: TIME_WAIT lasts
// 60 s on Linux.
const recentFor = 65 * time.Second

// maxRecent bounds the closed connections remembered: a server churning
// thousands of connections a second must not grow a list (or pay to scan
// one) on every close; the table only shows the latest few anyway.
const maxRecent = 256

// remember records a closed connection in a ring of maxRecent, replacing
// the oldest. The caller holds t.mu.
func (t *Table) remember(c closedConn) {
	if len(t.recent) < maxRecent {
		t.recent = append(t.recent, c)
		return
	}
	t.recent[t.recentNext] = c
	t.recentNext = (t.recentNext + 1) % maxRecent
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{sockets: make(map[int]*Socket), now: time.Now}
}

type ownerKey struct{}

// WithOwner labels the sockets opened or accepted under ctx with owner (a task
// name) so that the snapshot can say who holds what.
func WithOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

// An OwnerContext names the owner itself, instead of through WithOwner's
// context value.
type OwnerContext interface {
	context.Context
	SockOwner() string
}

func ownerOf(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	if c, ok := ctx.(OwnerContext); ok {
		return c.SockOwner()
	}
	o, _ := ctx.Value(ownerKey{}).(string)
	return o
}

// A NetnsContext names the network namespace the sockets opened under it
// are made in: a task of a lab host runs under one.
type NetnsContext interface {
	SockNetns() *Netns
}

// NetnsKey is the context key WithNetns files a namespace under. A
// NetnsContext answers Value(NetnsKey{}) too, so that the contexts derived
// from it (a timeout's) open their sockets in the same namespace.
type NetnsKey struct{}

// WithNetns makes the sockets opened under ctx open inside ns.
func WithNetns(ctx context.Context, ns *Netns) context.Context {
	return context.WithValue(ctx, NetnsKey{}, ns)
}

// NetnsOf is the namespace sockets opened under ctx are made in; nil is
// sockplay's own.
func NetnsOf(ctx context.Context) *Netns {
	if ctx == nil {
		return nil
	}
	if c, ok := ctx.(NetnsContext); ok {
		return c.SockNetns()
	}
	ns, _ := ctx.Value(NetnsKey{}).(*Netns)
	return ns
}

// Open creates a socket of the given kind: socket(2) with O_NONBLOCK and
// O_CLOEXEC, registered with Go's poller. Under a context that names a
// network namespace (NetnsOf) the socket is made inside it.
func (t *Table) Open(ctx context.Context, kind Kind) (*Socket, error) {
	return t.open(ctx, kind, NetnsOf(ctx))
}

// OpenIn is Open for a socket inside ns, whatever ctx names.
func (t *Table) OpenIn(ctx context.Context, kind Kind, ns *Netns) (*Socket, error) {
	return t.open(ctx, kind, ns)
}

func (t *Table) open(ctx context.Context, kind Kind, ns *Netns) (*Socket, error) {
	start := t.traceStart()
	if kind < TCP || kind > UDP6 {
		return nil, argError("socket", "unknown socket kind %d", kind)
	}
	var args []string // socket(tcp) or, in a lab host, socket(tcp@client)
	if !start.IsZero() {
		args = []string{kind.String()}
		if ns != nil {
			args[0] += "@" + ns.Name()
		}
	}
	var fd int
	var err error
	if ns == nil {
		fd, err = sysSocket(kind.family(), kind.sotype())
	} else {
		err = ns.Do(func() error {
			var err error
			fd, err = sysSocket(kind.family(), kind.sotype())
			return err
		})
	}
	if err != nil {
		err = wrap("socket", err)
		if !start.IsZero() {
			t.emit(start, Event{FD: -1, Kind: kind, Host: ns.Name(), Call: "socket", Args: args, Ret: -1, Err: err})
		}
		return nil, err
	}
	s, err := t.adopt(fd, kind, ownerOf(ctx), ns)
	if err != nil {
		return nil, err
	}
	if !start.IsZero() {
		t.emit(start, Event{FD: -1, Kind: kind, Host: ns.Name(), Call: "socket", Args: args, Ret: fd, Owner: s.Owner})
	}
	return s, nil
}

// adopt wraps a fresh non-blocking fd and records it in the table.
func (t *Table) adopt(fd int, kind Kind, owner string, ns *Netns) (*Socket, error) {
	f := os.NewFile(uintptr(fd), "socket")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, wrap("socket", err)
	}
	s := &Socket{FD: fd, Kind: kind, Owner: owner, Opened: t.now(), table: t, file: f, rc: rc, netns: ns}
	s.rd.init(s, false)
	s.wr.init(s, true)
	t.mu.Lock()
	t.sockets[fd] = s
	t.slot(fd).Store(s)
	t.mu.Unlock()
	return s, nil
}

// slot returns fd's place in byFD, growing it. The caller holds t.mu.
func (t *Table) slot(fd int) *atomic.Pointer[Socket] {
	var slots []atomic.Pointer[Socket]
	if p := t.byFD.Load(); p != nil {
		slots = *p
	}
	if fd >= len(slots) {
		grown := make([]atomic.Pointer[Socket], max(fd+1, 2*len(slots), 64))
		for i := range slots {
			grown[i].Store(slots[i].Load())
		}
		t.byFD.Store(&grown)
		slots = grown
	}
	return &slots[fd]
}

// Get returns the socket behind fd, or EBADF when sockplay has no socket
// with that number (never opened, or closed).
func (t *Table) Get(fd int) (*Socket, error) {
	var s *Socket
	if p := t.byFD.Load(); p != nil && fd >= 0 && fd < len(*p) {
		s = (*p)[fd].Load()
	}
	if s == nil {
		return nil, &Error{Code: "EBADF", Msg: "bad file descriptor (fd " + itoa(fd) + " is not an open socket)", Errno: unix.EBADF}
	}
	return s, nil
}

// Sockets returns the open sockets ordered by fd.
func (t *Table) Sockets() []*Socket {
	t.mu.Lock()
	out := make([]*Socket, 0, len(t.sockets))
	for _, s := range t.sockets {
		out = append(out, s)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out
}

// Len is the number of open sockets.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sockets)
}

// CloseAll closes every socket in the table; a process exit path.
func (t *Table) CloseAll() {
	for _, s := range t.Sockets() {
		s.Close()
	}
}

// CloseIn closes the sockets that live in ns (a lab host taken down).
func (t *Table) CloseIn(ns *Netns) int {
	n := 0
	for _, s := range t.Sockets() {
		if s.netns == ns && ns != nil && s.Close() == nil {
			n++
		}
	}
	return n
}

// SetNote says what a descriptor that is not a socket of the table is for
// (a lab's TAP device, a namespace); the snapshot shows it. "" removes it.
func (t *Table) SetNote(fd int, note string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if note == "" {
		delete(t.notes, fd)
		return
	}
	if t.notes == nil {
		t.notes = map[int]string{}
	}
	t.notes[fd] = note
}

func (t *Table) note(fd int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.notes[fd]
}

// CloseOwned closes the sockets labelled with owner (a task that ended).
func (t *Table) CloseOwned(owner string) int {
	n := 0
	for _, s := range t.Sockets() {
		if s.Owner == owner {
			if s.Close() == nil {
				n++
			}
		}
	}
	return n
}

// forget removes s from the table; it reports false when s was not there
// (already closed).
func (t *Table) forget(s *Socket, local, peer netip.AddrPort) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sockets[s.FD] != s {
		return false
	}
	delete(t.sockets, s.FD)
	t.slot(s.FD).Store(nil)
	if local.IsValid() && local.Port() != 0 {
		t.remember(closedConn{fd: s.FD, kind: s.Kind, local: local, peer: peer, owner: s.Owner, netns: s.netns, closedAt: t.now(),
			bytesIn: s.bytesIn.Load(), bytesOut: s.bytesOut.Load()})
	}
	return true
}

// ClosedSocket is a socket closed lately, with the addresses it had.
type ClosedSocket struct {
	FD          int
	Kind        Kind
	Owner       string
	Local, Peer netip.AddrPort // Peer invalid when it was not connected
	Netns       *Netns         // where it lived; nil: sockplay's own namespace
	Closed      time.Time
}

// RecentlyClosed lists the sockets with an address closed in the last
// minute or so (at most the last 256): the packets they sent may still be
// on their way to a capture. A socket leaves Sockets and enters this list
// under one lock, so a caller that reads Sockets, then RecentlyClosed,
// misses none.
func (t *Table) RecentlyClosed() []ClosedSocket {
	var out []ClosedSocket
	for _, c := range t.recentClosed() {
		out = append(out, ClosedSocket{FD: c.fd, Kind: c.kind, Owner: c.owner, Local: c.local, Peer: c.peer, Netns: c.netns, Closed: c.closedAt})
	}
	return out
}

func (t *Table) recentClosed() []closedConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var out []closedConn
	for _, c := range t.recent {
		if now.Sub(c.closedAt) < recentFor {
			out = append(out, c)
		}
	}
	return out
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
