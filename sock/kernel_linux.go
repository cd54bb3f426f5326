//go:build linux

package sock

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// tcpStates are the kernel's TCP state codes (include/net/tcp_states.h),
// as /proc/net/tcp and TCP_INFO report them.
var tcpStates = map[uint8]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
	6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}

// listDescriptors reads /proc/self/fd and /proc/self/fdinfo.
func listDescriptors(ours map[int]*Socket) []Entry {
	dir, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var entries []Entry
	udp := map[*Netns]map[uint64]procSocket{} // each namespace has its own /proc/net
	for _, d := range dir {
		fd, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + d.Name())
		if err != nil {
			continue // closed between ReadDir and Readlink, often ReadDir's own fd
		}
		e := Entry{FD: fd, Target: target, Type: descriptorType(target)}
		e.Inode = linkInode(target)
		if e.Inode == 0 {
			var st unix.Stat_t
			if unix.Fstat(fd, &st) == nil {
				e.Inode = st.Ino
			}
		}
		e.Flags, e.Pos = fdinfo(fd)
		if e.Type == "socket" {
			if s := ours[fd]; s != nil && !s.Kind.Stream() && s.Kind != Packet {
				if udp[s.netns] == nil {
					udp[s.netns] = readProcNet(s.netns, "udp", "udp6")
				}
				if ps, ok := udp[s.netns][e.Inode]; ok {
					e.Socket = &SocketInfo{RecvQ: ps.rxQueue, SendQ: ps.txQueue}
				}
			}
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].FD < entries[j].FD })
	return entries
}

func descriptorType(target string) string {
	switch {
	case strings.HasPrefix(target, "socket:"):
		return "socket"
	case strings.HasPrefix(target, "pipe:"):
		return "pipe"
	case strings.HasPrefix(target, "anon_inode:"):
		name := strings.Trim(strings.TrimPrefix(target, "anon_inode:"), "[]")
		switch name {
		case "eventpoll":
			return "epoll"
		case "eventfd", "timerfd", "signalfd", "pidfd":
			return name
		}
		return "anon"
	case strings.HasPrefix(target, "/dev/pts/"), strings.HasPrefix(target, "/dev/tty"), target == "/dev/console":
		return "tty"
	case target == "/dev/null":
		return "null"
	case target == "/dev/net/tun":
		return "tun" // a TUN or TAP device's descriptor (a lab's link)
	case strings.HasPrefix(target, "net:["):
		return "netns" // a network namespace held open (a lab's host)
	}
	return "file"
}

// linkInode reads the inode from a "socket:[123]" or "pipe:[123]" link.
func linkInode(target string) uint64 {
	i := strings.IndexByte(target, '[')
	if i < 0 || !strings.HasSuffix(target, "]") {
		return 0
	}
	n, _ := strconv.ParseUint(target[i+1:len(target)-1], 10, 64)
	return n
}

// fdinfo reads the open file description's flags and offset.
func fdinfo(fd int) (string, int64) {
	data, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return "", 0
	}
	var flags uint64
	var pos int64
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "flags":
			flags, _ = strconv.ParseUint(v, 8, 64)
		case "pos":
			pos, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return FlagNames(flags), pos
}

// FlagNames renders open(2) flags as O_RDWR|O_NONBLOCK|O_CLOEXEC.
func FlagNames(flags uint64) string {
	var names []string
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		names = append(names, "O_RDONLY")
	case unix.O_WRONLY:
		names = append(names, "O_WRONLY")
	case unix.O_RDWR:
		names = append(names, "O_RDWR")
	}
	for _, f := range []struct {
		bit  uint64
		name string
	}{{unix.O_APPEND, "O_APPEND"}, {unix.O_NONBLOCK, "O_NONBLOCK"}, {unix.O_CLOEXEC, "O_CLOEXEC"}, {unix.O_DIRECT, "O_DIRECT"}, {unix.O_LARGEFILE, "O_LARGEFILE"}, {unix.O_SYNC, "O_SYNC"}} {
		// O_LARGEFILE is 0 in x/sys on 64-bit targets: a zero bit would match
		// every descriptor.
		if f.bit != 0 && flags&f.bit == f.bit {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, "|")
}

// socketState asks the kernel about one of sockplay's sockets directly:
// TCP_INFO for the state (and the accept queue of a listener), SIOCINQ and
// SIOCOUTQ for the queues of a connection.
func socketState(s *Socket, info *SocketInfo) {
	if s.Kind == Packet {
		captureState(s, info)
		return
	}
	if !s.Kind.Stream() {
		fillUDPState(s, info)
		return
	}
	info.Local, _ = s.LocalAddr()
	info.Peer, _ = s.PeerAddr()
	var ti *unix.TCPInfo
	var inq, outq int
	s.rc.Control(func(fd uintptr) {
		ti, _ = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		inq, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ)
		outq, _ = unix.IoctlGetInt(int(fd), unix.TIOCOUTQ)
	})
	if ti == nil {
		info.State = "?"
		return
	}
	info.State = tcpStates[ti.State]
	info.Retrans = ti.Total_retrans
	info.RTT = time.Duration(ti.Rtt) * time.Microsecond
	info.RTTVar = time.Duration(ti.Rttvar) * time.Microsecond
	info.Cwnd = ti.Snd_cwnd
	switch info.State {
	case "LISTEN":
		// For a listener the kernel puts the accept queue's length in
		// tcpi_unacked and the backlog in tcpi_sacked, as ss shows them.
		info.RecvQ, info.SendQ = int(ti.Unacked), int(ti.Sacked)
	case "CLOSE":
		if info.Local.Port() == 0 {
			info.State = "UNBOUND"
		} else {
			info.State = "BOUND"
		}
	default:
		info.RecvQ, info.SendQ = inq, outq
	}
}

// procSocket is a line of /proc/net/{tcp,udp}[6].
type procSocket struct {
	local, peer      netip.AddrPort
	state            uint8
	txQueue, rxQueue int
	inode            uint64
}

// readProcNet indexes /proc/net/<name> lines of namespace ns (nil:
// sockplay's own) by inode; connections with no socket left (TIME_WAIT)
// have inode 0 and are kept under keys counting down from the maximum so
// none overwrites another.
func readProcNet(ns *Netns, names ...string) map[uint64]procSocket {
	if ns == nil {
		return readProcNetAt("/proc/net/", names)
	}
	// /proc/net is the process's namespace; /proc/thread-self/net is the
	// thread's, which Do moves into ns.
	var out map[uint64]procSocket
	if ns.Do(func() error { out = readProcNetAt("/proc/thread-self/net/", names); return nil }) != nil {
		return map[uint64]procSocket{}
	}
	return out
}

func readProcNetAt(dir string, names []string) map[uint64]procSocket {
	out := map[uint64]procSocket{}
	orphan := ^uint64(0)
	for _, name := range names {
		f, err := os.Open(dir + name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			ps, ok := parseProcNetLine(sc.Text())
			if !ok {
				continue
			}
			key := ps.inode
			if key == 0 {
				key = orphan
				orphan--
			}
			out[key] = ps
		}
		f.Close()
	}
	return out
}

func parseProcNetLine(line string) (procSocket, bool) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return procSocket{}, false
	}
	var ps procSocket
	var err error
	if ps.local, err = parseHexAddr(f[1]); err != nil {
		return ps, false
	}
	if ps.peer, err = parseHexAddr(f[2]); err != nil {
		return ps, false
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return ps, false
	}
	ps.state = uint8(st)
	tx, rx, _ := strings.Cut(f[4], ":")
	t, _ := strconv.ParseUint(tx, 16, 32)
	r, _ := strconv.ParseUint(rx, 16, 32)
	ps.txQueue, ps.rxQueue = int(t), int(r)
	ps.inode, _ = strconv.ParseUint(f[9], 10, 64)
	return ps, true
}

// parseHexAddr reads "0100007F:1F90": the address as 32-bit words in host
// byte order, then the port.
func parseHexAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 { // each word is little-endian on x86 and arm64
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var a netip.Addr
	if len(raw) == 4 {
		a = netip.AddrFrom4([4]byte(raw))
	} else {
		a = netip.AddrFrom16([16]byte(raw)).Unmap()
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// lingering finds the kernel's remains of connections sockplay closed:
// FIN_WAIT2, TIME_WAIT and the like live on with no fd.
func lingering(closed []closedConn, now time.Time) []Entry {
	var conns []closedConn
	for _, c := range closed {
		if c.kind.Stream() && c.peer.IsValid() {
			conns = append(conns, c)
		}
	}
	if len(conns) == 0 {
		return nil
	}
	procs := map[*Netns]map[uint64]procSocket{}
	var out []Entry
	for _, c := range conns {
		if procs[c.netns] == nil {
			procs[c.netns] = readProcNet(c.netns, "tcp", "tcp6")
		}
		for _, ps := range procs[c.netns] {
			if ps.local != c.local || ps.peer != c.peer {
				continue
			}
			if ps.inode != 0 {
				continue // an fd still holds it (the same 4-tuple reused)
			}
			out = append(out, Entry{FD: -1, Type: "socket", Target: "(closed)", Socket: &SocketInfo{
				Kind: c.kind, State: tcpStates[ps.state], Local: c.local, Peer: c.peer,
				RecvQ: ps.rxQueue, SendQ: ps.txQueue, Ours: true, Owner: c.owner, Host: c.netns.Name(),
				Opened: c.closedAt, Age: now.Sub(c.closedAt), BytesIn: c.bytesIn, BytesOut: c.bytesOut,
			}})
			break
		}
	}
	return out
}
