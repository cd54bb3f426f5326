package sock

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Event is one operation as the trace records it.
type Event struct {
	Time  time.Time
	Dur   time.Duration
	FD    int // -1 for socket(2) itself, whose result is the new fd
	Kind  Kind
	Owner string
	Host  string // the lab host (network namespace) of the socket; "" for sockplay's own
	Call  string
	Args  []string       // rendered arguments after the fd
	Peer  netip.AddrPort // the other end of a recvfrom; of a close, the peer it had
	Local netip.AddrPort // of a close, the local address it had
	Ret   int            // the call's result: bytes, a new fd, 0; -1 with Err
	Err   error
	Data  []byte // payload moved by the call; a copy, only while tracing
	Note  string // what else happened: truncation, impairment
	// Describe renders Data in its protocol's terms when the socket has a
	// Describer (see SetDescriber); nil renders it as a quoted string.
	Describe Describer
}

// A Describer renders a payload for the trace in the terms of the protocol
// it carries (a DNS question, say), or returns "" to leave it quoted. It is
// called only when an event is rendered, so it costs nothing untraced.
type Describer func(data []byte) string

// SetDescriber makes the trace render s's payloads with d (nil: quoted).
// The package that speaks the protocol on s sets it; sock itself knows no
// protocol above TCP and UDP.
func (s *Socket) SetDescriber(d Describer) {
	if d == nil {
		s.payloads.Store(nil)
		return
	}
	s.payloads.Store(&d)
}

// Tracer receives events. It runs on the goroutine that made the call, so
// it must be quick and must not call back into the socket.
type Tracer func(Event)

// listeners is who hears the table's events: the tracer (SetTracer) and
// every function added with Listen. The table swaps in a new value on each
// change, so an operation reads it with one atomic load and no lock.
type listeners struct {
	fns  []Tracer
	data bool // someone wants the payload bytes
}

// listener is one function added with Listen.
type listener struct {
	fn   Tracer
	data bool
}

// SetTracer installs fn as the table's trace sink; nil turns tracing off.
// Listeners added with Listen hear events either way. With no tracer and
// no listener an operation pays one atomic load.
func (t *Table) SetTracer(fn Tracer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.trace = fn
	t.publishListeners()
}

// Listen adds fn to the functions that hear every event, alongside the
// tracer: a packet capture, for one, learns from them which call caused a
// packet. data says whether fn needs Event.Data (a copy of the payload on
// every read and write). The returned function removes fn; calling it
// again does nothing.
func (t *Table) Listen(fn Tracer, data bool) (remove func()) {
	l := &listener{fn: fn, data: data}
	t.mu.Lock()
	t.listening = append(t.listening, l)
	t.publishListeners()
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		for i, x := range t.listening {
			if x == l {
				t.listening = append(t.listening[:i:i], t.listening[i+1:]...)
				t.publishListeners()
				return
			}
		}
	}
}

// publishListeners stores who listens now. The caller holds t.mu.
func (t *Table) publishListeners() {
	var ls listeners
	if t.trace != nil {
		ls.fns, ls.data = append(ls.fns, t.trace), true
	}
	for _, l := range t.listening {
		ls.fns = append(ls.fns, l.fn)
		ls.data = ls.data || l.data
	}
	if len(ls.fns) == 0 {
		t.tracer.Store(nil)
		return
	}
	t.tracer.Store(&ls)
}

// Tracing reports whether a tracer or a listener is installed.
func (t *Table) Tracing() bool { return t.tracer.Load() != nil }

// traceStart returns the start time when tracing, else the zero time.
func (t *Table) traceStart() time.Time {
	if t.tracer.Load() == nil {
		return time.Time{}
	}
	return time.Now()
}

func (t *Table) emit(start time.Time, ev Event) {
	ls := t.tracer.Load()
	if ls == nil || start.IsZero() {
		return
	}
	ev.Time = start
	ev.Dur = time.Since(start)
	if ev.Err != nil && ev.Ret == 0 {
		ev.Ret = -1
	}
	for _, fn := range ls.fns {
		fn(ev)
	}
}

// emit and emitData send an event to the tracer. Callers build the Event
// only when start is set (if !start.IsZero()): its Args escape, so building
// them unconditionally would allocate on every untraced operation.
func (s *Socket) emit(start time.Time, ev Event, ret int, err error) {
	s.emitData(start, ev, ret, err, nil)
}

func (s *Socket) emitData(start time.Time, ev Event, ret int, err error, data []byte) {
	ls := s.table.tracer.Load()
	if start.IsZero() || ls == nil {
		return
	}
	ev.FD, ev.Kind, ev.Owner, ev.Host = s.FD, s.Kind, s.Owner, s.netns.Name()
	ev.Ret, ev.Err = ret, err
	if err != nil && ret == 0 {
		ev.Ret = -1
	}
	if len(data) > 0 && ls.data {
		ev.Data = append([]byte(nil), data...)
	}
	if d := s.payloads.Load(); d != nil {
		ev.Describe = *d
	}
	s.table.emit(start, ev)
}

// String renders the event the way strace does:
//
//	connect(5<TCP>, 127.0.0.1:8080) = -1 ECONNREFUSED (connection refused)
//
// A socket in a lab host carries the host's name: 5<TCP@client>.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Call)
	b.WriteByte('(')
	first := true
	sep := func() {
		if !first {
			b.WriteString(", ")
		}
		first = false
	}
	if e.FD >= 0 {
		sep()
		b.WriteString(strconv.Itoa(e.FD))
		b.WriteByte('<')
		b.WriteString(e.Kind.Label())
		if e.Host != "" {
			b.WriteByte('@')
			b.WriteString(e.Host)
		}
		b.WriteByte('>')
	}
	writesData := e.Call == "write" || e.Call == "sendto"
	for i, a := range e.Args {
		sep()
		if i == 0 && writesData {
			b.WriteString(e.payload())
			b.WriteString(", ")
		}
		b.WriteString(a)
	}
	b.WriteString(") = ")
	if e.Err != nil {
		fmt.Fprintf(&b, "-1 %s (%s)", Code(e.Err), Message(e.Err))
	} else {
		b.WriteString(strconv.Itoa(e.Ret))
		if !writesData && len(e.Data) > 0 {
			b.WriteByte(' ')
			b.WriteString(e.payload())
		}
		if e.Peer.IsValid() && e.Call == "recvfrom" {
			b.WriteString(" from ")
			b.WriteString(e.Peer.String())
		}
	}
	if e.Note != "" {
		b.WriteString(" [")
		b.WriteString(e.Note)
		b.WriteByte(']')
	}
	return b.String()
}

// payload renders Data: described in braces, as strace shows a decoded
// structure, else as a quoted string.
func (e Event) payload() string {
	if e.Describe != nil && len(e.Data) > 0 {
		if d := e.Describe(e.Data); d != "" {
			return "{" + d + "}"
		}
	}
	return quote(e.Data, 32)
}

// Format renders the event with strace -tt -T decorations: a wall-clock
// time in front and the call's duration behind.
func (e Event) Format() string {
	return fmt.Sprintf("%s %s <%.6f>", e.Time.Format("15:04:05.000000"), e.String(), e.Dur.Seconds())
}

// quote renders data as a C string literal cut at max bytes, as strace does.
func quote(data []byte, max int) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, c := range data {
		if i == max {
			b.WriteString(`"...`)
			return b.String()
		}
		switch c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// HexDump renders data sixteen bytes a line with offsets and the printable
// characters, the layout nc -x and xxd users know:
//
//	0000  68 65 6c 6c 6f 0a                                 hello.
func HexDump(data []byte) string {
	var b strings.Builder
	for off := 0; off < len(data); off += 16 {
		line := data[off:min(off+16, len(data))]
		fmt.Fprintf(&b, "%04x  ", off)
		for i := 0; i < 16; i++ {
			if i < len(line) {
				fmt.Fprintf(&b, "%02x ", line[i])
			} else {
				b.WriteString("   ")
			}
			if i == 7 {
				b.WriteByte(' ')
			}
		}
		b.WriteByte(' ')
		for _, c := range line {
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
