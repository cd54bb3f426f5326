package sock

// Info is the kernel's view of one socket, as a Snapshot entry would show
// it, without listing the rest of the descriptor table.
func (s *Socket) Info() SocketInfo {
	info := SocketInfo{Kind: s.Kind, Ours: true, Owner: s.Owner, Host: s.netns.Name(), Opened: s.Opened, Timeout: s.Timeout()}
	if s.Closed() {
		info.State = "CLOSED"
		return info
	}
	info.BytesIn, info.BytesOut, info.DgramsIn, info.DgramsOut = s.Counters()
	info.Waits = s.Waits()
	socketState(s, &info)
	return info
}
