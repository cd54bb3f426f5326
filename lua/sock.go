package lua

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"sockplay/sock"
	"sockplay/sock/dns"
)

// The sock module: BSD-style calls on integer fds, and the same calls as
// methods of socket objects (sock.tcp(), sock.dial_tcp() ...).
//
// One error rule: a mistake in the script raises ("bad argument #2 to
// 'connect' (number expected, got nil)"); a failure of the world returns
// nil, message, code ("connection refused", "ECONNREFUSED").

const socketType = "sock.socket"

// defaultReadSize is what read(fd) asks for with no size: "whatever has
// arrived", up to this much.
const defaultReadSize = 64 * 1024

// readBuffer holds bytes read past what a line or delimiter read returned.
type readBuffer struct {
	s    *sock.Socket
	data []byte
}

// sockObj is the userdata behind a socket object.
type sockObj struct{ s *sock.Socket }

func openSock(h *Host) {
	fns := h.sockFuncs()
	m := h.newModule("sock", "sockets on real kernel fds: the BSD calls on integer fds, and socket objects", fns)
	h.addFuncs(m, []fn{
		{"tcp", h.objCtor(sock.TCP), "sock.tcp() -> socket  -- a new TCP/IPv4 socket object (s.fd is its fd)"},
		{"udp", h.objCtor(sock.UDP), "sock.udp() -> socket  -- a new UDP/IPv4 socket object"},
		{"tcp6", h.objCtor(sock.TCP6), "sock.tcp6() -> socket  -- a new TCP/IPv6 socket object"},
		{"udp6", h.objCtor(sock.UDP6), "sock.udp6() -> socket  -- a new UDP/IPv6 socket object"},
		{"wrap", h.onSock(h.pushObj), "sock.wrap(fd) -> socket  -- the object form of an fd"},
		{"listen_tcp", h.sockListenTCP, "sock.listen_tcp(host, port [, backlog]) -> socket | nil, msg, code  -- socket, reuseaddr, bind and listen in one call (backlog as in sock.listen)"},
		{"dial_tcp", h.sockDialTCP, "sock.dial_tcp(host, port [, timeout]) -> socket | nil, msg, code  -- resolve, socket and connect in one call"},
		{"bind_udp", h.sockBindUDP, "sock.bind_udp(host, port) -> socket | nil, msg, code  -- a UDP socket bound to host:port"},
		{"options", h.sockOptions, "sock.options() -> {name = description}  -- the socket options setopt and getopt know"},
	})
	h.addFuncs(m, h.netnsFuncs())
	h.openNetnsType()

	// Methods are the module's functions with the object in place of the
	// fd; accept returns an object rather than an fd.
	mt := h.L.NewTypeMetatable(socketType)
	methods := h.L.NewTable()
	h.addFuncs(methods, fns)
	h.addFuncs(methods, []fn{
		{"accept", h.onSock(h.acceptAs(true)), "s:accept() -> socket, host, port | nil, msg, code  -- accept a connection as a socket object"},
		{"impair", h.sockImpair, "s:impair(opts | nil)  -- see sock.impair"},
	})
	mt.RawSetString("__index", h.L.NewFunction(func(L *glua.LState) int {
		o := checkObj(L, 1)
		switch k := L.CheckString(2); k {
		case "fd":
			L.Push(glua.LNumber(o.s.FD))
		case "kind":
			L.Push(glua.LString(o.s.Kind.String()))
		default:
			L.Push(methods.RawGetString(k))
		}
		return 1
	}))
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString(SocketString(checkObj(L, 1).s)))
		return 1
	}))
	mt.RawSetString("__eq", h.L.NewFunction(func(L *glua.LState) int {
		a, b := checkObj(L, 1), checkObj(L, 2)
		L.Push(glua.LBool(a.s == b.s))
		return 1
	}))
}

func (h *Host) sockFuncs() []fn {
	return []fn{
		{"open", h.sockOpen, "sock.open(kind) -> fd | nil, msg, code  -- socket(2): kind is \"tcp\", \"udp\", \"tcp6\" or \"udp6\"; the fd is the kernel's"},
		{"bind", h.sockBind, "sock.bind(fd, host, port) -> true | nil, msg, code  -- give the socket a local address (port 0: any free port)"},
		{"listen", h.sockListen, "sock.listen(fd [, backlog]) -> true | nil, msg, code  -- make a TCP socket accept connections; backlog bounds the accept queue (default: the kernel's limit, net.core.somaxconn)"},
		{"accept", h.onSock(h.acceptAs(false)), "sock.accept(fd) -> cfd, host, port | nil, msg, code  -- wait for a connection; returns the new fd and the peer"},
		{"connect", h.sockConnect, "sock.connect(fd, host, port) -> true | nil, msg, code  -- connect (TCP: the handshake); a name is resolved and each address tried"},
		{"read", h.sockRead, "sock.read(fd [, n | \"l\" | \"L\" | \"a\"]) -> data | nil, msg, code  -- n: whatever has arrived, 1..n bytes (read(2)); \"l\"/\"L\": a line without/with its newline; \"a\": all until end of stream"},
		{"read_exact", h.sockReadExact, "sock.read_exact(fd, n) -> data | nil, msg, code, partial  -- exactly n bytes"},
		{"read_line", h.sockReadLine, "sock.read_line(fd [, keep_newline]) -> line | nil, msg, code, partial  -- one line; \\r\\n or \\n ends it"},
		{"read_until", h.sockReadUntil, "sock.read_until(fd, delim [, max]) -> data | nil, msg, code, partial  -- bytes up to and including delim (\"\\r\\n\\r\\n\" ends HTTP headers)"},
		{"read_all", h.onSock(h.readAll), "sock.read_all(fd) -> data | nil, msg, code, partial  -- everything until the peer closes"},
		{"write", h.sockWrite, "sock.write(fd, data) -> n | nil, msg, code, n_sent  -- send every byte (loops over partial writes); UDP: one datagram"},
		{"sendto", h.sockSendTo, "sock.sendto(fd, data, host, port) -> n | nil, msg, code  -- send one datagram to host:port"},
		{"recvfrom", h.sockRecvFrom, "sock.recvfrom(fd [, max]) -> data, host, port, full_size | nil, msg, code  -- one datagram and its sender; full_size is set when it was truncated to max"},
		{"shutdown", h.sockShutdown, "sock.shutdown(fd, \"r\" | \"w\" | \"rw\") -> true | nil, msg, code  -- close one direction; \"w\" sends FIN, the peer reads end of stream"},
		{"close", h.onSock(h.sockClose), "sock.close(fd) -> true | nil, msg, code  -- close the fd"},
		{"getsockname", h.onSock(addrOf((*sock.Socket).LocalAddr)), "sock.getsockname(fd) -> host, port | nil, msg, code  -- the local address"},
		{"getpeername", h.onSock(addrOf((*sock.Socket).PeerAddr)), "sock.getpeername(fd) -> host, port | nil, msg, code  -- the peer's address (ENOTCONN when not connected)"},
		{"setopt", h.sockSetopt, "sock.setopt(fd, name, value) -> true | nil, msg, code  -- set a socket option; sock.options() lists them"},
		{"getopt", h.sockGetopt, "sock.getopt(fd, name) -> value | nil, msg, code  -- read a socket option; \"original_dst\" returns host, port: where a NAT-redirected connection was going"},
		{"settimeout", h.sockSettimeout, "sock.settimeout(fd, seconds | nil) -> true  -- bound every later blocking call on fd; nil waits for ever"},
		{"poll", h.sockPoll, "sock.poll(fds, events [, timeout]) -> readable, writable  -- which fds are ready; events \"r\", \"w\" or \"rw\"; no 1024-fd limit"},
		{"impair", h.sockImpair, "sock.impair(fd, {loss=, duplicate=, reorder=, delay=, jitter=, seed=} | nil) -> true  -- drop, duplicate, reorder and delay this UDP socket's outgoing datagrams"},
		{"info", h.onSock(h.sockInfo), "sock.info(fd) -> {kind, state, laddr, raddr, recvq, sendq, waits, ..., impair, impair_stats} | nil, msg, code  -- the kernel's view of one socket; waits counts the calls that had to wait (the others completed at once); impair_stats = {sent, dropped, duplicated, reordered, delayed} while impaired"},
	}
}

// pushTrue is the end of a call that returns true or the failure triple.
func pushTrue(L *glua.LState, err error) int {
	if err != nil {
		return pushFail(L, err)
	}
	L.Push(glua.LTrue)
	return 1
}

// pushFail pushes the world-failure triple nil, message, code.
func pushFail(L *glua.LState, err error) int {
	L.Push(glua.LNil)
	L.Push(glua.LString(sock.Message(err)))
	L.Push(glua.LString(sock.Code(err)))
	return 3
}

// SocketString is a socket's short printed form:
// <tcp fd=7 ESTABLISHED 127.0.0.1:41234 -> 127.0.0.1:8080>
func SocketString(s *sock.Socket) string {
	info := s.Info()
	var b strings.Builder
	fmt.Fprintf(&b, "<%s fd=%d %s", s.Kind, s.FD, info.State)
	if info.Local.IsValid() && (info.Local.Port() != 0 || info.Peer.IsValid()) {
		b.WriteString(" " + info.Local.String())
	}
	if info.Peer.IsValid() {
		b.WriteString(" -> " + info.Peer.String())
	}
	b.WriteString(">")
	return b.String()
}

func checkObj(L *glua.LState, n int) *sockObj {
	if ud, ok := L.Get(n).(*glua.LUserData); ok {
		if o, ok := ud.Value.(*sockObj); ok {
			return o
		}
	}
	L.ArgError(n, "socket expected, got "+L.Get(n).Type().String())
	return nil
}

func (h *Host) newObj(L *glua.LState, s *sock.Socket) glua.LValue {
	ud := L.NewUserData()
	ud.Value = &sockObj{s: s}
	ud.Metatable = L.GetTypeMetatable(socketType)
	return ud
}

// checkSock reads argument n as an fd or a socket object. A wrong type
// raises; an fd that is not open is a failure of the world (EBADF).
func (h *Host) checkSock(L *glua.LState, n int) (*sock.Socket, error) {
	switch v := L.Get(n).(type) {
	case glua.LNumber:
		fd := int(v)
		if float64(fd) != float64(v) {
			L.ArgError(n, "fd must be an integer")
		}
		return h.table.Get(fd)
	case *glua.LUserData:
		if o, ok := v.Value.(*sockObj); ok {
			if o.s.Closed() {
				return nil, &sock.Error{Code: "EBADF", Msg: fmt.Sprintf("bad file descriptor (fd %d is closed)", o.s.FD), Errno: unix.EBADF}
			}
			return o.s, nil
		}
	}
	L.ArgError(n, "fd expected, got "+L.Get(n).Type().String())
	return nil, nil
}

// onSock makes the binding of a call whose only argument is the socket
// (an fd or a socket object): an fd that is not open is the failure EBADF.
// (Calls with more arguments check them all before they report EBADF, so
// that a mistake in the script raises whatever the fd.)
func (h *Host) onSock(f func(L *glua.LState, s *sock.Socket) int) glua.LGFunction {
	return func(L *glua.LState) int {
		s, err := h.checkSock(L, 1)
		if err != nil {
			return pushFail(L, err)
		}
		return f(L, s)
	}
}

func checkPort(L *glua.LState, n int) int {
	p := L.CheckInt(n)
	if p < 0 || p > 65535 {
		L.ArgError(n, fmt.Sprintf("port %d out of range 0-65535", p))
	}
	return p
}

// resolve turns host into the addresses to try for a socket of kind k
// that lives in ns (a lab host's names resolve there). A numeric address
// needs no lookup; a name blocks (other tasks run).
func (h *Host) resolve(L *glua.LState, ns *sock.Netns, k sock.Kind, host string, port int) ([]netip.AddrPort, error) {
	if ap, err := sock.ParseAddr(host, port); err == nil {
		return []netip.AddrPort{ap}, nil
	}
	if strings.ContainsAny(host, " /\\\t") || host == "" {
		return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_NONAME", Msg: fmt.Sprintf("%q is neither an address nor a host name", host)}
	}
	fam := dns.IPv4
	if k.IPv6() {
		fam = dns.IPv6
	}
	addrs, err := h.lookupIn(L, ns, host, fam)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_NODATA", Msg: "no address of the right family for " + host}
	}
	out := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		out[i] = netip.AddrPortFrom(a, uint16(port))
	}
	return out, nil
}

func (h *Host) sockOpen(L *glua.LState) int {
	kind, err := sock.ParseKind(L.CheckString(1))
	if err != nil {
		L.ArgError(1, err.Error())
	}
	return h.open(L, kind, false)
}

func (h *Host) objCtor(kind sock.Kind) glua.LGFunction {
	return func(L *glua.LState) int { return h.open(L, kind, true) }
}

// open is socket(2) for the task: the new fd, or its socket object.
func (h *Host) open(L *glua.LState, kind sock.Kind, object bool) int {
	s, err := h.table.Open(h.taskCtx(L), kind)
	if err != nil {
		return pushFail(L, err)
	}
	if object {
		return h.pushObj(L, s)
	}
	L.Push(glua.LNumber(s.FD))
	return 1
}

// pushObj pushes the object form of s.
func (h *Host) pushObj(L *glua.LState, s *sock.Socket) int {
	L.Push(h.newObj(L, s))
	return 1
}

func (h *Host) sockBind(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	host := L.CheckString(2)
	port := checkPort(L, 3)
	if err != nil {
		return pushFail(L, err)
	}
	addrs, err := h.resolve(L, s.Netns(), s.Kind, host, port)
	if err == nil {
		err = s.Bind(addrs[0])
	}
	if err != nil {
		return pushFail(L, err)
	}
	L.Push(glua.LTrue)
	return 1
}

func (h *Host) sockListen(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	backlog := L.OptInt(2, sock.DefaultBacklog())
	if backlog < 0 {
		L.ArgError(2, fmt.Sprintf("backlog %d is negative", backlog))
	}
	if err != nil {
		return pushFail(L, err)
	}
	return pushTrue(L, s.Listen(backlog))
}

// acceptAs is sock.accept, which returns the new fd, or s:accept(), which
// returns its object; then the peer's host and port.
func (h *Host) acceptAs(object bool) func(*glua.LState, *sock.Socket) int {
	return func(L *glua.LState, s *sock.Socket) int {
		var c *sock.Socket
		var peer netip.AddrPort
		err := h.sockCall(L, waitOn("accept", s.FD), func(ctx context.Context) (err error) {
			c, peer, err = s.Accept(ctx)
			return err
		})
		if err != nil {
			return pushFail(L, err)
		}
		if object {
			L.Push(h.newObj(L, c))
		} else {
			L.Push(glua.LNumber(c.FD))
		}
		L.Push(glua.LString(peer.Addr().String()))
		L.Push(glua.LNumber(peer.Port()))
		return 3
	}
}

// checkCancelled raises when a blocking call ended because the task itself
// was cancelled (killed, Ctrl-C, exit): the task must stop, not retry.
func (h *Host) checkCancelled(L *glua.LState, err error) {
	if err != nil && sock.Code(err) == "ECANCELED" && h.taskCtx(L).Err() != nil {
		h.raiseCancelled(L)
	}
}

func (h *Host) connect(L *glua.LState, s *sock.Socket, host string, port int) error {
	addrs, err := h.resolve(L, s.Netns(), s.Kind, host, port)
	if err != nil {
		h.checkCancelled(L, err)
		return err
	}
	return h.connectAny(L, s, addrs)
}

// connectAny connects s to the first of addrs that accepts.
func (h *Host) connectAny(L *glua.LState, s *sock.Socket, addrs []netip.AddrPort) (err error) {
	for _, a := range addrs {
		err = h.sockCall(L, waitDesc{op: "connect", fd: s.FD, detail: "to " + a.String()}, func(ctx context.Context) error {
			return s.Connect(ctx, a)
		})
		if err == nil {
			return nil
		}
	}
	return err
}

func (h *Host) sockConnect(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	host := L.CheckString(2)
	port := checkPort(L, 3)
	if err != nil {
		return pushFail(L, err)
	}
	return pushTrue(L, h.connect(L, s, host, port))
}

// buffer returns the read buffer of s, creating it.
func (h *Host) buffer(s *sock.Socket) *readBuffer {
	b := h.bufs[s.FD]
	if b == nil || b.s != s {
		b = &readBuffer{s: s}
		h.bufs[s.FD] = b
	}
	return b
}

// fill reads what has arrived (at most max bytes) and appends it to b.
func (h *Host) fill(L *glua.LState, b *readBuffer, max int) error {
	return h.sockCall(L, waitOn("read", b.s.FD), func(ctx context.Context) (err error) {
		b.data, err = b.s.ReadAppend(ctx, max, b.data)
		return err
	})
}

func (h *Host) sockRead(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	switch v := L.Get(2).(type) {
	case *glua.LNilType:
		if err != nil {
			return pushFail(L, err)
		}
		return h.readSome(L, s, defaultReadSize)
	case glua.LNumber:
		n := int(v)
		if n < 0 {
			L.ArgError(2, fmt.Sprintf("size %d is negative", n))
		}
		if err != nil {
			return pushFail(L, err)
		}
		return h.readSome(L, s, n)
	case glua.LString:
		if err != nil {
			return pushFail(L, err)
		}
		switch strings.TrimPrefix(string(v), "*") {
		case "l":
			return h.readDelim(L, s, "\n", false, 0)
		case "L":
			return h.readDelim(L, s, "\n", true, 0)
		case "a":
			return h.readAll(L, s)
		}
		L.ArgError(2, fmt.Sprintf("invalid format %q (want a size, \"l\", \"L\" or \"a\")", string(v)))
	default:
		L.ArgError(2, "size or format expected, got "+v.Type().String())
	}
	return 0
}

// readSome is read(2): what is buffered, else what arrives next, 1..n bytes.
func (h *Host) readSome(L *glua.LState, s *sock.Socket, n int) int {
	if n == 0 {
		L.Push(glua.LString(""))
		return 1
	}
	if len(h.bufs) > 0 { // bytes left over by read_line or read_until
		if b := h.bufs[s.FD]; b != nil && b.s == s && len(b.data) > 0 {
			k := min(n, len(b.data))
			L.Push(glua.LString(b.data[:k]))
			b.data = b.data[k:]
			return 1
		}
	}
	if !s.Kind.Stream() {
		data, _, _, err := h.recvDatagram(L, s, n)
		if err != nil && sock.Code(err) != "EMSGSIZE" {
			return pushFail(L, err)
		}
		L.Push(glua.LString(data))
		return 1
	}
	var data string
	err := h.sockCall(L, waitOn("read", s.FD), func(ctx context.Context) (err error) {
		data, err = s.ReadString(ctx, n)
		return err
	})
	if err != nil {
		return pushFail(L, err)
	}
	L.Push(glua.LString(data))
	return 1
}

// failPartial pushes nil, msg, code, partial: the bytes read before the
// failure are handed back, not lost.
func failPartial(L *glua.LState, err error, partial []byte) int {
	pushFail(L, err)
	L.Push(glua.LString(partial))
	return 4
}

func (h *Host) sockReadExact(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	n := L.CheckInt(2)
	if n < 0 {
		L.ArgError(2, fmt.Sprintf("size %d is negative", n))
	}
	if err != nil {
		return pushFail(L, err)
	}
	b := h.buffer(s)
	for len(b.data) < n {
		if err := h.fill(L, b, n-len(b.data)); err != nil {
			partial := b.data
			b.data = nil
			return failPartial(L, err, partial)
		}
	}
	L.Push(glua.LString(b.data[:n]))
	b.data = b.data[n:]
	return 1
}

func (h *Host) sockReadLine(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	keep := L.OptBool(2, false)
	if err != nil {
		return pushFail(L, err)
	}
	return h.readDelim(L, s, "\n", keep, 0)
}

func (h *Host) sockReadUntil(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	delim := L.CheckString(2)
	if delim == "" {
		L.ArgError(2, "delimiter must not be empty")
	}
	max := L.OptInt(3, 0)
	if max < 0 {
		L.ArgError(3, "max must not be negative")
	}
	if err != nil {
		return pushFail(L, err)
	}
	return h.readDelim(L, s, delim, true, max)
}

// errTooLong is read_until's answer when max bytes came without delim.
var errTooLong = &sock.Error{Code: "ENOBUFS", Msg: "delimiter not found within the size limit"}

// readDelim returns the bytes up to delim. For lines (delim "\n" and keep
// false) a trailing \r goes too. At end of stream a last line without its
// newline is returned like any other.
func (h *Host) readDelim(L *glua.LState, s *sock.Socket, delim string, keep bool, max int) int {
	b := h.buffer(s)
	d := []byte(delim)
	scanned := 0
	for {
		if i := bytes.Index(b.data[scanned:], d); i >= 0 {
			end := scanned + i + len(d)
			out := b.data[:end]
			b.data = b.data[end:]
			if !keep {
				out = bytes.TrimSuffix(out[:len(out)-len(d)], []byte("\r"))
			}
			L.Push(glua.LString(out))
			return 1
		}
		if max > 0 && len(b.data) >= max {
			partial := b.data
			b.data = nil
			return failPartial(L, errTooLong, partial)
		}
		scanned = max0(len(b.data) - len(d) + 1)
		err := h.fill(L, b, defaultReadSize)
		if err != nil {
			partial := b.data
			b.data = nil
			if sock.Code(err) == "EOF" && len(partial) > 0 && delim == "\n" {
				L.Push(glua.LString(partial)) // a last line with no newline
				return 1
			}
			return failPartial(L, err, partial)
		}
	}
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

// readAll reads until end of stream, which here is success.
func (h *Host) readAll(L *glua.LState, s *sock.Socket) int {
	b := h.buffer(s)
	for {
		err := h.fill(L, b, defaultReadSize)
		if err == nil {
			continue
		}
		data := b.data
		b.data = nil
		if sock.Code(err) == "EOF" {
			L.Push(glua.LString(data))
			return 1
		}
		return failPartial(L, err, data)
	}
}

func (h *Host) sockWrite(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	data := L.CheckString(2)
	if err != nil {
		return pushFail(L, err)
	}
	var n int
	err = h.sockCall(L, waitOn("write", s.FD), func(ctx context.Context) (err error) {
		n, err = s.Write(ctx, bytesOf(data))
		return err
	})
	if err != nil {
		pushFail(L, err)
		L.Push(glua.LNumber(n))
		return 4
	}
	L.Push(count(n))
	return 1
}

// count returns n as a Lua number. Counts below 4096 are boxed once and
// shared (Lua values are immutable, and hosts may share them): sock.write
// returns one on every call, and boxing it anew was an allocation each.
// Untouched entries cost no memory: the array lives in zeroed pages.
func count(n int) glua.LValue {
	if n < 0 || n >= len(counts) {
		return glua.LNumber(n)
	}
	if p := counts[n].Load(); p != nil {
		return *p
	}
	v := glua.LValue(glua.LNumber(n))
	counts[n].Store(&v)
	return v
}

var counts [4096]atomic.Pointer[glua.LValue]

// bytesOf views a Lua string's bytes without copying them, for the calls
// that only send them: sock never writes into what it is given to send,
// and keeps a copy of anything it holds on to (the trace, impairment).
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (h *Host) sockSendTo(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	data := L.CheckString(2)
	host := L.CheckString(3)
	port := checkPort(L, 4)
	if err != nil {
		return pushFail(L, err)
	}
	to, ok := h.peers.lookup(host, port)
	if !ok {
		addrs, err := h.resolve(L, s.Netns(), s.Kind, host, port)
		if err != nil {
			h.checkCancelled(L, err)
			return pushFail(L, err)
		}
		to = addrs[0]
		h.peers.add(host, to)
	}
	var n int
	err = h.sockCall(L, waitOn("sendto", s.FD), func(ctx context.Context) (err error) {
		n, err = s.SendTo(ctx, bytesOf(data), to)
		return err
	})
	if err != nil {
		return pushFail(L, err)
	}
	L.Push(count(n))
	return 1
}

// recvDatagram receives one datagram of at most max bytes.
func (h *Host) recvDatagram(L *glua.LState, s *sock.Socket, max int) (data string, from netip.AddrPort, size int, err error) {
	err = h.sockCall(L, waitOn("recvfrom", s.FD), func(ctx context.Context) (err error) {
		data, from, size, err = s.RecvFromString(ctx, "recvfrom", max)
		return err
	})
	return data, from, size, err
}

func (h *Host) sockRecvFrom(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	max := L.OptInt(2, defaultReadSize)
	if max < 0 {
		L.ArgError(2, fmt.Sprintf("size %d is negative", max))
	}
	if err != nil {
		return pushFail(L, err)
	}
	data, from, size, err := h.recvDatagram(L, s, max)
	if err != nil {
		return pushFail(L, err)
	}
	host, port := h.peers.values(from)
	L.Push(glua.LString(data))
	L.Push(host)
	L.Push(port)
	if size > len(data) {
		L.Push(glua.LNumber(size))
		return 4
	}
	return 3
}

func (h *Host) sockShutdown(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	how := L.OptString(2, "rw")
	switch how {
	case "r", "w", "rw":
	default:
		L.ArgError(2, fmt.Sprintf("how must be \"r\", \"w\" or \"rw\", not %q", how))
	}
	if err != nil {
		return pushFail(L, err)
	}
	return pushTrue(L, s.Shutdown(how))
}

func (h *Host) sockClose(L *glua.LState, s *sock.Socket) int {
	if b := h.bufs[s.FD]; b != nil && b.s == s {
		delete(h.bufs, s.FD)
	}
	return pushTrue(L, s.Close())
}

func pushAddr(L *glua.LState, ap netip.AddrPort, err error) int {
	if err != nil {
		return pushFail(L, err)
	}
	L.Push(glua.LString(ap.Addr().String()))
	L.Push(glua.LNumber(ap.Port()))
	return 2
}

// addrOf is getsockname or getpeername: the host and port get gives.
func addrOf(get func(*sock.Socket) (netip.AddrPort, error)) func(*glua.LState, *sock.Socket) int {
	return func(L *glua.LState, s *sock.Socket) int {
		ap, err := get(s)
		return pushAddr(L, ap, err)
	}
}

// boolOptions are the options Lua sees as booleans.
var boolOptions = map[string]bool{"reuseaddr": true, "reuseport": true, "nodelay": true, "keepalive": true, "broadcast": true}

func checkOption(L *glua.LState, n int) string {
	name := L.CheckString(n)
	if sock.OptionDoc(name) == "" {
		L.ArgError(n, fmt.Sprintf("unknown option %q (known: %s)", name, strings.Join(sock.OptionNames(), ", ")))
	}
	return name
}

func (h *Host) sockSetopt(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	name := checkOption(L, 2)
	if sock.OptionIsAddr(name) {
		L.ArgError(2, name+" is read-only")
	}
	var v int
	switch val := L.Get(3).(type) {
	case glua.LBool:
		if val {
			v = 1
		} else if name == "linger" {
			v = -1
		}
	case glua.LNumber:
		v = int(val)
	default:
		L.ArgError(3, "number or boolean expected, got "+val.Type().String())
	}
	if err != nil {
		return pushFail(L, err)
	}
	return pushTrue(L, s.SetOption(name, v))
}

func (h *Host) sockGetopt(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	name := checkOption(L, 2)
	if err != nil {
		return pushFail(L, err)
	}
	if sock.OptionIsAddr(name) {
		ap, err := s.OriginalDst()
		return pushAddr(L, ap, err)
	}
	v, err := s.Option(name)
	if err != nil {
		return pushFail(L, err)
	}
	switch {
	case boolOptions[name]:
		L.Push(glua.LBool(v != 0))
	case name == "linger" && v < 0:
		L.Push(glua.LFalse)
	default:
		L.Push(glua.LNumber(v))
	}
	return 1
}

func (h *Host) sockOptions(L *glua.LState) int {
	t := L.NewTable()
	for _, n := range sock.OptionNames() {
		t.RawSetString(n, glua.LString(sock.OptionDoc(n)))
	}
	L.Push(t)
	return 1
}

func (h *Host) sockSettimeout(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	var d time.Duration
	switch v := L.Get(2).(type) {
	case *glua.LNilType:
	case glua.LNumber:
		if v < 0 {
			L.ArgError(2, "seconds must not be negative")
		}
		d = time.Duration(float64(v) * float64(time.Second))
	default:
		L.ArgError(2, "number expected, got "+v.Type().String())
	}
	if err != nil {
		return pushFail(L, err)
	}
	s.SetTimeout(d)
	L.Push(glua.LTrue)
	return 1
}

func (h *Host) sockImpair(L *glua.LState) int {
	s, err := h.checkSock(L, 1)
	var im *sock.Impairment
	switch v := L.Get(2).(type) {
	case *glua.LNilType:
	case *glua.LTable:
		im = &sock.Impairment{}
		num := func(key string) float64 {
			switch x := v.RawGetString(key).(type) {
			case glua.LNumber:
				return float64(x)
			case *glua.LNilType:
				return 0
			default:
				L.ArgError(2, fmt.Sprintf("field %q: number expected, got %s", key, x.Type()))
			}
			return 0
		}
		v.ForEach(func(k, _ glua.LValue) {
			switch k.String() {
			case "loss", "duplicate", "reorder", "delay", "jitter", "seed":
			default:
				L.ArgError(2, fmt.Sprintf("unknown field %q (known: loss, duplicate, reorder, delay, jitter, seed)", k.String()))
			}
		})
		im.Loss, im.Duplicate, im.Reorder = num("loss"), num("duplicate"), num("reorder")
		for _, p := range []struct {
			name string
			v    float64
		}{{"loss", im.Loss}, {"duplicate", im.Duplicate}, {"reorder", im.Reorder}} {
			if p.v < 0 || p.v > 1 {
				L.ArgError(2, fmt.Sprintf("%s must be between 0 and 1, not %g", p.name, p.v))
			}
		}
		im.Delay = time.Duration(num("delay") * float64(time.Second))
		im.Jitter = time.Duration(num("jitter") * float64(time.Second))
		if im.Delay < 0 || im.Jitter < 0 {
			L.ArgError(2, "delay and jitter must not be negative")
		}
		im.Seed = uint64(num("seed"))
	default:
		L.ArgError(2, "table or nil expected, got "+v.Type().String())
	}
	if err != nil {
		return pushFail(L, err)
	}
	if s.Kind.Stream() {
		L.ArgError(1, fmt.Sprintf("impairment applies to udp sockets; fd %d is %s", s.FD, s.Kind))
	}
	return pushTrue(L, s.Impair(im))
}

func (h *Host) sockInfo(L *glua.LState, s *sock.Socket) int {
	info := s.Info()
	t := socketInfoTable(L, s.FD, &info)
	if im, st := s.Impairment(); im != nil {
		// What the impairment did, so a script can tell its own drops from
		// the kernel's (a full receive buffer also drops datagrams).
		t.RawSetString("impair", glua.LString(im.String()))
		stats := L.NewTable()
		stats.RawSetString("sent", glua.LNumber(st.Sent))
		stats.RawSetString("dropped", glua.LNumber(st.Dropped))
		stats.RawSetString("duplicated", glua.LNumber(st.Duplicated))
		stats.RawSetString("reordered", glua.LNumber(st.Reordered))
		stats.RawSetString("delayed", glua.LNumber(st.Delayed))
		t.RawSetString("impair_stats", stats)
	}
	L.Push(t)
	return 1
}

// sockPoll waits until one of the fds is ready. poll(2) has no FD_SETSIZE
// limit; the wait is cut into slices so that a kill or Ctrl-C ends it.
func (h *Host) sockPoll(L *glua.LState) int {
	list := L.CheckTable(1)
	events := L.OptString(2, "r")
	var ev int16
	for _, c := range events {
		switch c {
		case 'r':
			ev |= unix.POLLIN
		case 'w':
			ev |= unix.POLLOUT
		default:
			L.ArgError(2, fmt.Sprintf("events must be \"r\", \"w\" or \"rw\", not %q", events))
		}
	}
	timeout := -1.0
	if v, ok := L.Get(3).(glua.LNumber); ok {
		timeout = float64(v)
	}
	var values []glua.LValue
	var pfds []unix.PollFd
	buffered := map[int]bool{}
	for i := 1; i <= list.Len(); i++ {
		v := list.RawGetInt(i)
		var s *sock.Socket
		var err error
		switch x := v.(type) {
		case glua.LNumber:
			s, err = h.table.Get(int(x))
		case *glua.LUserData:
			o, ok := x.Value.(*sockObj)
			if !ok {
				L.ArgError(1, fmt.Sprintf("item %d: fd expected, got userdata", i))
			}
			s = o.s
		default:
			L.ArgError(1, fmt.Sprintf("item %d: fd expected, got %s", i, v.Type()))
		}
		if err != nil || s.Closed() {
			return pushFail(L, &sock.Error{Code: "EBADF", Msg: fmt.Sprintf("bad file descriptor (item %d is not an open socket)", i), Errno: unix.EBADF})
		}
		if b := h.bufs[s.FD]; b != nil && b.s == s && len(b.data) > 0 {
			buffered[len(pfds)] = true
		}
		values = append(values, v)
		pfds = append(pfds, unix.PollFd{Fd: int32(s.FD), Events: ev})
	}
	if len(buffered) > 0 {
		timeout = 0 // bytes already read wait: look, but do not wait
	}
	if _, err := h.pollFds(L, "poll", pfds, timeout); err != nil {
		return pushFail(L, &sock.Error{Op: "poll", Code: sock.Code(err), Msg: sock.Message(err)})
	}
	readable, writable := L.NewTable(), L.NewTable()
	for i, p := range pfds {
		if p.Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 && ev&unix.POLLIN != 0 || buffered[i] {
			readable.Append(values[i])
		}
		if p.Revents&(unix.POLLOUT|unix.POLLERR) != 0 && ev&unix.POLLOUT != 0 {
			writable.Append(values[i])
		}
	}
	L.Push(readable)
	L.Push(writable)
	return 2
}

// pollFds waits until one of fds is ready or timeout seconds pass
// (negative: no limit), letting the other tasks run; a kill or Ctrl-C
// ends the wait (the wait is cut into slices to notice). With timeout 0 it
// looks once, keeping the interpreter lock.
func (h *Host) pollFds(L *glua.LState, what string, fds []unix.PollFd, timeout float64) (int, error) {
	if timeout == 0 {
		for {
			n, err := unix.Poll(fds, 0)
			if err != unix.EINTR {
				return n, err
			}
		}
	}
	var n int
	var err error
	var cancelled bool
	h.waitWith(L, waitFor(what, fmt.Sprintf("%d fds", len(fds))), func(ctx context.Context) {
		deadline := time.Now().Add(time.Duration(timeout * float64(time.Second)))
		for {
			slice := 50
			if timeout >= 0 {
				slice = max(0, min(slice, int(time.Until(deadline).Milliseconds())+1))
			}
			n, err = unix.Poll(fds, slice)
			if err == unix.EINTR {
				err = nil
				continue
			}
			if err != nil || n > 0 {
				return
			}
			if ctx.Err() != nil {
				cancelled = true
				return
			}
			if timeout >= 0 && !time.Now().Before(deadline) {
				return
			}
		}
	})
	if cancelled {
		h.raiseCancelled(L)
	}
	return n, err
}

// The one-call helpers.

func (h *Host) sockListenTCP(L *glua.LState) int {
	host := L.CheckString(1)
	port := checkPort(L, 2)
	backlog := L.OptInt(3, sock.DefaultBacklog())
	if backlog < 0 {
		L.ArgError(3, "backlog must not be negative")
	}
	return h.openBound(L, sock.TCP, sock.TCP6, host, port,
		func(s *sock.Socket) error { return s.SetOption("reuseaddr", 1) },
		func(s *sock.Socket) error { return s.Listen(backlog) })
}

// openBound is the common part of the one-call helpers that bind: resolve
// host for the family it names (an IPv6 literal picks v6), then open,
// prepare, bind and finish.
func (h *Host) openBound(L *glua.LState, v4, v6 sock.Kind, host string, port int, prepare, finish func(*sock.Socket) error) int {
	kind := v4
	if strings.Contains(host, ":") {
		kind = v6
	}
	return h.openTo(L, kind, host, port, func(s *sock.Socket, addrs []netip.AddrPort) error {
		err := prepare(s)
		if err == nil {
			if err = s.Bind(addrs[0]); err == nil {
				err = finish(s)
			}
		}
		return err
	})
}

// openTo is the one-call helpers' common part: resolve host first, as a C
// program does with getaddrinfo (the trace shows the questions to the
// resolver before the socket they are for), open a socket of kind, and
// set it up for the addresses; on any failure the socket is closed again.
func (h *Host) openTo(L *glua.LState, kind sock.Kind, host string, port int, setup func(*sock.Socket, []netip.AddrPort) error) int {
	addrs, err := h.resolve(L, h.taskNetns(L), kind, host, port)
	if err != nil {
		return pushFail(L, err)
	}
	s, err := h.table.Open(h.taskCtx(L), kind)
	if err != nil {
		return pushFail(L, err)
	}
	if err := setup(s, addrs); err != nil {
		s.Close()
		return pushFail(L, err)
	}
	return h.pushObj(L, s)
}

func (h *Host) sockDialTCP(L *glua.LState) int {
	host := L.CheckString(1)
	port := checkPort(L, 2)
	timeout := float64(L.OptNumber(3, 0))
	if timeout < 0 {
		L.ArgError(3, "timeout must not be negative")
	}
	kind := sock.TCP
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && a.Is6() && !a.Is4In6() {
		kind = sock.TCP6
	}
	return h.openTo(L, kind, host, port, func(s *sock.Socket, addrs []netip.AddrPort) error {
		s.SetTimeout(time.Duration(timeout * float64(time.Second)))
		return h.connectAny(L, s, addrs)
	})
}

func (h *Host) sockBindUDP(L *glua.LState) int {
	host := L.CheckString(1)
	port := checkPort(L, 2)
	none := func(*sock.Socket) error { return nil }
	return h.openBound(L, sock.UDP, sock.UDP6, host, port, none, none)
}
