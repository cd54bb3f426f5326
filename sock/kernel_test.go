//go:build linux

package sock_test

// The fd numbers, states and queues sockplay shows are the kernel's: they
// are checked against /proc/self/fd and against ss(8) for the same sockets.

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockplay/sock"
)

var reSocketLink = regexp.MustCompile(`^socket:\[(\d+)\]$`)

// socketInode reads the inode from /proc/self/fd/N.
func socketInode(t testing.TB, fd int) (string, uint64) {
	t.Helper()
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatalf("readlink fd %d: %v", fd, err)
	}
	m := reSocketLink.FindStringSubmatch(target)
	if m == nil {
		t.Fatalf("/proc/self/fd/%d -> %q, want socket:[inode]", fd, target)
	}
	ino, _ := strconv.ParseUint(m[1], 10, 64)
	return target, ino
}

// ssState is ss's name for a state as the snapshot names it.
var ssState = map[string]string{
	"ESTABLISHED": "ESTAB", "LISTEN": "LISTEN", "CLOSE_WAIT": "CLOSE-WAIT",
	"FIN_WAIT1": "FIN-WAIT-1", "FIN_WAIT2": "FIN-WAIT-2", "TIME_WAIT": "TIME-WAIT",
	"LAST_ACK": "LAST-ACK", "SYN_SENT": "SYN-SENT", "SYN_RECV": "SYN-RECV", "CLOSING": "CLOSING",
	"UNCONN": "UNCONN", "CONNECTED": "ESTAB",
}

// crossCheck compares every open socket of tbl that ss can see (bound and
// listening or connected) with ss's line for it: fd, inode, state and both
// queues must agree. Queues move while a segment is in flight, so a
// mismatch is looked at again for a bounded time before it fails.
func crossCheck(t testing.TB, tbl *sock.Table) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		bad := crossMismatches(t, tbl)
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot and ss disagree:\n%s", strings.Join(bad, "\n"))
		}
		time.Sleep(10 * time.Millisecond) // a poll interval: queues settle on their own
	}
}

func crossMismatches(t testing.TB, tbl *sock.Table) []string {
	t.Helper()
	snap := tbl.Snapshot()
	// Ask ss only about the protocols the table has sockets of.
	var tcp, udp []ssSock
	var haveTCP, haveUDP bool
	for _, e := range snap {
		if e.FD >= 0 && e.Socket != nil && e.Socket.Ours {
			if e.Socket.Kind.Stream() && !haveTCP {
				tcp, haveTCP = runSS(t, true, "-tanpe"), true
			} else if !e.Socket.Kind.Stream() && !haveUDP {
				udp, haveUDP = runSS(t, true, "-uanpe"), true
			}
		}
	}
	var bad []string
	checked := 0
	for _, e := range snap {
		if e.FD < 0 || e.Socket == nil || !e.Socket.Ours {
			continue
		}
		info := e.Socket
		want, ok := ssState[info.State]
		if !ok {
			continue // UNBOUND, BOUND: ss does not list them
		}
		lines := tcp
		if !info.Kind.Stream() {
			lines = udp
		}
		var found []ssSock
		for _, l := range lines {
			if l.Local != info.Local.String() {
				continue
			}
			if info.Peer.IsValid() && info.Peer.Port() != 0 {
				if l.Peer != info.Peer.String() {
					continue
				}
			} else if !strings.HasSuffix(l.Peer, ":*") {
				continue
			}
			found = append(found, l)
		}
		if len(found) != 1 {
			bad = append(bad, "fd "+strconv.Itoa(e.FD)+": "+strconv.Itoa(len(found))+" ss lines for "+info.Local.String()+" "+info.Peer.String())
			continue
		}
		l := found[0]
		checked++
		if !l.HasFD(e.FD) || l.Inode() != e.Inode || l.State != want || l.RecvQ != info.RecvQ || l.SendQ != info.SendQ {
			bad = append(bad, "fd "+strconv.Itoa(e.FD)+" inode "+strconv.FormatUint(e.Inode, 10)+" "+info.State+
				" recvq "+strconv.Itoa(info.RecvQ)+" sendq "+strconv.Itoa(info.SendQ)+" vs ss: "+l.Line)
		}
	}
	if checked == 0 {
		bad = append(bad, "no socket was checked")
	}
	return bad
}

// The fd number sockplay reports is the kernel's: /proc/self/fd links it to
// the socket's inode, the snapshot agrees, and ss names this process and fd.
func TestFDIsTheKernels(t *testing.T) {
	e := newEnv(t)
	l, laddr := e.listener(sock.TCP, 4)
	c := e.dial(sock.TCP, laddr)
	s := e.accept(l)
	caddr, _ := c.LocalAddr()

	snap := e.tbl.Snapshot()
	inodes := map[int]uint64{}
	for _, x := range []*sock.Socket{l, c, s} {
		target, ino := socketInode(t, x.FD)
		inodes[x.FD] = ino
		ent, ok := sock.Find(snap, x.FD)
		if !ok {
			t.Fatalf("fd %d missing from the snapshot", x.FD)
		}
		if ent.Type != "socket" || ent.Target != target || ent.Inode != ino {
			t.Errorf("snapshot fd %d: type %q target %q inode %d; /proc says %q", x.FD, ent.Type, ent.Target, ent.Inode, target)
		}
		var st unix.Stat_t
		if err := unix.Fstat(x.FD, &st); err != nil || st.Ino != ino || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			t.Errorf("fstat(%d) = ino %d mode %o, %v; want a socket with inode %d", x.FD, st.Ino, st.Mode, err, ino)
		}
	}

	all := runSS(t, true, "-tanpe")
	for _, tc := range []struct {
		x           *sock.Socket
		local, peer string
		state       string
	}{
		{c, caddr.String(), laddr.String(), "ESTAB"},
		{s, laddr.String(), caddr.String(), "ESTAB"},
		{l, laddr.String(), "0.0.0.0:*", "LISTEN"},
	} {
		line := ssFind(t, all, tc.local, tc.peer)
		if !line.HasFD(tc.x.FD) {
			t.Errorf("ss -tanpe does not give pid=%d,fd=%d for %s: %s", os.Getpid(), tc.x.FD, tc.local, line.Line)
		}
		if line.Inode() != inodes[tc.x.FD] {
			t.Errorf("ss ino %d, /proc inode %d for fd %d", line.Inode(), inodes[tc.x.FD], tc.x.FD)
		}
		if line.State != tc.state {
			t.Errorf("ss state %q for fd %d, want %s", line.State, tc.x.FD, tc.state)
		}
	}

	listening := ssFind(t, runSS(t, true, "-tlnp"), laddr.String(), "")
	if !listening.HasFD(l.FD) || listening.State != "LISTEN" {
		t.Errorf("ss -tlnp: %s; want pid=%d,fd=%d", listening.Line, os.Getpid(), l.FD)
	}
}

// A listener with three connections not yet accepted: its accept queue is
// 3 in the snapshot and in ss, its backlog 16 in both.
func TestSnapshotAcceptQueue(t *testing.T) {
	e := newEnv(t)
	l, laddr := e.listener(sock.TCP, 16)
	for i := 0; i < 3; i++ {
		e.dial(sock.TCP, laddr)
	}
	// The client's connect returns when its side is established; the
	// listener queues the connection when the last ACK is processed.
	poll(t, "three connections in the accept queue", func() bool {
		return snapEntry(t, e.tbl, l.FD).Socket.RecvQ == 3
	})
	info := snapEntry(t, e.tbl, l.FD).Socket
	if info.State != "LISTEN" || info.RecvQ != 3 || info.SendQ != 16 || info.Local != laddr || info.Peer.IsValid() {
		t.Errorf("snapshot: %s recvq %d sendq %d local %v peer %v; want LISTEN 3 16 %v", info.State, info.RecvQ, info.SendQ, info.Local, info.Peer, laddr)
	}
	line := ssFind(t, runSS(t, true, "-tlnp"), laddr.String(), "")
	if line.State != "LISTEN" || line.RecvQ != 3 || line.SendQ != 16 || !line.HasFD(l.FD) {
		t.Errorf("ss -tlnp: %q; want LISTEN 3 16 fd=%d", line.Line, l.FD)
	}
	crossCheck(t, e.tbl)

	e.accept(l)
	if got := snapEntry(t, e.tbl, l.FD).Socket.RecvQ; got != 2 {
		t.Errorf("after one accept the queue holds %d, want 2", got)
	}
	if line := ssFind(t, runSS(t, true, "-tlnp"), laddr.String(), ""); line.RecvQ != 2 {
		t.Errorf("ss after one accept: %q, want Recv-Q 2", line.Line)
	}
}

// 33 bytes sent and not read are the receiver's RecvQ in the snapshot and
// in ss.
func TestSnapshotUnreadBytes(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	msg := []byte("thirty-three bytes, not read yet!")
	if len(msg) != 33 {
		t.Fatalf("len = %d", len(msg))
	}
	if _, err := c.Write(e.ctx, msg); err != nil {
		t.Fatal(err)
	}
	poll(t, "33 bytes in the receive queue", func() bool {
		return snapEntry(t, e.tbl, s.FD).Socket.RecvQ == 33
	})
	info := snapEntry(t, e.tbl, s.FD).Socket
	sl, _ := s.LocalAddr()
	sp, _ := s.PeerAddr()
	if info.State != "ESTABLISHED" || info.Local != sl || info.Peer != sp {
		t.Errorf("snapshot: %s %v -> %v", info.State, info.Local, info.Peer)
	}
	line := ssFind(t, runSS(t, true, "-tanpe"), sl.String(), sp.String())
	if line.State != "ESTAB" || line.RecvQ != 33 || !line.HasFD(s.FD) {
		t.Errorf("ss -tanpe: %q; want ESTAB, Recv-Q 33, fd=%d", line.Line, s.FD)
	}
	crossCheck(t, e.tbl)

	buf := make([]byte, 64)
	if n, err := s.Read(e.ctx, buf); n != 33 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if got := snapEntry(t, e.tbl, s.FD).Socket; got.RecvQ != 0 || got.BytesIn != 33 {
		t.Errorf("after reading: recvq %d, bytes in %d; want 0, 33", got.RecvQ, got.BytesIn)
	}
	if got := snapEntry(t, e.tbl, c.FD).Socket; got.BytesOut != 33 {
		t.Errorf("client bytes out %d, want 33", got.BytesOut)
	}
}

// The side that closes first keeps the connection in TIME_WAIT with no fd:
// the snapshot shows it with FD -1, and ss lists it.
func TestSnapshotTimeWait(t *testing.T) {
	e := newEnv(t)
	c, s := e.pair(sock.TCP)
	cl, _ := c.LocalAddr()
	cp, _ := c.PeerAddr()
	if _, err := c.Write(e.ctx, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := s.Read(e.ctx, buf); n != 3 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	_, err := s.Read(e.ctx, buf)
	wantErr(t, err, "read", "EOF")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var tw sock.Entry
	poll(t, "the active closer's side to reach TIME_WAIT", func() bool {
		for _, ent := range e.tbl.Snapshot() {
			if ent.FD == -1 && ent.Socket != nil && ent.Socket.Local == cl && ent.Socket.Peer == cp && ent.Socket.State == "TIME_WAIT" {
				tw = ent
				return true
			}
		}
		return false
	})
	if tw.Type != "socket" || tw.Target != "(closed)" || tw.Socket.Kind != sock.TCP || !tw.Socket.Ours || tw.Socket.BytesOut != 3 || tw.Socket.BytesIn != 0 {
		t.Errorf("TIME_WAIT entry = %+v %+v", tw, *tw.Socket)
	}
	for _, ent := range e.tbl.Snapshot() {
		if ent.FD == c.FD && ent.Socket != nil && ent.Socket.Ours {
			t.Errorf("the closed fd %d is still listed as ours", c.FD)
		}
	}

	line := ssFind(t, runSS(t, false, "-tan", "state", "time-wait"), cl.String(), cp.String())
	if line.RecvQ != 0 || line.SendQ != 0 {
		t.Errorf("ss state time-wait: %q", line.Line)
	}
	// Without the state filter the State column says it too.
	if line := ssFind(t, runSS(t, true, "-tan"), cl.String(), cp.String()); line.State != "TIME-WAIT" {
		t.Errorf("ss -tan: %q, want TIME-WAIT", line.Line)
	}
}

func TestSnapshotUDPStates(t *testing.T) {
	e := newEnv(t)
	unbound := e.open(sock.UDP)
	if got := snapEntry(t, e.tbl, unbound.FD).Socket.State; got != "UNBOUND" {
		t.Errorf("unbound udp: %s, want UNBOUND", got)
	}
	u, uaddr := e.bound(sock.UDP)
	info := snapEntry(t, e.tbl, u.FD).Socket
	if info.State != "UNCONN" || info.Local != uaddr || info.Kind != sock.UDP {
		t.Errorf("bound udp: %s %v, want UNCONN %v", info.State, info.Local, uaddr)
	}
	line := ssFind(t, runSS(t, true, "-uanpe"), uaddr.String(), "0.0.0.0:*")
	if line.State != "UNCONN" || !line.HasFD(u.FD) {
		t.Errorf("ss -uanpe: %q, want UNCONN fd=%d", line.Line, u.FD)
	}

	c, caddr := e.bound(sock.UDP)
	if err := c.Connect(e.ctx, uaddr); err != nil {
		t.Fatal(err)
	}
	info = snapEntry(t, e.tbl, c.FD).Socket
	if info.State != "CONNECTED" || info.Local != caddr || info.Peer != uaddr {
		t.Errorf("connected udp: %s %v -> %v, want CONNECTED %v -> %v", info.State, info.Local, info.Peer, caddr, uaddr)
	}
	line = ssFind(t, runSS(t, true, "-uanpe"), caddr.String(), uaddr.String())
	if line.State != "ESTAB" || !line.HasFD(c.FD) {
		t.Errorf("ss -uanpe: %q, want ESTAB fd=%d", line.Line, c.FD)
	}

	// An unread datagram: the queue is the kernel's memory count, the same
	// number in /proc/net/udp (the snapshot's source) and in ss.
	if _, err := c.Write(e.ctx, []byte("queued")); err != nil {
		t.Fatal(err)
	}
	poll(t, "the datagram in the receive queue", func() bool {
		return snapEntry(t, e.tbl, u.FD).Socket.RecvQ > 0
	})
	crossCheck(t, e.tbl)
}

func TestSnapshotTCPStates(t *testing.T) {
	e := newEnv(t)
	unbound := e.open(sock.TCP)
	info := snapEntry(t, e.tbl, unbound.FD).Socket
	if info.State != "UNBOUND" || info.Kind != sock.TCP || !info.Ours {
		t.Errorf("unbound tcp: %+v", *info)
	}
	b, baddr := e.bound(sock.TCP)
	if info := snapEntry(t, e.tbl, b.FD).Socket; info.State != "BOUND" || info.Local != baddr {
		t.Errorf("bound tcp: %s %v, want BOUND %v", info.State, info.Local, baddr)
	}
	c, s := e.pair(sock.TCP)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(e.ctx, make([]byte, 1))
	wantErr(t, err, "read", "EOF")
	if got := snapEntry(t, e.tbl, c.FD).Socket.State; got != "CLOSE_WAIT" {
		t.Errorf("after the peer's FIN: %s, want CLOSE_WAIT", got)
	}
	crossCheck(t, e.tbl)
}

func TestSnapshotTCP6(t *testing.T) {
	needIPv6(t)
	e := newEnv(t)
	l, laddr := e.listener(sock.TCP6, 8)
	c := e.dial(sock.TCP6, laddr)
	e.accept(l)
	if info := snapEntry(t, e.tbl, c.FD).Socket; info.State != "ESTABLISHED" || info.Peer != laddr || info.Kind != sock.TCP6 {
		t.Errorf("tcp6 client: %+v", *info)
	}
	crossCheck(t, e.tbl)
}

// The snapshot lists every descriptor, not only sockets.
func TestSnapshotDescriptors(t *testing.T) {
	e := newEnv(t)
	l, laddr := e.listener(sock.TCP, 4)
	c := e.dial(sock.TCP, laddr)
	s := e.accept(l)
	u, _ := e.bound(sock.UDP)
	if err := u.Impair(&sock.Impairment{Loss: 0.25, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	s.Owner = "acceptor"

	snap := e.tbl.Snapshot()
	for i := 1; i < len(snap); i++ {
		if snap[i].FD >= 0 && snap[i].FD <= snap[i-1].FD {
			t.Fatalf("snapshot not ordered by fd: %d after %d", snap[i].FD, snap[i-1].FD)
		}
	}
	for _, fd := range []int{0, 1, 2} {
		ent, ok := sock.Find(snap, fd)
		if !ok {
			t.Errorf("fd %d missing from the snapshot", fd)
			continue
		}
		target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if ent.Target != target || ent.Type == "" || ent.Socket != nil {
			t.Errorf("fd %d: %+v; /proc says %q", fd, ent, target)
		}
	}
	epolls := 0
	for _, ent := range snap {
		if ent.Type == "epoll" {
			epolls++
			if ent.Target != "anon_inode:[eventpoll]" {
				t.Errorf("epoll entry target %q", ent.Target)
			}
		}
	}
	if epolls == 0 {
		t.Error("no epoll entry: the Go runtime's poller should be there")
	}

	for _, x := range []*sock.Socket{l, c, s, u} {
		ent, _ := sock.Find(snap, x.FD)
		// socket(2) and accept4(2) with SOCK_NONBLOCK|SOCK_CLOEXEC; fdinfo
		// says 02004002.
		if ent.Flags != "O_RDWR|O_NONBLOCK|O_CLOEXEC" {
			t.Errorf("fd %d flags %q, want O_RDWR|O_NONBLOCK|O_CLOEXEC", x.FD, ent.Flags)
		}
		info := ent.Socket
		if info == nil || !info.Ours || info.Kind != x.Kind || info.Owner != x.Owner || info.Timeout != ioTimeout || !info.Opened.Equal(x.Opened) || info.Age < 0 {
			t.Errorf("fd %d socket info %+v", x.FD, info)
		}
	}
	if ent, _ := sock.Find(snap, s.FD); ent.Socket.Owner != "acceptor" {
		t.Errorf("owner %q", ent.Socket.Owner)
	}
	if ent, _ := sock.Find(snap, u.FD); ent.Socket.Impair != "loss=25% seed=7" {
		t.Errorf("impair %q, want %q", ent.Socket.Impair, "loss=25% seed=7")
	}
	if _, ok := sock.Find(snap, 1<<20); ok {
		t.Error("Find found an fd that is not there")
	}
	// A flag word renders the way strace writes it.
	for flags, want := range map[uint64]string{
		0:        "O_RDONLY",
		02004002: "O_RDWR|O_NONBLOCK|O_CLOEXEC",
		unix.O_WRONLY | unix.O_APPEND | unix.O_CLOEXEC: "O_WRONLY|O_APPEND|O_CLOEXEC",
		unix.O_RDONLY | unix.O_DIRECT:                  "O_RDONLY|O_DIRECT",
		unix.O_WRONLY | unix.O_SYNC:                    "O_WRONLY|O_SYNC",
	} {
		if got := sock.FlagNames(flags); got != want {
			t.Errorf("FlagNames(%#o) = %q, want %q", flags, got, want)
		}
	}
}

// Info is one socket's snapshot entry without the rest of the table.
func TestInfo(t *testing.T) {
	e := newEnv(t)
	l, laddr := e.listener(sock.TCP, 16)
	c := e.dial(sock.TCP, laddr)
	poll(t, "the connection in the accept queue", func() bool { return l.Info().RecvQ == 1 })
	for _, x := range []*sock.Socket{l, c} {
		got, want := x.Info(), *snapEntry(t, e.tbl, x.FD).Socket
		got.Age, want.Age = 0, 0
		if got != want {
			t.Errorf("fd %d: Info() = %+v\nsnapshot   %+v", x.FD, got, want)
		}
	}
	if info := l.Info(); info.State != "LISTEN" || info.SendQ != 16 || info.Local != laddr {
		t.Errorf("listener Info() = %+v", info)
	}
	c.Close()
	if info := c.Info(); info.State != "CLOSED" || info.Kind != sock.TCP {
		t.Errorf("closed Info() = %+v", info)
	}
}
