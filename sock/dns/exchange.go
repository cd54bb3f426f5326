package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"sockplay/sock"
)

// DefaultTimeout is how long a server gets to answer when nobody says.
const DefaultTimeout = 5 * time.Second

// Question is one question, with dig's options.
type Question struct {
	Name   string // made absolute
	Type   uint16
	Class  uint16 // 0: IN
	RD     bool   // recursion desired (dig's default; +norec clears it)
	EDNS   int    // the UDP size to advertise in EDNS0; 0: no EDNS0
	DNSSEC bool   // the DO bit; implies EDNS0 (1232 bytes unless EDNS says)
}

// msg builds the question's message with a fresh random id.
func (q Question) msg() *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(q.Name), q.Type)
	if q.Class != 0 {
		m.Question[0].Qclass = q.Class
	}
	m.RecursionDesired = q.RD
	size := q.EDNS
	if q.DNSSEC && size == 0 {
		size = 1232
	}
	if size > 0 {
		m.SetEdns0(uint16(size), q.DNSSEC)
	}
	return m
}

// Answer is an answered question and how the answer came.
type Answer struct {
	Msg            *mdns.Msg
	Size           int            // bytes on the wire
	RTT            time.Duration  // from sending the question to the answer
	Server         netip.AddrPort // who answered
	Transport      string         // "udp" or "tcp"
	TruncatedRetry bool           // the UDP answer had TC set; this one came over TCP
}

// Table is the answer as a script sees it: MessageTable plus server,
// port, transport, rtt (seconds), size and truncated_retry.
func (a *Answer) Table() *Table {
	t := MessageTable(a.Msg)
	t.set("server", a.Server.Addr().String())
	t.set("port", a.Server.Port())
	t.set("transport", a.Transport)
	t.set("rtt", a.RTT.Seconds())
	t.set("size", a.Size)
	if a.TruncatedRetry {
		t.set("truncated_retry", true)
	}
	return t
}

// Err is the answer's status as an error: nil for NOERROR, else the code
// (NXDOMAIN, SERVFAIL ...) with a sentence naming the server.
func (a *Answer) Err() error {
	m := a.Msg
	if m.Rcode == mdns.RcodeSuccess {
		return nil
	}
	code := rcodeName(m.Rcode)
	server := a.Server.String()
	var msg string
	switch m.Rcode {
	case mdns.RcodeNameError:
		qname := ""
		if len(m.Question) > 0 {
			qname = m.Question[0].Name
		}
		msg = fmt.Sprintf("%s does not exist (NXDOMAIN from %s)", qname, server)
	case mdns.RcodeServerFailure:
		msg = fmt.Sprintf("server failure (SERVFAIL from %s)", server)
	case mdns.RcodeRefused:
		msg = fmt.Sprintf("query refused (REFUSED from %s)", server)
	default:
		msg = fmt.Sprintf("%s from %s", code, server)
	}
	return &sock.Error{Op: "dns", Code: code, Msg: msg}
}

// PTRNames are the names of the answer's PTR records; an answer with
// none is a failure (its status, or NODATA).
func (a *Answer) PTRNames() ([]string, error) {
	if err := a.Err(); err != nil {
		return nil, err
	}
	var names []string
	for _, rr := range a.Msg.Answer {
		if p, ok := rr.(*mdns.PTR); ok {
			names = append(names, p.Ptr)
		}
	}
	if len(names) == 0 {
		qname := ""
		if len(a.Msg.Question) > 0 {
			qname = a.Msg.Question[0].Name
		}
		return nil, &sock.Error{Op: "dns", Code: "NODATA", Msg: fmt.Sprintf("%s has no PTR record (%s)", qname, a.Server)}
	}
	return names, nil
}

// Client asks questions over sockets of its table, as dig does.
type Client struct {
	Table   *sock.Table
	TCP     bool          // ask over TCP from the start (dig +tcp)
	Timeout time.Duration // per server and transport; 0: DefaultTimeout
}

// Ask puts q to each server in turn until one answers, whatever its
// status. A truncated UDP answer is asked again over TCP, as dig and the
// system's resolver do. The sockets belong to ctx's owner and are closed
// before Ask returns.
func (c Client) Ask(ctx context.Context, q Question, servers []netip.AddrPort) (*Answer, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	m := q.msg()
	sess := newSession(c.Table)
	defer sess.close()
	err := error(&sock.Error{Op: "dns", Code: "EINVAL", Msg: "no server to ask"})
	for _, server := range servers {
		var answers []*Answer
		answers, err = sess.exchange(ctx, []*mdns.Msg{m}, server, c.TCP, timeout)
		if err == nil {
			return answers[0], nil
		}
		if ctx.Err() != nil {
			return nil, sock.ErrCanceled
		}
	}
	return nil, err
}

// session is the UDP sockets of one call, one per server, kept open from
// the first question to the last, as glibc keeps its sockets for the whole
// of a getaddrinfo call: the questions of the search list go out one after
// the other from the same socket. close closes them.
type session struct {
	tbl *sock.Table
	udp map[netip.AddrPort]*sock.Socket
}

func newSession(tbl *sock.Table) *session {
	return &session{tbl: tbl, udp: map[netip.AddrPort]*sock.Socket{}}
}

func (sess *session) close() {
	for _, s := range sess.udp {
		s.Close()
	}
}

// socket returns the session's UDP socket for server, opened and connected
// on first use. Connected, a refusing port says so (ECONNREFUSED, from
// ICMP) at once, and the kernel drops datagrams from anyone but the server.
func (sess *session) socket(ctx context.Context, server netip.AddrPort) (*sock.Socket, error) {
	if s := sess.udp[server]; s != nil {
		return s, nil
	}
	s, err := open(ctx, sess.tbl, server, false)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx, server); err != nil {
		s.Close()
		return nil, err
	}
	sess.udp[server] = s
	return s, nil
}

// exchange asks one server each question of qs: over the session's UDP
// socket (getaddrinfo's A and AAAA questions go out together, as glibc
// sends them), then over TCP those whose answer came back truncated; with
// tcp, over TCP at once. answers[i] answers qs[i]; on an error the answers
// that did come are returned with it.
func (sess *session) exchange(ctx context.Context, qs []*mdns.Msg, server netip.AddrPort, tcp bool, timeout time.Duration) ([]*Answer, error) {
	answers := make([]*Answer, len(qs))
	if !tcp {
		if err := sess.exchangeUDP(ctx, qs, answers, server, timeout); err != nil {
			return answers, err
		}
	}
	for i, q := range qs {
		if answers[i] != nil && !answers[i].Msg.Truncated {
			continue
		}
		a, err := exchangeTCP(ctx, sess.tbl, q, server, timeout)
		if err != nil {
			answers[i] = nil
			return answers, err
		}
		a.TruncatedRetry = !tcp
		answers[i] = a
	}
	return answers, nil
}

// socketKind is the kind of socket that reaches server.
func socketKind(server netip.AddrPort, stream bool) sock.Kind {
	v6 := server.Addr().Is6() && !server.Addr().Is4In6()
	switch {
	case stream && v6:
		return sock.TCP6
	case stream:
		return sock.TCP
	case v6:
		return sock.UDP6
	}
	return sock.UDP
}

// open opens a socket for talking to server, described in the trace as
// DNS. The caller closes it.
func open(ctx context.Context, tbl *sock.Table, server netip.AddrPort, stream bool) (*sock.Socket, error) {
	s, err := tbl.Open(ctx, socketKind(server, stream))
	if err != nil {
		return nil, err
	}
	s.SetDescriber(describe)
	return s, nil
}

// exchangeUDP sends every question from the session's socket for server
// and waits, until timeout has passed, for the answer to each: the answer
// with its id and its question. Anything else (a late answer to an
// earlier question, a forgery) is ignored, as the system's resolver
// ignores it.
func (sess *session) exchangeUDP(ctx context.Context, qs []*mdns.Msg, answers []*Answer, server netip.AddrPort, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	s, err := sess.socket(ctx, server)
	if err != nil {
		return failure(ctx, err, server, "udp", timeout)
	}
	start := time.Now()
	for _, q := range qs {
		p, err := q.Pack()
		if err != nil {
			return &sock.Error{Op: "dns", Code: "EINVAL", Msg: "cannot pack the question: " + err.Error()}
		}
		s.SetTimeout(timeout)
		if _, err := s.SendTo(ctx, p, server); err != nil {
			return failure(ctx, err, server, "udp", timeout)
		}
	}
	var p []byte
	for pending := len(qs); pending > 0; {
		left := time.Until(deadline)
		if left <= 0 {
			return failure(ctx, sock.ErrTimeout, server, "udp", timeout)
		}
		s.SetTimeout(left)
		err := s.RecvFromInto(ctx, mdns.MaxMsgSize, func(data []byte, _ netip.AddrPort, _ int) {
			p = append([]byte(nil), data...) // the message may keep slices of it
		})
		if err != nil {
			return failure(ctx, err, server, "udp", timeout)
		}
		n := len(p)
		m := new(mdns.Msg)
		uerr := m.Unpack(p)
		for i, q := range qs {
			switch {
			case answers[i] != nil || len(p) < 2 || binary.BigEndian.Uint16(p) != q.Id:
				continue
			case uerr != nil:
				return &sock.Error{Op: "dns", Code: "EBADMSG", Msg: fmt.Sprintf("malformed answer from %s over udp: %v", server, uerr)}
			case !m.Response || !sameQuestion(q, m):
				continue
			}
			answers[i] = &Answer{Msg: m, Size: n, RTT: time.Since(start), Server: server, Transport: "udp"}
			pending--
			break
		}
	}
	return nil
}

// sameQuestion reports whether answer m is for question q: the same name
// (in any case), type and class.
func sameQuestion(q, m *mdns.Msg) bool {
	if len(m.Question) != 1 || len(q.Question) != 1 {
		return len(m.Question) == len(q.Question)
	}
	a, b := q.Question[0], m.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// exchangeTCP asks q over a TCP connection of its own: the message with
// its two-byte length in front, and the answer read the same way.
func exchangeTCP(ctx context.Context, tbl *sock.Table, q *mdns.Msg, server netip.AddrPort, timeout time.Duration) (*Answer, error) {
	s, err := open(ctx, tbl, server, true)
	if err != nil {
		return nil, failure(ctx, err, server, "tcp", timeout)
	}
	defer s.Close()
	fail := func(err error) (*Answer, error) { return nil, failure(ctx, err, server, "tcp", timeout) }
	deadline := time.Now().Add(timeout)
	left := func() time.Duration { return max(time.Until(deadline), time.Nanosecond) }
	s.SetTimeout(left())
	if err := s.Connect(ctx, server); err != nil {
		return fail(err)
	}
	p, err := q.Pack()
	if err != nil {
		return nil, &sock.Error{Op: "dns", Code: "EINVAL", Msg: "cannot pack the question: " + err.Error()}
	}
	start := time.Now()
	frame := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(p)), uint16(len(p)))
	s.SetTimeout(left())
	if _, err := s.Write(ctx, append(frame, p...)); err != nil {
		return fail(err)
	}
	var size [2]byte
	if err := readFull(ctx, s, size[:], left); err != nil {
		return fail(err)
	}
	body := make([]byte, binary.BigEndian.Uint16(size[:]))
	if err := readFull(ctx, s, body, left); err != nil {
		return fail(err)
	}
	m := new(mdns.Msg)
	if err := m.Unpack(body); err != nil {
		return nil, &sock.Error{Op: "dns", Code: "EBADMSG", Msg: fmt.Sprintf("malformed answer from %s over tcp: %v", server, err)}
	}
	if m.Id != q.Id {
		return nil, &sock.Error{Op: "dns", Code: "EBADMSG", Msg: fmt.Sprintf("answer from %s has ID %d, the question had %d", server, m.Id, q.Id)}
	}
	return &Answer{Msg: m, Size: len(body), RTT: time.Since(start), Server: server, Transport: "tcp"}, nil
}

// readFull reads exactly len(p) bytes from a stream, each read bounded by
// what is left of the time.
func readFull(ctx context.Context, s *sock.Socket, p []byte, left func() time.Duration) error {
	for off := 0; off < len(p); {
		s.SetTimeout(left())
		n, err := s.Read(ctx, p[off:])
		if err != nil {
			return err
		}
		off += n
	}
	return nil
}

// failure names what went wrong talking to a server.
func failure(ctx context.Context, err error, server netip.AddrPort, transport string, timeout time.Duration) error {
	if ctx.Err() != nil {
		return sock.ErrCanceled
	}
	switch code := sock.Code(err); code {
	case "ECANCELED":
		return sock.ErrCanceled
	case "ETIMEDOUT":
		return &sock.Error{Op: "dns", Code: code, Msg: fmt.Sprintf("no answer from %s over %s within %s", server, transport, timeout)}
	case "EOF":
		return &sock.Error{Op: "dns", Code: code, Msg: fmt.Sprintf("%s closed the connection before answering (%s)", server, transport)}
	default:
		f := &sock.Error{Op: "dns", Code: code, Msg: fmt.Sprintf("%s (%s over %s)", sock.Message(err), server, transport)}
		var se *sock.Error
		if errors.As(err, &se) {
			f.Errno = se.Errno
		}
		return f
	}
}
