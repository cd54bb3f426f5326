package sock

import "context"

// Adopt records fd, a socket the caller made itself (non-blocking and
// close-on-exec, like every socket here), in the table as a socket of the
// given kind, registered with Go's poller. From then on the table owns it:
// it shows in the snapshot, and Close, CloseOwned and CloseAll close it.
// args describe it in the trace: socket(packet, lo) = 9. Package wire
// adopts its packet captures this way. A socket made inside a namespace
// (Netns.Do) is adopted under a context that names it (NetnsOf), so that
// the views show its host.
func (t *Table) Adopt(ctx context.Context, fd int, kind Kind, args ...string) (*Socket, error) {
	start := t.traceStart()
	s, err := t.adopt(fd, kind, ownerOf(ctx), NetnsOf(ctx))
	if err != nil {
		return nil, err
	}
	if !start.IsZero() {
		t.emit(start, Event{FD: -1, Kind: kind, Call: "socket", Args: append([]string{kind.String()}, args...), Ret: fd, Owner: s.Owner})
	}
	return s, nil
}

// Await runs try on s's fd until it reports done, waiting in the poller
// for readability (or writability, with write) whenever it reports not
// done, under ctx and s's timeout, as s's own operations do. It is for
// sockets whose reads sock does not know how to make (a packet capture's).
// Closing s wakes it with EBADF.
func (s *Socket) Await(ctx context.Context, op string, write bool, try func(fd int) bool) error {
	return s.wait(ctx, op, write, try)
}

// Control runs fn on s's fd (a setsockopt, say), failing with EBADF once
// s is closed.
func (s *Socket) Control(op string, fn func(fd int) error) error {
	return s.control(op, fn)
}

// CaptureInfo is what a packet socket shows in the snapshot: where it
// captures, its filter, and the kernel's counters for it.
type CaptureInfo struct {
	Iface    string // the interface, with its namespace if not this process's
	Filter   string // the filter as the user wrote it ("" for this process's sockets)
	Received uint64 // packets the kernel passed to the socket (PACKET_STATISTICS)
	Dropped  uint64 // packets the kernel dropped for want of buffer space
}

// describer reports a packet socket's CaptureInfo.
type describer func() CaptureInfo

// SetCaptureInfo gives s, a packet socket, the function the snapshot asks
// for its CaptureInfo.
func (s *Socket) SetCaptureInfo(fn func() CaptureInfo) {
	d := describer(fn)
	s.describe.Store(&d)
}

// captureState fills info for a packet socket.
func captureState(s *Socket, info *SocketInfo) {
	info.State = "CAPTURING"
	if d := s.describe.Load(); d != nil {
		ci := (*d)()
		info.Capture = &ci
	}
}
