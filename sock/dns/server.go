package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"

	"sockplay/sock"
)

// An authoritative server on a UDP and a TCP socket of one port, both
// entries of the caller's table: the descriptor table shows them and the
// trace sees their calls, questions and answers described as DNS.

const (
	tcpIdleTimeout  = 10 * time.Second // a TCP client that sends nothing for this long is dropped
	maxTCPConns     = 256
	maxHandlerCalls = 64 // UDP questions in the handler at once; more are dropped, as by a busy server
)

// Request is one question as a handler sees it.
type Request struct {
	Client    netip.AddrPort
	Transport string // "udp" or "tcp"
	msg       *mdns.Msg
	zone      *Zone
}

// Table is the request as a script sees it: the message (MessageTable)
// plus name, type and class of its question, client, client_port and
// transport.
func (r *Request) Table() *Table {
	t := MessageTable(r.msg)
	t.Kind = ""
	q := r.msg.Question[0]
	t.set("name", q.Name)
	t.set("type", TypeName(q.Qtype))
	t.set("class", className(q.Qclass))
	t.set("client", r.Client.Addr().String())
	t.set("client_port", r.Client.Port())
	t.set("transport", r.Transport)
	return t
}

// Reply is a handler's answer to a request.
type Reply struct {
	msg  *mdns.Msg // nil: the zone answers
	drop bool      // no answer at all
}

var replyFieldNames = "rcode, answer, authority, additional, aa, tc, ra, ad, drop"

// Reply reads a handler's reply table: {rcode=, answer=, authority=,
// additional=, aa=, tc=, ra=, ad=, drop=}. Records are tables or
// zone-file lines, named after the question and relative to the zone's
// origin by default. A nil table leaves the question to the zone (or,
// with no zone, an empty NOERROR answer).
func (r *Request) Reply(t *Table) (*Reply, error) {
	if t == nil {
		return &Reply{}, nil
	}
	reply := new(mdns.Msg)
	reply.SetReply(r.msg)
	reply.Authoritative = true
	d := Defaults{Origin: ".", Name: r.msg.Question[0].Name, TTL: 60}
	if r.zone != nil {
		d.Origin, d.TTL = r.zone.origin, r.zone.ttl
	}
	out := &Reply{msg: reply}
	if odd := t.otherKeys(); len(odd) > 0 {
		return nil, fmt.Errorf("unknown field %s (known: %s)", odd[0], replyFieldNames)
	}
	for _, key := range t.fieldNames() {
		val := t.Fields[key]
		boolean := func(dst *bool) error {
			b, ok := val.(bool)
			if !ok {
				return fmt.Errorf("field %q: boolean expected, got %s", key, typeOf(val))
			}
			*dst = b
			return nil
		}
		var err error
		switch key {
		case "rcode":
			if reply.Rcode, err = parseRcode(val); err != nil {
				err = fmt.Errorf("field \"rcode\": %v", err)
			}
		case "answer":
			reply.Answer, err = recordList(val, key, d)
		case "authority":
			reply.Ns, err = recordList(val, key, d)
		case "additional":
			reply.Extra, err = recordList(val, key, d)
		case "aa":
			err = boolean(&reply.Authoritative)
		case "tc":
			err = boolean(&reply.Truncated)
		case "ra":
			err = boolean(&reply.RecursionAvailable)
		case "ad":
			err = boolean(&reply.AuthenticatedData)
		case "drop":
			err = boolean(&out.drop)
		default:
			err = fmt.Errorf("unknown field %q (known: %s)", key, replyFieldNames)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recordList reads a list of records (tables or zone-file lines).
func recordList(v any, what string, d Defaults) ([]mdns.RR, error) {
	l, ok := v.(*Table)
	if !ok {
		return nil, fmt.Errorf("field %q: list of records expected, got %s", what, typeOf(v))
	}
	out := make([]mdns.RR, 0, len(l.List))
	for i, item := range l.List {
		rr, err := ParseRecord(item, d)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %v", what, i+1, err)
		}
		out = append(out, rr)
	}
	return out, nil
}

// A Handler answers a question before the zone does. It returns the
// request's Reply, nil to leave the question to the zone, or an error,
// which the server answers with SERVFAIL. It runs on a goroutine of the
// server's; ctx ends when the server stops.
type Handler func(ctx context.Context, req *Request) (*Reply, error)

// ServerConfig says what a server answers from.
type ServerConfig struct {
	Zone    *Zone
	Handler Handler
	// Log, when set, gets one line per question:
	// "dns udp 127.0.0.1:40000 A www.test. -> NOERROR, 1 answer".
	Log func(line string)
}

// Server is a running authoritative server.
type Server struct {
	cfg     ServerConfig
	addr    netip.AddrPort
	udp     *sock.Socket
	tcp     *sock.Socket
	ctx     context.Context // ends when the server stops
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the reading goroutines and their questions
	closed  atomic.Bool
	queries atomic.Uint64
	calls   chan struct{} // a semaphore for handler calls answering UDP

	mu    sync.Mutex
	conns map[*sock.Socket]struct{}
}

// Serve opens a UDP socket on addr and a TCP socket on the same port
// (with port 0 both get one free port), owned by ctx's owner, and answers
// on both until ctx ends or Close is called.
func Serve(ctx context.Context, tbl *sock.Table, addr netip.AddrPort, cfg ServerConfig) (*Server, error) {
	if cfg.Zone == nil && cfg.Handler == nil {
		return nil, errors.New("a zone or a handler is needed")
	}
	srv := &Server{cfg: cfg, conns: map[*sock.Socket]struct{}{}, calls: make(chan struct{}, maxHandlerCalls)}
	if err := srv.open(ctx, tbl, addr); err != nil {
		return nil, err
	}
	srv.ctx, srv.cancel = context.WithCancel(ctx)
	srv.wg.Add(2)
	go srv.serveUDP()
	go srv.serveTCP()
	return srv, nil
}

// open binds the UDP socket, then the TCP one on the port UDP got. With
// port 0 that port may be taken for TCP: then both start over.
func (srv *Server) open(ctx context.Context, tbl *sock.Table, addr netip.AddrPort) error {
	ukind, tkind := sock.UDP, sock.TCP
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		ukind, tkind = sock.UDP6, sock.TCP6
	}
	for try := 0; ; try++ {
		u, err := tbl.Open(ctx, ukind)
		if err != nil {
			return err
		}
		u.SetDescriber(describe)
		if err := u.Bind(addr); err != nil {
			u.Close()
			return err
		}
		local, err := u.LocalAddr()
		if err != nil {
			u.Close()
			return err
		}
		t, err := tbl.Open(ctx, tkind)
		if err != nil {
			u.Close()
			return err
		}
		t.SetDescriber(describe)
		err = t.SetOption("reuseaddr", 1)
		if err == nil {
			err = t.Bind(local)
		}
		if err == nil {
			err = t.Listen(128)
		}
		if err == nil {
			srv.udp, srv.tcp, srv.addr = u, t, local
			return nil
		}
		u.Close()
		t.Close()
		if addr.Port() != 0 || sock.Code(err) != "EADDRINUSE" || try >= 20 {
			return err
		}
	}
}

// Addr is the address both sockets are bound to.
func (srv *Server) Addr() netip.AddrPort { return srv.addr }

// FDs are the fds of the UDP and the TCP socket.
func (srv *Server) FDs() (udp, tcp int) { return srv.udp.FD, srv.tcp.FD }

// Queries counts the questions received.
func (srv *Server) Queries() uint64 { return srv.queries.Load() }

// Closed reports whether the server was closed or its context ended.
func (srv *Server) Closed() bool { return srv.ctx.Err() != nil }

// Done is closed when the server stops (Close, or its context ended).
func (srv *Server) Done() <-chan struct{} { return srv.ctx.Done() }

// Close stops the server and closes its sockets, which wakes the
// goroutines reading them. It does not wait for those to end (it may be
// called from a handler that one of them waits for): Wait does.
func (srv *Server) Close() {
	srv.cancel()
	srv.stop()
}

// Wait waits until the goroutines of a stopped server have ended and its
// sockets are closed.
func (srv *Server) Wait() { srv.wg.Wait() }

// stop closes the sockets, the connections' too. Close calls it, and so do
// the goroutines that read the listening sockets as they end, whatever
// ended them (a cancelled context wakes them before anything is closed).
func (srv *Server) stop() {
	if srv.closed.Swap(true) {
		return
	}
	srv.udp.Close()
	srv.tcp.Close()
	srv.mu.Lock()
	for c := range srv.conns {
		c.Close()
	}
	srv.mu.Unlock()
}

// over reports whether a failed call means the server is done.
func (srv *Server) over(err error) bool {
	return srv.ctx.Err() != nil || sock.Code(err) == "EBADF"
}

func (srv *Server) serveUDP() {
	defer srv.wg.Done()
	defer srv.stop()
	buf := make([]byte, mdns.MaxMsgSize)
	for {
		n, from, _, err := srv.udp.RecvFrom(srv.ctx, buf)
		if err != nil {
			if srv.over(err) {
				return
			}
			continue
		}
		srv.queries.Add(1)
		data := append([]byte(nil), buf[:n]...)
		if srv.cfg.Handler == nil {
			srv.answerUDP(data, from)
			continue
		}
		select {
		case srv.calls <- struct{}{}:
		default:
			continue // too many questions in the handler already
		}
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer func() { <-srv.calls }()
			srv.answerUDP(data, from)
		}()
	}
}

func (srv *Server) answerUDP(data []byte, from netip.AddrPort) {
	if out := srv.respond(data, from, "udp"); out != nil {
		srv.udp.SendTo(srv.ctx, out, from)
	}
}

func (srv *Server) serveTCP() {
	defer srv.wg.Done()
	defer srv.stop()
	for {
		c, peer, err := srv.tcp.Accept(srv.ctx)
		if err != nil {
			if srv.over(err) {
				return
			}
			continue
		}
		c.SetDescriber(describe)
		srv.mu.Lock()
		if len(srv.conns) >= maxTCPConns || srv.closed.Load() {
			srv.mu.Unlock()
			c.Close()
			continue
		}
		srv.conns[c] = struct{}{}
		srv.mu.Unlock()
		srv.wg.Add(1)
		go srv.serveConn(c, peer)
	}
}

// serveConn answers the questions of one TCP connection in order, each
// with its two-byte length in front, until the client closes or idles.
func (srv *Server) serveConn(c *sock.Socket, peer netip.AddrPort) {
	defer srv.wg.Done()
	defer func() {
		srv.mu.Lock()
		delete(srv.conns, c)
		srv.mu.Unlock()
		c.Close()
	}()
	idle := func() time.Duration { return tcpIdleTimeout }
	var size [2]byte
	for {
		if err := readFull(srv.ctx, c, size[:], idle); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(size[:]))
		if err := readFull(srv.ctx, c, msg, idle); err != nil {
			return
		}
		srv.queries.Add(1)
		out := srv.respond(msg, peer, "tcp")
		if out == nil {
			continue
		}
		frame := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(out)), uint16(len(out)))
		if _, err := c.Write(srv.ctx, append(frame, out...)); err != nil {
			return
		}
	}
}

// respond turns a question into the packed answer, or nil for no answer.
func (srv *Server) respond(data []byte, client netip.AddrPort, transport string) []byte {
	req := new(mdns.Msg)
	if err := req.Unpack(data); err != nil {
		if len(data) < 12 || data[2]&0x80 != 0 {
			return nil // not even a header, or an answer: nothing to say
		}
		bad := &mdns.Msg{MsgHdr: mdns.MsgHdr{Id: binary.BigEndian.Uint16(data), Response: true, Opcode: int(data[2]>>3) & 0xF, Rcode: mdns.RcodeFormatError}}
		out, _ := bad.Pack()
		srv.logLine(transport, client, nil, bad)
		return out
	}
	if req.Response {
		return nil
	}
	reply := new(mdns.Msg)
	reply.SetReply(req)
	switch {
	case req.Opcode != mdns.OpcodeQuery:
		reply.Rcode = mdns.RcodeNotImplemented
	case len(req.Question) != 1:
		reply.Rcode = mdns.RcodeFormatError
	default:
		answered := false
		if srv.cfg.Handler != nil {
			r, err := srv.cfg.Handler(srv.ctx, &Request{Client: client, Transport: transport, msg: req, zone: srv.cfg.Zone})
			switch {
			case srv.ctx.Err() != nil || (r != nil && r.drop):
				srv.logLine(transport, client, req, nil)
				return nil
			case err != nil:
				reply.Rcode, answered = mdns.RcodeServerFailure, true
			case r != nil && r.msg != nil:
				reply, answered = r.msg, true
			}
		}
		if !answered && srv.cfg.Zone != nil {
			srv.cfg.Zone.answer(req.Question[0], reply)
		} else if !answered {
			reply.Authoritative = true
		}
	}
	opt := req.IsEdns0()
	if opt != nil && reply.IsEdns0() == nil {
		reply.SetEdns0(1232, opt.Do())
	}
	size := mdns.MaxMsgSize
	if transport == "udp" {
		// What the client can take: 512 bytes, or what its EDNS0 says.
		size = mdns.MinMsgSize
		if opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
	}
	reply.Truncate(size)
	out, err := reply.Pack()
	if err != nil {
		fail := new(mdns.Msg)
		fail.SetRcode(req, mdns.RcodeServerFailure)
		out, _ = fail.Pack()
		reply = fail
	}
	srv.logLine(transport, client, req, reply)
	return out
}

// logLine gives Log one line per question.
func (srv *Server) logLine(transport string, client netip.AddrPort, req, reply *mdns.Msg) {
	if srv.cfg.Log == nil {
		return
	}
	q := "(no question)"
	if req != nil && len(req.Question) > 0 {
		q = TypeName(req.Question[0].Qtype) + " " + req.Question[0].Name
	}
	result := "dropped"
	if reply != nil {
		n := len(reply.Answer)
		result = fmt.Sprintf("%s, %d answer", rcodeName(reply.Rcode), n)
		if n != 1 {
			result += "s"
		}
		if reply.Truncated {
			result += ", truncated"
		}
	}
	srv.cfg.Log(fmt.Sprintf("dns %s %s %s -> %s", transport, client, q, result))
}
