package sock

import (
	"net/netip"
	"time"
)

// Entry is one descriptor in a snapshot of the process's fd table.
//
// The three levels a textbook draws are all here: the fd number (the
// process's table), the open file description it points to (Flags, Pos,
// shared by dup'ed fds) and the inode behind it (Inode; for a socket, the
// kernel socket with its state and queues).
type Entry struct {
	FD     int    // -1 for a closed connection the kernel still keeps
	Type   string // socket, pipe, file, tty, epoll, eventfd, anon ...
	Target string // what /proc/self/fd/N links to: socket:[123], /dev/pts/0
	Inode  uint64
	Flags  string // open file description flags: O_RDWR|O_NONBLOCK|O_CLOEXEC
	Pos    int64  // file offset
	Note   string // what sockplay holds a descriptor other than a socket for (Table.SetNote)
	Socket *SocketInfo
}

// SocketInfo is the kernel's view of a socket plus sockplay's own counters.
type SocketInfo struct {
	Kind        Kind
	State       string // LISTEN, ESTABLISHED, TIME_WAIT ...; UNCONN or CONNECTED for UDP; UNBOUND, BOUND
	Local, Peer netip.AddrPort
	RecvQ       int // bytes not yet read (accept queue length for LISTEN)
	SendQ       int // bytes not yet acknowledged (backlog for LISTEN)
	Ours        bool
	Owner       string
	Host        string // the lab host (network namespace) it lives in; "" for sockplay's own
	Opened      time.Time
	Age         time.Duration
	BytesIn     uint64
	BytesOut    uint64
	DgramsIn    uint64
	DgramsOut   uint64
	Timeout     time.Duration
	Impair      string
	Retrans     uint32        // TCP segments the kernel sent again (tcpi_total_retrans)
	RTT         time.Duration // TCP's smoothed round-trip time (tcpi_rtt); 0 before any
	RTTVar      time.Duration // its mean deviation (tcpi_rttvar)
	Cwnd        uint32        // the congestion window, in segments (tcpi_snd_cwnd)
	Capture     *CaptureInfo  // a packet socket's interface, filter and counters
	Waits       uint64        // calls on it that had to wait in the poller (the rest completed at once)
}

// Snapshot lists every descriptor the process has open, ordered by fd, with
// the kernel's view of each socket; sockets closed lately whose connection
// the kernel still keeps (TIME_WAIT ...) follow with FD -1.
func (t *Table) Snapshot() []Entry {
	ours := map[int]*Socket{}
	for _, s := range t.Sockets() {
		ours[s.FD] = s
	}
	entries := listDescriptors(ours)
	now := t.now()
	for i := range entries {
		e := &entries[i]
		e.Note = t.note(e.FD)
		s := ours[e.FD]
		if s == nil || e.Type != "socket" {
			continue
		}
		info := e.Socket
		if info == nil {
			info = &SocketInfo{}
			e.Socket = info
		}
		info.Kind, info.Ours, info.Owner, info.Host = s.Kind, true, s.Owner, s.netns.Name()
		info.Opened, info.Age = s.Opened, now.Sub(s.Opened)
		info.BytesIn, info.BytesOut, info.DgramsIn, info.DgramsOut = s.Counters()
		info.Timeout = s.Timeout()
		if im, st := s.Impairment(); im != nil {
			info.Impair = im.String()
			_ = st
		}
		socketState(s, info)
	}
	return append(entries, lingering(t.recentClosed(), now)...)
}

// Find returns the entry for fd in a snapshot.
func Find(entries []Entry, fd int) (Entry, bool) {
	for _, e := range entries {
		if e.FD == fd {
			return e, true
		}
	}
	return Entry{}, false
}

// fillUDPState names a datagram socket's state from its addresses.
func fillUDPState(s *Socket, info *SocketInfo) {
	info.Local, _ = s.LocalAddr()
	info.Peer, _ = s.PeerAddr()
	switch {
	case info.Peer.IsValid() && info.Peer.Port() != 0:
		info.State = "CONNECTED"
	case info.Local.Port() == 0:
		info.State = "UNBOUND"
	default:
		info.State = "UNCONN"
	}
}
