package sock

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Socket is one kernel socket. Its methods are safe to call from several
// goroutines; reads and accepts are serialized among themselves by the
// poller, as are writes.
type Socket struct {
	FD     int       // the kernel's fd number
	Kind   Kind      // tcp, udp, tcp6, udp6
	Owner  string    // the task that opened or accepted it
	Opened time.Time // when socket(2) or accept(2) returned it

	table *Table
	file  *os.File // keeps the fd registered with the poller; never call Fd()
	rc    syscall.RawConn

	closed    atomic.Bool
	listening atomic.Bool
	addrSt    atomic.Pointer[addrState] // made by the first call that needs it (addrs)
	direct    atomic.Int32              // system calls in progress outside the poller (side.attemptDirect)
	rd, wr    side                      // one reader (or accepter), one writer at a time
	timeout   atomic.Int64              // nanoseconds; 0 waits for ever

	bytesIn, bytesOut   atomic.Uint64
	dgramsIn, dgramsOut atomic.Uint64
	waits               atomic.Uint32 // operations that parked in the poller

	impair   atomic.Pointer[impairer]
	describe atomic.Pointer[describer] // a packet socket's CaptureInfo
	payloads atomic.Pointer[Describer] // renders payloads in the trace
	netns    *Netns                    // where the socket was made; nil: sockplay's own namespace
}

// Netns is the network namespace the socket lives in, nil for sockplay's
// own. A socket accepted from a listener lives where the listener does.
func (s *Socket) Netns() *Netns { return s.netns }

// NoWait, given to SetTimeout, makes every later operation on s try its
// system call once: one that would have to wait fails at once with
// ETIMEDOUT instead, as a non-blocking socket's EAGAIN (LuaSocket's
// timeout 0, which coroutine schedulers build on).
const NoWait time.Duration = -1

// SetTimeout bounds every later blocking operation on s; 0 removes the
// bound, NoWait allows no wait at all.
func (s *Socket) SetTimeout(d time.Duration) {
	if d < 0 && d != NoWait {
		d = 0
	}
	s.timeout.Store(int64(d))
}

// Timeout returns the bound set by SetTimeout.
func (s *Socket) Timeout() time.Duration { return time.Duration(s.timeout.Load()) }

// Closed reports whether Close has been called.
func (s *Socket) Closed() bool { return s.closed.Load() }

// control runs fn on the raw fd, failing with EBADF once s is closed.
func (s *Socket) control(op string, fn func(fd int) error) error {
	if s.closed.Load() {
		return withOp(op, ErrClosed)
	}
	var ferr error
	if err := s.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return s.pollError(op, nil, err)
	}
	return wrap(op, ferr)
}

// wait runs try on one side of s until it reports done, parking in the
// poller between tries (see side.run).
func (s *Socket) wait(ctx context.Context, op string, write bool, try func(fd int) bool) error {
	sd := &s.rd
	if write {
		sd = &s.wr
	}
	if err := sd.acquire(ctx, op); err != nil {
		return err
	}
	sd.try = try
	err := sd.run(op)
	sd.release()
	return err
}

// pollError names what woke a waiting operation.
func (s *Socket) pollError(op string, ctx context.Context, err error) error {
	switch {
	case s.closed.Load() || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed):
		return &Error{Op: op, Code: "EBADF", Msg: "bad file descriptor (closed while " + op + " waited)", Errno: unix.EBADF}
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ctx != nil && ctx.Err() != nil {
			return withOp(op, ErrCanceled)
		}
		return withOp(op, ErrTimeout)
	}
	return wrap(op, err)
}

// Bind gives s a local address.
func (s *Socket) Bind(addr netip.AddrPort) error {
	start := s.table.traceStart()
	sa, err := toSockaddr(s.Kind, addr)
	if err == nil {
		err = s.control("bind", func(fd int) error { return unix.Bind(fd, sa) })
	} else {
		err = wrap("bind", err)
	}
	if !start.IsZero() { // the event's arguments would allocate even untraced
		s.emit(start, Event{Call: "bind", Args: []string{addr.String()}}, 0, err)
	}
	return err
}

// Listen marks a stream socket passive with the given accept-queue length.
func (s *Socket) Listen(backlog int) error {
	start := s.table.traceStart()
	var err error
	if backlog < 0 {
		err = argError("listen", "backlog %d is negative", backlog)
	} else {
		err = s.control("listen", func(fd int) error { return unix.Listen(fd, backlog) })
	}
	if err == nil {
		s.listening.Store(true)
	}
	if !start.IsZero() {
		ev := Event{Call: "listen", Args: []string{strconv.Itoa(backlog)}}
		if limit := DefaultBacklog(); err == nil && backlog > limit {
			ev.Note = "the kernel caps the accept queue at net.core.somaxconn = " + strconv.Itoa(limit)
		}
		s.emit(start, ev, 0, err)
	}
	return err
}

// Accept waits for a connection on a listening socket and returns it with
// the peer's address. The new socket belongs to ctx's owner.
func (s *Socket) Accept(ctx context.Context) (*Socket, netip.AddrPort, error) {
	start := s.table.traceStart()
	sd := &s.rd
	var err error
	if s.Kind == Packet {
		err = capturesOwn("accept", s)
	} else {
		err = sd.acquire(ctx, "accept")
	}
	var nfd int
	var peer netip.AddrPort
	if err == nil {
		sd.op = opAccept
		err = sd.run("accept")
		nfd, peer = sd.n, s.addrs().from
		if err == nil && sd.err != nil {
			err = wrap("accept", sd.err)
		}
		sd.release()
	}
	if err != nil {
		s.emit(start, Event{Call: "accept"}, -1, err)
		return nil, netip.AddrPort{}, err
	}
	owner := ownerOf(ctx)
	if owner == "" {
		owner = s.Owner
	}
	c, err := s.table.adopt(nfd, s.Kind, owner, s.netns)
	if err != nil {
		unix.Close(nfd)
		return nil, netip.AddrPort{}, err
	}
	if !start.IsZero() {
		s.emit(start, Event{Call: "accept", Args: []string{peer.String()}}, nfd, nil)
	}
	return c, peer, nil
}

// Connect connects s to addr. For TCP it is a non-blocking connect(2)
// followed by a wait for writability and a look at SO_ERROR; for UDP it sets
// the default destination and filters what recvfrom sees.
func (s *Socket) Connect(ctx context.Context, addr netip.AddrPort) error {
	start := s.table.traceStart()
	err := s.connect(ctx, addr)
	if !start.IsZero() {
		s.emit(start, Event{Call: "connect", Args: []string{addr.String()}}, 0, err)
	}
	return err
}

func (s *Socket) connect(ctx context.Context, addr netip.AddrPort) error {
	sa, err := makeSockaddr(s.Kind, addr)
	if err != nil {
		return wrap("connect", err)
	}
	var cerr unix.Errno
	err = s.control("connect", func(fd int) error {
		for {
			if cerr = sysConnect(fd, &sa); cerr != unix.EINTR {
				return nil
			}
		}
	})
	if err != nil {
		return err
	}
	switch cerr {
	case 0:
		return nil
	case unix.EINPROGRESS, unix.EALREADY:
	default:
		return wrap("connect", cerr)
	}
	// The handshake is under way. connect(2) called again says how it
	// went: EALREADY while it goes on, 0 once done, or why it failed. It
	// is also what the kernel needs to see: until then it counts the
	// socket as still connecting, and a second Connect would succeed (to
	// any address) instead of saying EISCONN. On loopback the handshake
	// is usually over by the first try, which costs no wait.
	err = s.wait(ctx, "connect", true, func(fd int) bool {
		switch cerr = sysConnect(fd, &sa); cerr {
		case unix.EALREADY, unix.EINPROGRESS, unix.EINTR:
			return false
		case unix.EISCONN:
			cerr = 0
		}
		return true
	})
	if err != nil {
		return err
	}
	if cerr != 0 {
		return wrap("connect", cerr)
	}
	return nil
}

// Read reads whatever has arrived, up to len(p) bytes, waiting until at
// least one byte is there, as read(2) does. End of stream is ErrEOF. On a
// datagram socket it reads one datagram and reports truncation as EMSGSIZE
// together with the bytes that fit.
func (s *Socket) Read(ctx context.Context, p []byte) (int, error) {
	if !s.Kind.Stream() {
		n, _, size, err := s.recv(ctx, "read", p)
		if err == nil && size > n {
			err = truncated("read", size, n)
		}
		return n, err
	}
	start := s.table.traceStart()
	var n int
	sd := &s.rd
	err := sd.acquire(ctx, "read")
	if err == nil {
		n, err = s.read(len(p), p)
		sd.release()
	}
	if !start.IsZero() {
		s.emitData(start, Event{Call: "read", Args: []string{strconv.Itoa(len(p))}}, n, err, p[:n])
	}
	return n, err
}

const maxReadChunk = 64 * 1024

// ReadString is Read for callers that want the bytes as a string, at most
// max of them (up to 64 KiB). It waits holding no buffer: the bytes go
// through a pooled one, so an idle reader costs no buffer memory.
func (s *Socket) ReadString(ctx context.Context, max int) (string, error) {
	text, _, err := s.readCopy(ctx, max, true, nil)
	return text, err
}

// ReadAppend is ReadString appending to dst instead: for buffered readers
// (lines, delimiters) that keep what they read.
func (s *Socket) ReadAppend(ctx context.Context, max int, dst []byte) ([]byte, error) {
	_, dst, err := s.readCopy(ctx, max, false, dst)
	return dst, err
}

// readCopy reads through a pooled buffer and copies the bytes out into a
// new string (str) or onto dst.
func (s *Socket) readCopy(ctx context.Context, max int, str bool, dst []byte) (string, []byte, error) {
	if !s.Kind.Stream() {
		return s.copyDatagram(ctx, max, str, dst)
	}
	start := s.table.traceStart()
	sd := &s.rd
	if err := sd.acquire(ctx, "read"); err != nil {
		s.traceRead(start, max, 0, err, nil)
		return "", dst, err
	}
	sd.str, sd.dst = str, dst
	n, err := s.read(max, nil)
	text, dst := sd.text, sd.dst
	sd.release()
	if !start.IsZero() { // the bytes are copied only for a tracer
		var traced []byte
		if str {
			traced = []byte(text)
		} else {
			traced = dst[len(dst)-n:]
		}
		s.traceRead(start, max, n, err, traced)
	}
	return text, dst, err
}

// copyDatagram is readCopy on a datagram socket: one datagram, and EMSGSIZE
// after the bytes that fit when it was truncated.
func (s *Socket) copyDatagram(ctx context.Context, max int, str bool, dst []byte) (string, []byte, error) {
	var text string
	var n, size int
	var err error
	if str {
		text, _, size, err = s.RecvFromString(ctx, "read", max)
		n = len(text)
	} else {
		n, err = s.recvInto(ctx, "read", max, func(p []byte, _ netip.AddrPort, sz int) {
			dst, size = append(dst, p...), sz
		})
	}
	if err == nil && size > n {
		err = truncated("read", size, n)
	}
	return text, dst, err
}

// read is the stream read of Read and readCopy, on the read side the
// caller has acquired: into p, or when p is nil into a pooled buffer of max
// bytes (at most 64 KiB) that the side copies out of.
func (s *Socket) read(max int, p []byte) (int, error) {
	if p == nil {
		max = min(max, maxReadChunk)
	}
	if max <= 0 {
		return 0, nil
	}
	sd := &s.rd
	sd.op, sd.p, sd.max = opRead, p, max
	err := sd.run("read")
	n := sd.n
	switch {
	case err != nil:
		n = 0
	case sd.err != nil:
		err, n = wrap("read", sd.err), 0
	case n == 0:
		err = withOp("read", ErrEOF)
	}
	if n > 0 {
		s.bytesIn.Add(uint64(n))
	}
	return n, err
}

func (s *Socket) traceRead(start time.Time, max, n int, err error, data []byte) {
	if !start.IsZero() {
		s.emitData(start, Event{Call: "read", Args: []string{strconv.Itoa(max)}}, n, err, data)
	}
}

// RecvFromInto is RecvFrom for callers that copy the datagram out at once;
// see ReadString. use gets the bytes that fit in max, the sender and the
// datagram's real size.
func (s *Socket) RecvFromInto(ctx context.Context, max int, use func(p []byte, from netip.AddrPort, size int)) error {
	_, err := s.recvInto(ctx, "recvfrom", max, use)
	return err
}

// RecvFromString is RecvFrom for callers that want the datagram as a
// string, at most max bytes of it; see ReadString. op names the call in
// the trace ("recvfrom"). It returns the bytes, the sender and the
// datagram's real size, more than len(text) when it was truncated.
func (s *Socket) RecvFromString(ctx context.Context, op string, max int) (text string, from netip.AddrPort, size int, err error) {
	if max < 0 {
		max = 0
	}
	if max > maxReadChunk || s.Kind.Stream() {
		var n int
		p := make([]byte, max)
		n, from, size, err = s.recv2(ctx, op, p)
		return string(p[:n]), from, size, err
	}
	_, text, from, size, err = s.recvDatagram(ctx, op, nil, max, true, nil)
	return text, from, size, err
}

func (s *Socket) recvInto(ctx context.Context, op string, max int, use func([]byte, netip.AddrPort, int)) (int, error) {
	if max < 0 {
		max = 0 // a negative size would slice the pooled buffer out of range
	}
	if max > maxReadChunk || s.Kind.Stream() {
		// Large datagrams (and streams) take the plain path.
		p := make([]byte, max)
		n, from, size, err := s.recv2(ctx, op, p)
		if err != nil {
			return 0, err
		}
		use(p[:n], from, size)
		return n, nil
	}
	n, _, _, _, err := s.recvDatagram(ctx, op, nil, max, false, use)
	return n, err
}

// recv2 is RecvFrom without the stream special case.
func (s *Socket) recv2(ctx context.Context, op string, p []byte) (int, netip.AddrPort, int, error) {
	if s.Kind.Stream() {
		n, err := s.Read(ctx, p)
		from, _ := s.PeerAddr()
		return n, from, n, err
	}
	return s.recv(ctx, op, p)
}

func truncated(op string, size, n int) error {
	return &Error{Op: op, Code: "EMSGSIZE", Msg: "datagram truncated: " + strconv.Itoa(size) + " bytes, buffer holds " + strconv.Itoa(n), Errno: unix.EMSGSIZE}
}

// Write writes all of p. On a stream it loops over partial writes, waiting
// for buffer space; on a connected datagram socket it sends p as one
// datagram. It returns how many bytes went out, which is less than len(p)
// only with an error.
func (s *Socket) Write(ctx context.Context, p []byte) (int, error) {
	start := s.table.traceStart()
	if !s.Kind.Stream() {
		n, err := s.sendDatagram(ctx, "write", p, netip.AddrPort{})
		if !start.IsZero() {
			s.emitData(start, Event{Call: "write", Args: []string{strconv.Itoa(len(p))}}, n, err, p)
		}
		return n, err
	}
	var off int
	var err error
	if len(p) > 0 {
		sd := &s.wr
		if err = sd.acquire(ctx, "write"); err == nil {
			sd.op, sd.p = opWrite, p
			err = sd.run("write")
			off = sd.n
			if err == nil && sd.err != nil {
				err = wrap("write", sd.err)
			}
			sd.release()
		}
	}
	if off > 0 {
		s.bytesOut.Add(uint64(off))
	}
	if !start.IsZero() {
		s.emitData(start, Event{Call: "write", Args: []string{strconv.Itoa(len(p))}}, off, err, p[:off])
	}
	return off, err
}

// SendTo sends p as one datagram to addr.
func (s *Socket) SendTo(ctx context.Context, p []byte, addr netip.AddrPort) (int, error) {
	start := s.table.traceStart()
	var n int
	var err error
	if _, ferr := familyAddr(s.Kind, addr); ferr != nil {
		err = wrap("sendto", ferr)
	} else if s.Kind.Stream() {
		n, err = s.Write(ctx, p)
	} else {
		n, err = s.sendDatagram(ctx, "sendto", p, addr)
	}
	if !start.IsZero() {
		s.emitData(start, Event{Call: "sendto", Args: []string{strconv.Itoa(len(p)), addr.String()}}, n, err, p)
	}
	return n, err
}

// sendDatagram sends one datagram to addr (the connected peer when addr is
// not valid), through the impairment when one is set.
func (s *Socket) sendDatagram(ctx context.Context, op string, p []byte, addr netip.AddrPort) (int, error) {
	if im := s.impair.Load(); im != nil {
		var to *sockaddr
		if addr.IsValid() {
			sa, err := makeSockaddr(s.Kind, addr)
			if err != nil {
				return 0, wrap(op, err)
			}
			to = &sa // kept while the impairment holds the datagram
		}
		return im.send(ctx, s, op, p, to)
	}
	return s.rawSend(ctx, op, p, nil, addr)
}

// rawSend sends one datagram: to to when it is set (the impairment's
// own copy), else to addr when it is valid, else to the connected peer.
// addr is laid out in the socket's own buffer under the write side's
// lock, so a sendto allocates nothing.
func (s *Socket) rawSend(ctx context.Context, op string, p []byte, to *sockaddr, addr netip.AddrPort) (int, error) {
	sd := &s.wr
	if err := sd.acquire(ctx, op); err != nil {
		return 0, err
	}
	as := s.addrs()
	if to == nil && addr.IsValid() {
		sa, err := makeSockaddr(s.Kind, addr)
		if err != nil {
			sd.release()
			return 0, wrap(op, err)
		}
		as.dst, to = sa, &as.dst
	}
	sd.op, sd.p, as.to = opSend, p, to
	err := sd.run(op)
	if err == nil && sd.err != nil {
		err = wrap(op, sd.err)
	}
	sd.release()
	if err != nil {
		return 0, err
	}
	s.bytesOut.Add(uint64(len(p)))
	s.dgramsOut.Add(1)
	return len(p), nil
}

// RecvFrom receives one datagram into p and returns how many bytes were
// stored, the sender, and the datagram's real size, which is larger than n
// when the datagram was truncated. A zero-length datagram returns n == 0
// and no error. On a stream socket it reads like Read and returns the peer.
func (s *Socket) RecvFrom(ctx context.Context, p []byte) (n int, from netip.AddrPort, size int, err error) {
	if s.Kind.Stream() {
		start := s.table.traceStart()
		n, err = s.Read(ctx, p)
		from, _ = s.PeerAddr()
		if !start.IsZero() {
			s.emitData(start, Event{Call: "recvfrom", Args: []string{strconv.Itoa(len(p))}, Peer: from}, n, err, nil)
		}
		return n, from, n, err
	}
	return s.recv(ctx, "recvfrom", p)
}

func (s *Socket) recv(ctx context.Context, op string, p []byte) (n int, from netip.AddrPort, size int, err error) {
	n, _, from, size, err = s.recvDatagram(ctx, op, p, len(p), false, nil)
	return n, from, size, err
}

// recvDatagram receives one datagram with recvmsg(2): into p, or when p is
// nil into a pooled buffer of max bytes (at most 64 KiB) that is copied
// into a string (str) or shown to use before it goes back. It returns how
// many bytes were stored, the string, the sender, the datagram's real size
// (more than n when it was truncated), and the failure of the call, else
// use's error.
func (s *Socket) recvDatagram(ctx context.Context, op string, p []byte, max int, str bool, use func([]byte, netip.AddrPort, int)) (n int, text string, from netip.AddrPort, size int, err error) {
	start := s.table.traceStart()
	sd := &s.rd
	var traced []byte
	if s.Kind == Packet {
		err = capturesOwn(op, s)
	} else if err = sd.acquire(ctx, op); err == nil {
		as := s.addrs()
		sd.op, sd.p, sd.max, sd.str = opRecv, p, max, str
		as.use, as.keep = use, use != nil && !start.IsZero() // the bytes, for the trace
		as.from, as.size = netip.AddrPort{}, 0
		err = sd.run(op)
		if err == nil && sd.err != nil {
			err = wrap(op, sd.err)
		}
		n, text, from, size, traced = sd.n, sd.text, as.from, as.size, sd.dst
		as.use = nil
		sd.release()
		if err == nil {
			s.bytesIn.Add(uint64(n))
			s.dgramsIn.Add(1)
		}
	}
	if start.IsZero() {
		return n, text, from, size, err
	}
	if err != nil && !from.IsValid() {
		s.emitData(start, Event{Call: op, Args: []string{strconv.Itoa(max)}}, -1, err, nil)
		return 0, "", netip.AddrPort{}, 0, err
	}
	switch {
	case use != nil:
	case p != nil:
		traced = append([]byte(nil), p[:n]...)
	default:
		traced = []byte(text)
	}
	ev := Event{Call: op, Args: []string{strconv.Itoa(max)}, Peer: from}
	if size > n {
		ev.Note = "truncated: datagram of " + strconv.Itoa(size) + " bytes"
	}
	s.emitData(start, ev, n, nil, traced)
	return n, text, from, size, err
}

// Shutdown closes one or both directions: "r", "w" or "rw".
func (s *Socket) Shutdown(how string) error {
	start := s.table.traceStart()
	var h int
	var err error
	switch how {
	case "r", "read", "SHUT_RD":
		h = unix.SHUT_RD
	case "w", "write", "SHUT_WR":
		h = unix.SHUT_WR
	case "rw", "both", "SHUT_RDWR":
		h = unix.SHUT_RDWR
	default:
		err = argError("shutdown", "how must be \"r\", \"w\" or \"rw\", not %q", how)
	}
	if err == nil {
		err = s.control("shutdown", func(fd int) error { return unix.Shutdown(fd, h) })
	}
	if !start.IsZero() {
		s.emit(start, Event{Call: "shutdown", Args: []string{how}}, 0, err)
	}
	return err
}

// Close closes the fd. Operations blocked on it wake with EBADF. A second
// Close returns EBADF.
func (s *Socket) Close() error {
	start := s.table.traceStart()
	if s.closed.Swap(true) {
		err := withOp("close", ErrClosed)
		s.emit(start, Event{Call: "close"}, -1, err)
		return err
	}
	local, _ := s.LocalAddr()
	peer, _ := s.PeerAddr()
	s.table.forget(s, local, peer)
	if im := s.impair.Swap(nil); im != nil {
		im.stop(s)
	}
	for s.direct.Load() != 0 {
		runtime.Gosched() // a direct system call takes microseconds
	}
	err := wrap("close", s.file.Close())
	if !start.IsZero() {
		s.emit(start, Event{Call: "close", Local: local, Peer: peer}, 0, err)
	}
	return err
}

// LocalAddr is getsockname(2).
func (s *Socket) LocalAddr() (netip.AddrPort, error) { return s.addr("getsockname", false) }

// PeerAddr is getpeername(2); ENOTCONN when s is not connected.
func (s *Socket) PeerAddr() (netip.AddrPort, error) { return s.addr("getpeername", true) }

func (s *Socket) addr(op string, peer bool) (netip.AddrPort, error) {
	var ap netip.AddrPort
	var errno unix.Errno
	if err := s.rc.Control(func(fd uintptr) { ap, errno = sysSockname(int(fd), peer) }); err != nil {
		return netip.AddrPort{}, withOp(op, ErrClosed)
	}
	if errno != 0 {
		return netip.AddrPort{}, wrap(op, errno)
	}
	return ap, nil
}

// Counters returns the bytes and datagrams that went through sockplay.
func (s *Socket) Counters() (bytesIn, bytesOut, dgramsIn, dgramsOut uint64) {
	return s.bytesIn.Load(), s.bytesOut.Load(), s.dgramsIn.Load(), s.dgramsOut.Load()
}

// addrs returns the socket's addrState, making it the first time.
func (s *Socket) addrs() *addrState {
	if as := s.addrSt.Load(); as != nil {
		return as
	}
	s.addrSt.CompareAndSwap(nil, new(addrState))
	return s.addrSt.Load()
}

// Waits counts the operations on s that had to wait in the poller: a
// call the kernel could complete at once (data already queued, room in
// the send buffer, a connection in the accept queue) does not count.
func (s *Socket) Waits() uint64 { return uint64(s.waits.Load()) }

// capturesOwn is the failure of a read or accept on a packet socket: the
// capture that made it reads it, and a second reader would queue behind
// it for ever.
func capturesOwn(op string, s *Socket) error {
	return &Error{Op: op, Code: "EINVAL", Msg: "fd " + itoa(s.FD) + " is a packet capture: its capture reads it (cap:next())", Errno: unix.EINVAL}
}

// Listening reports whether Listen succeeded on s.
func (s *Socket) Listening() bool { return s.listening.Load() }
