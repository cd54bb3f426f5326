package sock

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// side is one direction of a socket: reads and accepts, or writes and
// connects. Its lock admits one goroutine at a time, and only that
// goroutine touches the wait state below it, so every wait reuses the same
// fields and one function bound when the socket was made, instead of
// allocating closures: a stream read or write allocates nothing here.
type side struct {
	s     *Socket
	write bool
	armed atomic.Bool // a deadline may be set on the file
	fired atomic.Bool // wake has finished
	lock  waitLock
	step  func(fd uintptr) bool // stepOnce, bound once: what the poller calls

	// The wait in progress: owned by the lock holder.
	ctx       context.Context
	parker    Parker
	try       func(fd int) bool // opFunc's operation
	stop      func() bool       // the context.AfterFunc armed for this wait
	op        uint8
	parked    bool
	first     bool
	cancelled bool
	watched   bool // parker, a CancelWatcher, watches the context instead
	direct    bool // the last operation did not wait: try the next one directly
	noWait    bool // the socket allows no wait and the first try failed
	str       bool // opRead: copy what was read into text, else onto dst

	// The built-in operations' arguments and results.
	p    []byte // opRead, opRecv: read into this (nil: a pooled buffer); opWrite, opSend: the bytes
	max  int    // opRead, opRecv: the pooled buffer's size
	text string
	dst  []byte
	n    int   // opRead, opRecv: bytes read; opWrite: written so far
	err  error // the system call's failure

}

// addrState is what the calls of a datagram or listening socket pass
// between the caller and the side's try: addresses, mostly. A stream that
// only reads and writes never needs it, so a socket makes it the first
// time one of those calls runs, and 10,000 connections carry none. The
// read side's fields and the write side's are each touched only by the
// holder of that side's lock.
type addrState struct {
	from netip.AddrPort                    // opRecv: the sender; opAccept: the new connection's peer
	size int                               // opRecv: the datagram's full size
	use  func([]byte, netip.AddrPort, int) // opRecv: sees the pooled buffer's bytes
	keep bool                              // opRecv: copy the bytes onto dst too, for the trace

	to  *sockaddr // opSend: the destination; nil: the connected peer
	dst sockaddr  // opSend: where a sendto's destination is laid out
}

// What a wait runs on each try.
const (
	opFunc   = iota // side.try
	opRead          // side.tryRead
	opWrite         // side.tryWrite
	opSend          // side.trySend
	opRecv          // side.tryRecv
	opAccept        // side.tryAccept
)

func (sd *side) init(s *Socket, write bool) {
	sd.s, sd.write = s, write
	sd.step = sd.stepOnce
}

// deadline sets the file's read or write deadline.
func (sd *side) deadline(t time.Time) {
	if sd.write {
		sd.s.file.SetWriteDeadline(t)
	} else {
		sd.s.file.SetReadDeadline(t)
	}
}

// acquire takes the side for the caller. A caller that must queue behind
// another waiter parks first: it is about to wait.
func (sd *side) acquire(ctx context.Context, op string) error {
	if sd.s.closed.Load() {
		return withOp(op, ErrClosed)
	}
	var parker Parker
	if !sd.lock.tryLock() {
		if parker = parkerOf(ctx); parker != nil {
			parker.Park()
		}
		if err := sd.lock.lock(ctx); err != nil {
			if parker != nil {
				parker.Unpark()
			}
			return withOp(op, err.(*Error))
		}
	}
	sd.ctx, sd.parker, sd.parked = ctx, parker, parker != nil
	sd.n, sd.err, sd.op = 0, nil, opFunc
	return nil
}

// release gives the side up. The caller's Parker is told last, after the
// side lock is free, so a woken caller never holds the side while it waits
// for its own lock.
func (sd *side) release() {
	p := sd.parker
	sd.ctx, sd.parker, sd.try = nil, nil, nil
	sd.dst, sd.p, sd.text = nil, nil, ""
	sd.lock.unlock()
	if p != nil {
		p.Unpark()
	}
}

// attemptDirect makes the operation's system call without the poller's
// bookkeeping (the fd's lock, the readiness reset): a direct call saves
// a few hundred instructions when the kernel can complete it, and costs
// one failed system call more when it cannot, so run tries it only while
// this side's operations complete without waiting. Close waits for a
// direct call in progress before it lets the fd go, so the number cannot
// be closed, and reused by a new socket, under the call.
func (sd *side) attemptDirect() bool {
	s := sd.s
	s.direct.Add(1)
	done := false
	if !s.closed.Load() {
		if directHook != nil {
			directHook()
		}
		done = sd.attempt(s.FD)
	}
	s.direct.Add(-1)
	if !done {
		sd.direct = false
	}
	return done
}

// directHook, when a test sets it, runs between a direct call's check that
// the socket is open and the call: it widens that window.
var directHook func()

// run runs try until it reports done, parking in the poller between tries.
// Everything happens inside one raw call: the poller forgets readiness it
// saw before the call began, so the first try must run inside it, and a
// try that fails arms the wait (parker, deadline, cancel) before control
// goes back to the poller. An operation that completes at once costs one
// system call, one that must wait two. While this side's operations
// complete at once, run first makes the call directly (attemptDirect).
func (sd *side) run(op string) error {
	if sd.direct && sd.attemptDirect() {
		return nil
	}
	sd.first, sd.cancelled, sd.stop, sd.watched, sd.noWait = true, false, nil, false, false
	sd.fired.Store(false)
	if sd.armed.Load() {
		// A deadline left by an earlier wait (a timeout that did not fire,
		// a cancel) would fail even the first try.
		sd.deadline(time.Time{})
		sd.armed.Store(false)
	}
	var err error
	if sd.write {
		err = sd.s.rc.Write(sd.step)
	} else {
		err = sd.s.rc.Read(sd.step)
	}
	woken := false
	if sd.watched {
		woken = !sd.parker.(CancelWatcher).UnwatchCancel(sd)
	}
	if sd.stop != nil {
		woken = !sd.stop()
	}
	if woken {
		// The cancel ran or is running: let it finish, or its deadline in
		// the past would poison the next operation on s.
		for !sd.fired.Load() {
			runtime.Gosched()
		}
	}
	// The next operation goes straight to the system call if this one did
	// not have to wait.
	sd.direct = sd.first
	switch {
	case err != nil:
		return sd.s.pollError(op, sd.ctx, err)
	case sd.cancelled:
		return withOp(op, ErrCanceled)
	case sd.noWait:
		return withOp(op, ErrTimeout)
	}
	return nil
}

// attempt makes the operation's system call once: done, or EAGAIN.
func (sd *side) attempt(fd int) bool {
	switch sd.op {
	case opRead:
		return sd.tryRead(fd)
	case opWrite:
		return sd.tryWrite(fd)
	case opSend:
		return sd.trySend(fd)
	case opRecv:
		return sd.tryRecv(fd)
	case opAccept:
		return sd.tryAccept(fd)
	}
	return sd.try(fd)
}

func (sd *side) stepOnce(fd uintptr) bool {
	if sd.attempt(int(fd)) {
		return true
	}
	if !sd.first {
		return false
	}
	sd.first = false
	ctx := sd.ctx
	if ended(ctx) {
		sd.cancelled = true
		return true
	}
	if sd.s.timeout.Load() < 0 { // NoWait: report the wait instead of making it
		sd.noWait = true
		return true
	}
	sd.s.waits.Add(1) // about to park (unless a cancel is found below)
	if !sd.parked {
		sd.parked = true
		if sd.parker = parkerOf(ctx); sd.parker != nil {
			sd.parker.Park()
		}
	}
	// Deadlines are armed only when needed: with no timeout the poller
	// waits for ever as it is, at no cost.
	if d := sd.s.timeout.Load(); d > 0 {
		sd.armed.Store(true)
		sd.deadline(time.Now().Add(time.Duration(d)))
	}
	if ctx != nil && ctx.Done() != nil {
		if cw, ok := sd.parker.(CancelWatcher); ok {
			sd.watched = true
			cw.WatchCancel(sd)
			if ended(ctx) { // ended before the watch began
				sd.cancelled = true
				return true
			}
		} else {
			sd.stop = context.AfterFunc(ctx, sd.wake)
		}
	}
	return false
}

// Wake ends the wait in progress (for a CancelWatcher).
func (sd *side) Wake() { sd.wake() }

// wake ends a wait whose context ended: a deadline in the past wakes it.
func (sd *side) wake() {
	sd.armed.Store(true)
	sd.deadline(time.Unix(1, 0))
	sd.fired.Store(true)
}

// buffer is what a read's try reads into: sd.p, or when that is nil a
// pooled buffer of sd.max bytes (returned as bp, for the caller to put
// back once the bytes are copied out).
func (sd *side) buffer() (p []byte, bp *[]byte) {
	if sd.p != nil {
		return sd.p, nil
	}
	bp = getReadBuf()
	return (*bp)[:sd.max], bp
}

// copyOut copies what was read into a pooled buffer: into sd.text when
// the caller wants a string, else onto sd.dst.
func (sd *side) copyOut(b []byte) {
	if sd.str {
		sd.text = string(b)
	} else {
		sd.dst = append(sd.dst, b...)
	}
}

// tryRead is read(2) into sd.p, or into a pooled buffer whose bytes are
// copied out at once, so that a reader holds no buffer while it waits.
func (sd *side) tryRead(fd int) bool {
	p, bp := sd.buffer()
	if bp != nil {
		defer putReadBuf(bp)
	}
	for {
		n, errno := sysRead(fd, p)
		switch errno {
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		case 0:
		default:
			sd.err = errno
		}
		sd.n = n
		if n > 0 && bp != nil {
			sd.copyOut(p[:n])
		}
		return true
	}
}

// tryWrite writes sd.p from sd.n on, as far as the buffer takes it.
func (sd *side) tryWrite(fd int) bool {
	for sd.n < len(sd.p) {
		n, errno := sysWrite(fd, sd.p[sd.n:])
		switch errno {
		case 0:
			sd.n += n
			continue
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		sd.err = errno
		return true
	}
	return true
}

// tryAccept accepts one connection: its fd in sd.n, the peer in from.
func (sd *side) tryAccept(fd int) bool {
	as := sd.s.addrs()
	for {
		nfd, peer, errno := sysAccept(fd)
		switch errno {
		case unix.EAGAIN:
			return false
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case 0:
			sd.n, as.from = nfd, peer
		default:
			sd.err = errno
		}
		return true
	}
}

// trySend sends sd.p as one datagram to the addrState's to.
func (sd *side) trySend(fd int) bool {
	to := sd.s.addrs().to
	for {
		switch errno := sysSend(fd, sd.p, to); errno {
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		case 0:
			sd.n = len(sd.p)
		default:
			sd.err = errno
		}
		return true
	}
}

// tryRecv receives one datagram with recvmsg(2), into sd.p or into a
// pooled buffer of sd.max bytes that is copied out (into sd.text when
// sd.str, else onto sd.dst) or shown to the addrState's use before it
// goes back.
func (sd *side) tryRecv(fd int) bool {
	as := sd.s.addrs()
	p, bp := sd.buffer()
	if bp != nil {
		defer putReadBuf(bp)
	}
	for {
		size, flags, from, errno := sysRecvmsg(fd, p, truncFlag)
		switch errno {
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		case 0:
		default:
			sd.err = errno
			return true
		}
		n := min(size, len(p))
		if flags&unix.MSG_TRUNC != 0 && size <= len(p) {
			size = len(p) + 1 // the kernel said truncated but not by how much
		}
		if !from.IsValid() {
			from, _ = sd.s.PeerAddr()
		}
		sd.n, as.size, as.from = n, size, from
		switch {
		case as.use != nil:
			as.use(p[:n], from, size)
			if as.keep {
				sd.dst = append(sd.dst, p[:n]...)
			}
		case bp != nil:
			sd.copyOut(p[:n])
		}
		return true
	}
}

// sysRead and sysWrite are read(2) and write(2) returning the errno as a
// number: the hot paths compare it against EAGAIN and EINTR on every
// call, which through the error interface costs a runtime call each.
//
// The calls on sockplay's sockets are raw system calls, which skip telling
// Go's scheduler that the thread may block (entersyscall and exitsyscall,
// several hundred instructions a round trip): the fds are non-blocking, so
// these calls return at once, having copied at most a socket buffer.
func sysRead(fd int, p []byte) (int, unix.Errno)  { return sysRW(unix.SYS_READ, fd, p) }
func sysWrite(fd int, p []byte) (int, unix.Errno) { return sysRW(unix.SYS_WRITE, fd, p) }

func sysRW(trap uintptr, fd int, p []byte) (int, unix.Errno) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// ended reports whether ctx is done, without Err's lock.
func ended(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	done := ctx.Done()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// readBufs lends read buffers for the moment bytes are copied out of them.
var readBufs = sync.Pool{New: func() any { b := make([]byte, maxReadChunk); return &b }}

// lastBuf keeps one returned buffer at hand: a read's try takes and gives
// back a buffer every time, and one atomic swap is several times cheaper
// than sync.Pool's pinning on each side.
var lastBuf atomic.Pointer[[]byte]

func getReadBuf() *[]byte {
	if bp := lastBuf.Swap(nil); bp != nil {
		return bp
	}
	return readBufs.Get().(*[]byte)
}

func putReadBuf(bp *[]byte) {
	if !lastBuf.CompareAndSwap(nil, bp) {
		readBufs.Put(bp)
	}
}
