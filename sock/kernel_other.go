//go:build unix && !linux

package sock

import "time"

// Without /proc only sockplay's own sockets are listed, with what
// getsockname and getpeername tell.
func listDescriptors(ours map[int]*Socket) []Entry {
	var entries []Entry
	for fd := range ours {
		entries = append(entries, Entry{FD: fd, Type: "socket"})
	}
	return entries
}

func socketState(s *Socket, info *SocketInfo) {
	if !s.Kind.Stream() {
		fillUDPState(s, info)
		return
	}
	info.Local, _ = s.LocalAddr()
	info.Peer, _ = s.PeerAddr()
	switch {
	case s.Listening():
		info.State = "LISTEN"
	case info.Peer.IsValid():
		info.State = "ESTABLISHED"
	case info.Local.Port() != 0:
		info.State = "BOUND"
	default:
		info.State = "UNBOUND"
	}
}

func lingering([]closedConn, time.Time) []Entry { return nil }

// FlagNames is not available without /proc.
func FlagNames(uint64) string { return "" }
