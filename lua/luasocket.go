package lua

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"sockplay/sock"
	"sockplay/sock/dns"
)

// The socket.core module: LuaSocket 3's TCP and UDP objects, written on
// sockplay's sockets, so that LuaSocket programs (and Copas, and LuaSocket's
// own socket.http, smtp and ftp) run unchanged. LuaSocket's reference
// manual is the contract: its objects' classes and tostring forms, its
// return shapes (the partial results, the index a failed send reached),
// its error strings ("timeout", "closed", "connection refused"), its
// timeouts. The sockets are ordinary entries of the host's table, opened
// under the calling task, so fds(), the trace and .watch see them.
//
// Unlike sockplay's own functions, a method used on a closed object does
// not raise: it fails as LuaSocket's does ("closed"), since programs
// written for LuaSocket expect that.

// lsClass is a LuaSocket object's class: a TCP socket is a master until
// bind and listen make it a server or connect makes it a client.
type lsClass uint8

const (
	tcpMaster lsClass = iota
	tcpClient
	tcpServer
	udpUnconnected
	udpConnected
	lsClasses
)

var lsClassNames = [lsClasses]string{"tcp{master}", "tcp{client}", "tcp{server}", "udp{unconnected}", "udp{connected}"}

func (c lsClass) String() string { return lsClassNames[c] }
func (c lsClass) tcp() bool      { return c <= tcpServer }

// lsFamily is an object's address family: unspecified until the first
// bind or connect of a socket.tcp() or socket.udp() picks one.
type lsFamily uint8

const (
	famUnspec lsFamily = 0
	famInet   lsFamily = 4
	famInet6  lsFamily = 6
)

func familyOf(a netip.Addr) lsFamily {
	if a.Is4() {
		return famInet
	}
	return famInet6
}

// lsSocket is the userdata behind a LuaSocket object.
type lsSocket struct {
	class  lsClass
	family lsFamily
	s      *sock.Socket // nil before a lazy socket's first bind or connect, and after close
	// LuaSocket's two timeouts, in seconds, negative meaning none: block
	// bounds each call, total the whole call (both count from its start).
	block, total float64
	start        time.Time // when the method being run was called
	buf          []byte    // bytes received and not yet handed out (TCP)
	received     int64     // bytes handed out, sent, for getstats
	sent         int64
	birthday     time.Time
	pending      []lsOptionValue // options set before the socket existed
	closed       bool            // close was called
}

// lsReadSize bounds one read from the kernel into an object's buffer.
const lsReadSize = 64 * 1024

// luasocketState is the host's LuaSocket machinery, made when socket.core
// is opened.
type luasocketState struct {
	meta    [lsClasses]*glua.LTable // each class's metatable
	tryMeta *glua.LTable            // marks the errors newtry raises
	core    *glua.LTable            // the socket.core table
}

// errNoSocket is a call on an object that has no descriptor: LuaSocket's
// invalid socket, which its I/O reports as "closed".
var errNoSocket = &sock.Error{Code: "EBADF", Msg: "bad file descriptor", Errno: unix.EBADF}

// lsIOError is the text LuaSocket gives an I/O failure.
func lsIOError(err error) string {
	switch sock.Code(err) {
	case "EOF", "EBADF", "EPIPE", "ECONNRESET", "ECONNABORTED":
		return "closed"
	}
	return lsStrerror(err)
}

// lsStrerror is LuaSocket's socket_strerror: its own words for the common
// failures, the C library's strerror for the rest.
func lsStrerror(err error) string {
	switch sock.Code(err) {
	case "ETIMEDOUT":
		return "timeout"
	case "ECONNREFUSED":
		return "connection refused"
	case "EADDRINUSE":
		return "address already in use"
	case "EISCONN":
		return "already connected"
	case "EACCES":
		return "permission denied"
	case "ECONNRESET", "ECONNABORTED":
		return "closed"
	case "EOF":
		return "closed"
	}
	return strerror(err)
}

// strerror is the C library's text for err's errno ("Bad file
// descriptor"): Go's table holds the same words in lower case.
func strerror(err error) string {
	var se *sock.Error
	if errors.As(err, &se) && se.Errno != 0 {
		return capitalize(se.Errno.Error())
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return capitalize(errno.Error())
	}
	return sock.Message(err)
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// gaiError is getaddrinfo's failure as LuaSocket words it for connect and
// bind (its own table for the common codes, gai_strerror's for the rest).
func gaiError(err error) string {
	switch sock.Code(err) {
	case "EAI_NONAME", "EAI_NODATA":
		return "host or service not provided, or not known"
	case "EAI_AGAIN":
		return "temporary failure in name resolution"
	case "EAI_FAIL":
		return "non-recoverable failure in name resolution"
	case "EAI_SERVICE":
		return "service not supported for socket type"
	case "EAI_ADDRFAMILY":
		return "Address family for hostname not supported"
	}
	return sock.Message(err)
}

var (
	errAddrFamily = &sock.Error{Op: "getaddrinfo", Code: "EAI_ADDRFAMILY", Msg: "address family for hostname not supported"}
	errService    = &sock.Error{Op: "getaddrinfo", Code: "EAI_SERVICE", Msg: "service not supported for socket type"}
)

// markStart starts the clock of a call's timeouts.
func (o *lsSocket) markStart() { o.start = time.Now() }

// retry is how long the next wait of the call may last, as LuaSocket's
// timeout_getretry says; sock.NoWait when the call may not wait at all,
// 0 when it may wait for ever.
func (o *lsSocket) retry() time.Duration {
	var t float64
	switch {
	case o.block < 0 && o.total < 0:
		return 0
	case o.block < 0:
		t = o.total - time.Since(o.start).Seconds()
	case o.total < 0:
		t = o.block - time.Since(o.start).Seconds()
	default:
		t = min(o.block, o.total-time.Since(o.start).Seconds())
	}
	d := time.Duration(t * float64(time.Second))
	if d <= 0 {
		return sock.NoWait
	}
	return d
}

// lsCall runs one socket call of o bounded by its timeouts, the way every
// socket call of a task runs: it keeps the interpreter lock unless it has
// to wait.
func (h *Host) lsCall(L *glua.LState, o *lsSocket, op string, fn func(ctx context.Context) error) error {
	if o.s == nil {
		return errNoSocket
	}
	o.s.SetTimeout(o.retry())
	return h.sockCall(L, waitOn(op, o.s.FD), fn)
}

// lsOpen gives o a descriptor of the family fam, replacing the one it has
// (LuaSocket creates a socket.tcp()'s socket on its first bind or
// connect, and anew when a connect moves on to an address of the other
// family). IPv6 sockets are IPv6-only, as LuaSocket makes them.
func (h *Host) lsOpen(L *glua.LState, o *lsSocket, fam lsFamily) error {
	if o.s != nil {
		o.s.Close()
		o.s = nil
	}
	kind := sock.UDP
	switch {
	case o.class.tcp() && fam == famInet6:
		kind = sock.TCP6
	case o.class.tcp():
		kind = sock.TCP
	case fam == famInet6:
		kind = sock.UDP6
	}
	s, err := h.table.Open(h.taskCtx(L), kind)
	if err != nil {
		return err
	}
	o.s, o.family = s, fam
	if fam == famInet6 {
		s.SetOptionBytes("ipv6-v6only", unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, intOption(1))
	}
	for _, p := range o.pending {
		h.lsApplyOption(o, p) // accepted when set; a failure now has no one to tell
	}
	return nil
}

// lsNew makes an object of class c. With a family its socket is made at
// once; without, at its first bind or connect.
func (h *Host) lsNew(L *glua.LState, c lsClass, fam lsFamily) (*lsSocket, error) {
	o := &lsSocket{class: c, block: -1, total: -1, birthday: time.Now()}
	if fam != famUnspec {
		if err := h.lsOpen(L, o, fam); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func (h *Host) lsValue(L *glua.LState, o *lsSocket) *glua.LUserData {
	ud := L.NewUserData()
	ud.Value = o
	ud.Metatable = h.ls.meta[o.class]
	return ud
}

// setClass moves the object at argument 1 to class c.
func (h *Host) setClass(L *glua.LState, o *lsSocket, c lsClass) {
	o.class = c
	L.CheckUserData(1).Metatable = h.ls.meta[c]
}

// lsArg returns the object at argument n, or nil.
func lsArg(L *glua.LState, n int) *lsSocket {
	if ud, ok := L.Get(n).(*glua.LUserData); ok {
		if o, ok := ud.Value.(*lsSocket); ok {
			return o
		}
	}
	return nil
}

// checkClass raises unless argument 1 is an object of class c, in
// LuaSocket's words: bad argument #1 to 'receive' (tcp{client} expected).
func checkClass(L *glua.LState, c lsClass) *lsSocket {
	o := lsArg(L, 1)
	if o == nil || o.class != c {
		L.ArgError(1, c.String()+" expected")
	}
	return o
}

// checkAny raises unless argument 1 is a TCP object (tcp true) or a UDP
// object.
func checkAny(L *glua.LState, tcp bool) *lsSocket {
	o := lsArg(L, 1)
	if o == nil || o.class.tcp() != tcp {
		if tcp {
			L.ArgError(1, "tcp{any} expected")
		}
		L.ArgError(1, "udp{any} expected")
	}
	return o
}

// pushOne pushes LuaSocket's success, the number 1.
func pushOne(L *glua.LState) int {
	L.Push(glua.LNumber(1))
	return 1
}

// pushNilErr pushes nil and a message.
func pushNilErr(L *glua.LState, msg string) int {
	L.Push(glua.LNil)
	L.Push(glua.LString(msg))
	return 2
}

// lsPort reads a port argument as getaddrinfo's service: a number, or a
// numeric string.
func lsPort(L *glua.LState, n int) string { return L.CheckString(n) }

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil {
		return 0, errService
	}
	return uint16(p), nil
}

// toNumber is lua_isnumber and lua_tonumber: numbers, and strings that
// read as numbers.
func toNumber(v glua.LValue) (float64, bool) {
	switch v := v.(type) {
	case glua.LNumber:
		return float64(v), true
	case glua.LString:
		s := strings.TrimSpace(string(v))
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, true
		}
		if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
			if n, err := strconv.ParseUint(h, 16, 64); err == nil {
				return float64(n), true
			}
		}
	}
	return 0, false
}

// optNumber is luaL_optnumber: a number or numeric string, or def for nil.
func optNumber(L *glua.LState, n int, def float64) float64 {
	if L.Get(n) == glua.LNil {
		return def
	}
	f, ok := toNumber(L.Get(n))
	if !ok {
		L.TypeError(n, glua.LTNumber)
	}
	return f
}

// lsLookup resolves host to addresses of the families asked for, IPv4's
// first, as getaddrinfo does for LuaSocket (see lookup).
func (h *Host) lsLookup(L *glua.LState, host string, want4, want6 bool) ([]netip.Addr, error) {
	var fam dns.Family
	if want4 {
		fam |= dns.IPv4
	}
	if want6 {
		fam |= dns.IPv6
	}
	addrs, err := h.lookup(L, host, fam)
	if err == nil && len(addrs) == 0 {
		err = &sock.Error{Op: "getaddrinfo", Code: "EAI_NONAME", Msg: "no address for " + host}
	}
	return addrs, err
}

// lsResolve is lsLookup for a socket of family fam; for a bind
// (passive), "*" is every local address.
func (h *Host) lsResolve(L *glua.LState, host string, fam lsFamily, passive bool) ([]netip.Addr, error) {
	want4, want6 := fam != famInet6, fam != famInet
	if passive && host == "*" {
		var out []netip.Addr
		if want4 {
			out = append(out, netip.IPv4Unspecified())
		}
		if want6 {
			out = append(out, netip.IPv6Unspecified())
		}
		return out, nil
	}
	return h.lsLookup(L, host, want4, want6)
}

// lsNameString is inet_meth_getsockname's and getpeername's address and
// family.
func lsFamilyName(fam lsFamily) string {
	switch fam {
	case famInet:
		return "inet"
	case famInet6:
		return "inet6"
	}
	return "uknown family" // sic: LuaSocket's own spelling
}

// pushAddr pushes an address the way getpeername (port a number) or
// getsockname (port a string, as LuaSocket returns it) does.
func pushLSAddr(L *glua.LState, o *lsSocket, ap netip.AddrPort, err error, portString bool) int {
	if err != nil {
		return pushNilErr(L, strerror(err))
	}
	L.Push(glua.LString(ap.Addr().String()))
	if portString {
		L.Push(glua.LString(strconv.Itoa(int(ap.Port()))))
	} else {
		L.Push(glua.LNumber(ap.Port()))
	}
	L.Push(glua.LString(lsFamilyName(o.family)))
	return 3
}

func (h *Host) lsGetsockname(L *glua.LState, o *lsSocket) int {
	if o.s == nil {
		return pushNilErr(L, strerror(errNoSocket))
	}
	ap, err := o.s.LocalAddr()
	return pushLSAddr(L, o, ap, err, true)
}

func (h *Host) lsGetpeername(L *glua.LState, o *lsSocket) int {
	if o.s == nil {
		return pushNilErr(L, strerror(errNoSocket))
	}
	ap, err := o.s.PeerAddr()
	return pushLSAddr(L, o, ap, err, false)
}

// The methods both kinds of object share.

func (h *Host) lsClose(L *glua.LState, o *lsSocket) int {
	o.closed, o.pending = true, nil
	if o.s != nil {
		o.s.Close()
		o.s = nil
	}
	return pushOne(L)
}

func lsGetfd(L *glua.LState, o *lsSocket) int {
	if o.s == nil || o.s.Closed() {
		L.Push(glua.LNumber(-1))
	} else {
		L.Push(glua.LNumber(o.s.FD))
	}
	return 1
}

// lsSetfd points the object at another of sockplay's descriptors, or at
// none (-1, which leaves the old one open): LuaSocket's "dangerous" setfd.
func (h *Host) lsSetfd(L *glua.LState, o *lsSocket) int {
	n := optNumber(L, 2, math.NaN())
	if math.IsNaN(n) {
		L.TypeError(2, glua.LTNumber)
	}
	fd := int(n)
	if fd < 0 {
		o.s = nil
		return 0
	}
	s, err := h.table.Get(fd)
	if err != nil || s.Kind.Stream() != o.class.tcp() {
		L.ArgError(2, fmt.Sprintf("fd %d is not one of sockplay's %s sockets", fd, map[bool]string{true: "TCP", false: "UDP"}[o.class.tcp()]))
	}
	o.s = s
	o.family = famInet
	if s.Kind.IPv6() {
		o.family = famInet6
	}
	return 0
}

func lsGetfamily(L *glua.LState, o *lsSocket) int {
	if o.family == famInet6 {
		L.Push(glua.LString("inet6"))
	} else {
		L.Push(glua.LString("inet4"))
	}
	return 1
}

func lsSettimeout(L *glua.LState, o *lsSocket) int {
	t := optNumber(L, 2, -1)
	mode := L.OptString(3, "b")
	switch {
	case strings.HasPrefix(mode, "b"):
		o.block = t
	case strings.HasPrefix(mode, "r"), strings.HasPrefix(mode, "t"):
		o.total = t
	default:
		L.ArgError(3, "invalid timeout mode")
	}
	return pushOne(L)
}

func lsGettimeout(L *glua.LState, o *lsSocket) int {
	L.Push(glua.LNumber(o.block))
	L.Push(glua.LNumber(o.total))
	return 2
}

// lsString is an object's tostring: its class and address, as LuaSocket
// prints them (tcp{client}: 0x...).
func lsString(o *lsSocket) string { return fmt.Sprintf("%s: %p", o.class, o) }
