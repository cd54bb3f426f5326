package lua

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"
	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
	"sockplay/sock/wire"
)

// The capture module: packet captures on real interfaces (AF_PACKET, fds
// in the table like any socket), each packet a table of layers with
// named fields and byte offsets, tied to the fd and the call that caused
// it; pcap files written and read.

const (
	captureType = "capture.capture"
	packetType  = "capture.packet"
)

// captureObj is a capture as Lua holds it. Its formatter gives next()'s
// packets tcpdump's relative sequence numbers, so it sees them in order.
type captureObj struct {
	c   *wire.Capture
	fmt *wire.Formatter
}

// captures are the host's captures, stopped when it closes (after every
// other socket, so that their last packets are in).
type captures struct {
	mu      sync.Mutex
	list    []*wire.Capture
	display atomic.Pointer[display] // the one showing lines: --capture, .capture
}

// display is a capture whose packets are printed as lines on a console,
// with the trace's lines among them when both are on.
type display struct {
	c *wire.Capture
	w *Console
	f *wire.Formatter
}

func (cs *captures) add(c *wire.Capture) {
	cs.mu.Lock()
	live := cs.list[:0]
	for _, x := range cs.list {
		select {
		case <-x.Done():
		default:
			live = append(live, x)
		}
	}
	cs.list = append(live, c)
	cs.mu.Unlock()
}

// all lists the captures, the one showing lines first.
func (cs *captures) all() []*wire.Capture {
	cs.mu.Lock()
	list := append([]*wire.Capture(nil), cs.list...)
	cs.mu.Unlock()
	if d := cs.display.Load(); d != nil {
		list = append([]*wire.Capture{d.c}, list...)
	}
	return list
}

// stopAll stops every capture, each flushing what it holds.
func (cs *captures) stopAll() {
	cs.display.Store(nil)
	cs.mu.Lock()
	list := cs.list
	cs.list = nil
	cs.mu.Unlock()
	for _, c := range list {
		c.Stop()
	}
}

func openCaptureModule(h *Host) {
	h.newModule("capture", "packet capture (needs root): open a capture, read its packets layer by layer, pcap files", append([]fn{
		{"open", h.captureOpen, "capture.open([{iface=, filter=, netns=, snaplen=, pcap=, queue=, keep=}]) -> cap | nil, msg, code  -- capture packets on iface (default \"lo\") with a tcpdump filter (default: this script's own sockets); netns: a sock.netns() or a lab host; pcap: a file to write as it goes; the capture is an fd (kind packet)"},
		{"read_pcap", h.captureReadPcap, "capture.read_pcap(path) -> packets [, damage] | nil, msg, code  -- the packets of a pcap or pcapng file; damage = {packet, offset, message, rest} when the file is damaged or cut short"},
		{"write_pcap", h.captureWritePcap, "capture.write_pcap(path, packets) -> n | nil, msg, code  -- write packets (from next, recent, read_pcap) as a pcap file tcpdump -r and Wireshark read"},
	}, h.captureViewFns()...))
	mt := h.L.NewTypeMetatable(captureType)
	methods := h.L.NewTable()
	h.addFuncs(methods, []fn{
		{"next", h.captureNext, "cap:next([timeout]) -> packet | nil, msg, code  -- wait for the next packet (a table: time, len, data, fd, call, line, layers ...); ETIMEDOUT after timeout seconds, EOF once stopped"},
		{"packets", h.capturePackets, "cap:packets([timeout]) -> iterator  -- for p in cap:packets() do ... end: every packet until the capture stops (or none comes for timeout seconds)"},
		{"recent", h.captureRecent, "cap:recent() -> packets  -- the packets the capture remembers (the last 4096), oldest first"},
		{"connection", h.captureConnection, "cap:connection(fd) -> packets  -- the remembered packets of the connection fd last had, both directions"},
		{"stats", h.captureStats, "cap:stats() -> {received, dropped, kept, missed}  -- the kernel's counters (PACKET_STATISTICS) and what the capture kept; missed: packets next() was too slow for"},
		{"write_pcap", h.captureObjWritePcap, "cap:write_pcap(path) -> n | nil, msg, code  -- the remembered packets as a pcap file"},
		{"stop", h.captureStop, "cap:stop() -> true  -- stop capturing: the packets still queued can be read, then next() says EOF; closes the fd"},
		{"close", h.captureStop, "cap:close() -> true  -- the same as stop"},
	})
	if h.modMethods == nil {
		h.modMethods = map[string]*glua.LTable{}
	}
	h.modMethods["capture"] = methods
	mt.RawSetString("__index", h.L.NewFunction(func(L *glua.LState) int {
		o := checkCapture(L, 1)
		switch k := L.CheckString(2); k {
		case "fd":
			L.Push(glua.LNumber(o.c.FD()))
		case "iface":
			L.Push(glua.LString(o.c.Iface()))
		case "filter":
			L.Push(glua.LString(o.c.Filter()))
		default:
			L.Push(methods.RawGetString(k))
		}
		return 1
	}))
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString(CaptureString(checkCapture(L, 1).c)))
		return 1
	}))
	pmt := h.L.NewTypeMetatable(packetType)
	pmt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		t := L.CheckTable(1)
		s := glua.LVAsString(t.RawGetString("line"))
		if a := glua.LVAsString(t.RawGetString("annotation")); a != "" {
			s += "  " + a
		}
		L.Push(glua.LString(s))
		return 1
	}))
}

// CaptureString is a capture's printed form:
// <capture fd=9 lo "tcp port 80": 12 kept, 0 dropped>
func CaptureString(c *wire.Capture) string {
	st := c.Stats()
	filter := "own sockets"
	if c.Filter() != "" {
		filter = fmt.Sprintf("%q", c.Filter())
	}
	return fmt.Sprintf("<capture fd=%d %s %s: %d kept, %d dropped>", c.FD(), c.Iface(), filter, st.Kept, st.Dropped)
}

func checkCapture(L *glua.LState, n int) *captureObj {
	if ud, ok := L.Get(n).(*glua.LUserData); ok {
		if o, ok := ud.Value.(*captureObj); ok {
			return o
		}
	}
	L.ArgError(n, "capture expected, got "+L.Get(n).Type().String())
	return nil
}

// netnsHolder is a Lua object that stands for a network namespace: a
// sock.netns(), a lab host.
type netnsHolder interface{ captureNetns() *sock.Netns }

func (o *netnsObj) captureNetns() *sock.Netns { return o.ns }

var captureOptNames = []string{"iface", "filter", "netns", "snaplen", "pcap", "queue", "keep"}

func (h *Host) captureOpen(L *glua.LState) int {
	opts := wire.Options{Queue: 1024}
	var pcapPath string
	if L.GetTop() >= 1 && L.Get(1) != glua.LNil {
		t := L.CheckTable(1)
		t.ForEach(func(k, v glua.LValue) {
			key, _ := k.(glua.LString)
			str := func() string {
				s, ok := v.(glua.LString)
				if !ok {
					L.ArgError(1, fmt.Sprintf("field %s: string expected, got %s", key, v.Type()))
				}
				return string(s)
			}
			num := func(lo int) int {
				n, ok := v.(glua.LNumber)
				if !ok || int(n) < lo || float64(int(n)) != float64(n) {
					L.ArgError(1, fmt.Sprintf("field %s: an integer of at least %d expected, got %s", key, lo, v.String()))
				}
				return int(n)
			}
			switch key {
			case "iface":
				opts.Iface = str()
			case "filter":
				opts.Filter = str()
			case "snaplen":
				opts.Snaplen = num(64)
			case "queue":
				opts.Queue = num(1)
			case "keep":
				opts.Keep = num(0)
				if opts.Keep == 0 {
					opts.Keep = -1
				}
			case "pcap":
				pcapPath = str()
			case "netns":
				ud, ok := v.(*glua.LUserData)
				var nh netnsHolder
				if ok {
					nh, ok = ud.Value.(netnsHolder)
				}
				if !ok {
					L.ArgError(1, "field netns: a sock.netns() or a lab host expected, got "+v.Type().String())
				}
				opts.Netns = nh.captureNetns()
			default:
				L.ArgError(1, fmt.Sprintf("unknown option %q (known: %s)", k.String(), strings.Join(captureOptNames, ", ")))
			}
		})
	}
	// A filter that does not parse is the script's mistake.
	if _, err := wire.CompileFilter(opts.Filter, layers.LinkTypeEthernet, 0); err != nil {
		L.ArgError(1, "capture: "+err.Error())
	}
	var file *os.File
	if pcapPath != "" {
		f, err := os.Create(pcapPath)
		if err != nil {
			return pushFail(L, &sock.Error{Op: "capture", Code: "EIO", Msg: pathError(err).Error()})
		}
		file = f
		opts.Pcap = f
	}
	c, err := wire.Open(h.taskCtx(L), h.table, opts)
	if err != nil {
		if file != nil {
			file.Close()
			os.Remove(pcapPath)
		}
		return pushFail(L, err)
	}
	if file != nil {
		go func() { <-c.Done(); c.Stop(); file.Close() }()
	}
	h.captures.add(c)
	ud := L.NewUserData()
	ud.Value = &captureObj{c: c, fmt: wire.NewFormatter()}
	ud.Metatable = L.GetTypeMetatable(captureType)
	L.Push(ud)
	return 1
}

// seconds reads an optional timeout argument.
func seconds(L *glua.LState, n int) time.Duration {
	if L.Get(n) == glua.LNil {
		return 0
	}
	s := float64(L.CheckNumber(n))
	if s < 0 {
		L.ArgError(n, "timeout must not be negative")
	}
	return time.Duration(s * float64(time.Second))
}

func (h *Host) captureNext(L *glua.LState) int {
	o := checkCapture(L, 1)
	return h.nextPacket(L, o, seconds(L, 2))
}

// nextPacket waits for o's next packet and pushes it, or the failure.
func (h *Host) nextPacket(L *glua.LState, o *captureObj, timeout time.Duration) int {
	var p wire.Packet
	var err error
	h.blocking(L, "capture", func(ctx context.Context) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		p, err = o.c.Next(ctx)
	})
	switch {
	case err == nil:
		L.Push(packetTable(L, p, o.fmt))
		return 1
	case errors.Is(err, wire.ErrStopped):
		return pushFail(L, &sock.Error{Code: "EOF", Msg: "capture stopped"})
	case errors.Is(err, context.DeadlineExceeded):
		return pushFail(L, sock.ErrTimeout)
	}
	return pushFail(L, sock.ErrCanceled)
}

func (h *Host) capturePackets(L *glua.LState) int {
	o := checkCapture(L, 1)
	timeout := seconds(L, 2)
	L.Push(L.NewFunction(func(L *glua.LState) int {
		n := h.nextPacket(L, o, timeout)
		if n > 1 {
			code := glua.LVAsString(L.Get(-1))
			if code == "EOF" || code == "ETIMEDOUT" {
				L.Pop(n)
				L.Push(glua.LNil)
				return 1
			}
			L.RaiseError("capture: %s", glua.LVAsString(L.Get(-2)))
		}
		return n
	}))
	return 1
}

// pushPackets pushes a list of packets, their lines numbered by one
// formatter as tcpdump would number them.
func pushPackets(L *glua.LState, pkts []wire.Packet) {
	f := wire.NewFormatter()
	t := L.CreateTable(len(pkts), 0)
	for _, p := range pkts {
		t.Append(packetTable(L, p, f))
	}
	L.Push(t)
}

func (h *Host) captureRecent(L *glua.LState) int {
	pushPackets(L, checkCapture(L, 1).c.Recent())
	return 1
}

func (h *Host) captureConnection(L *glua.LState) int {
	o := checkCapture(L, 1)
	pushPackets(L, o.c.Connection(L.CheckInt(2)))
	return 1
}

func (h *Host) captureStats(L *glua.LState) int {
	st := checkCapture(L, 1).c.Stats()
	t := L.NewTable()
	t.RawSetString("received", glua.LNumber(st.Received))
	t.RawSetString("dropped", glua.LNumber(st.Dropped))
	t.RawSetString("kept", glua.LNumber(st.Kept))
	t.RawSetString("missed", glua.LNumber(st.Missed))
	L.Push(t)
	return 1
}

func (h *Host) captureStop(L *glua.LState) int {
	o := checkCapture(L, 1)
	var err error
	h.blocking(L, "capture stop", func(context.Context) { err = o.c.Stop() })
	return pushTrue(L, err)
}

func (h *Host) captureObjWritePcap(L *glua.LState) int {
	o := checkCapture(L, 1)
	path := L.CheckString(2)
	return writePcap(L, path, o.c.Recent(), o.c.LinkType())
}

func (h *Host) captureWritePcap(L *glua.LState) int {
	path := L.CheckString(1)
	list := L.CheckTable(2)
	var pkts []wire.Packet
	n := list.Len()
	for i := 1; i <= n; i++ {
		p, ok := PacketFromLua(list.RawGetInt(i))
		if !ok {
			L.ArgError(2, fmt.Sprintf("element %d is not a packet (a table with data and time)", i))
		}
		pkts = append(pkts, p)
	}
	link := layers.LinkTypeEthernet
	if len(pkts) > 0 {
		link = pkts[0].Link
	}
	return writePcap(L, path, pkts, link)
}

func writePcap(L *glua.LState, path string, pkts []wire.Packet, link layers.LinkType) int {
	f, err := os.Create(path)
	if err != nil {
		return pushFail(L, &sock.Error{Op: "write_pcap", Code: "EIO", Msg: pathError(err).Error()})
	}
	w, err := wire.NewPcapWriter(f, link, 0)
	for _, p := range pkts {
		if err == nil {
			err = w.Write(p)
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return pushFail(L, &sock.Error{Op: "write_pcap", Code: "EIO", Msg: err.Error()})
	}
	L.Push(glua.LNumber(len(pkts)))
	return 1
}

func (h *Host) captureReadPcap(L *glua.LState) int {
	path := L.CheckString(1)
	f, err := os.Open(path)
	if err != nil {
		return pushFail(L, &sock.Error{Op: "read_pcap", Code: "ENOENT", Msg: path + ": " + pathError(err).Error()})
	}
	defer f.Close()
	pkts, err := wire.ReadPcap(f)
	var pe *wire.PcapError
	if err != nil && (!errors.As(err, &pe) || pe.Packet == 0) {
		return pushFail(L, &sock.Error{Op: "read_pcap", Code: "EINVAL", Msg: path + ": " + err.Error()})
	}
	pushPackets(L, pkts)
	if pe == nil {
		return 1
	}
	d := L.NewTable()
	d.RawSetString("packet", glua.LNumber(pe.Packet))
	d.RawSetString("offset", glua.LNumber(pe.Offset))
	d.RawSetString("message", glua.LString(pe.Error()))
	d.RawSetString("rest", glua.LString(pe.Rest))
	L.Push(d)
	return 2
}

// packetTable is a packet as Lua sees it: what the capture knows of it,
// its tcpdump line, and its layers with their fields, each with the byte
// offset and length it has in data (0-based, as the hex dump counts:
// data:sub(l.offset + 1, l.offset + l.length) is a layer's bytes).
func packetTable(L *glua.LState, p wire.Packet, f *wire.Formatter) *glua.LTable {
	t := L.CreateTable(0, 20)
	t.RawSetString("time", glua.LNumber(float64(p.Time.UnixNano())/1e9))
	t.RawSetString("len", glua.LNumber(p.WireLen))
	t.RawSetString("caplen", glua.LNumber(len(p.Data)))
	t.RawSetString("data", glua.LString(p.Data))
	t.RawSetString("link", glua.LString(linkName(p.Link)))
	if p.Iface != "" {
		t.RawSetString("iface", glua.LString(p.Iface))
	}
	if p.Out {
		t.RawSetString("out", glua.LTrue)
	}
	if p.FD >= 0 {
		t.RawSetString("fd", glua.LNumber(p.FD))
		t.RawSetString("owner", glua.LString(p.Owner))
	}
	if p.PeerFD >= 0 {
		t.RawSetString("peer_fd", glua.LNumber(p.PeerFD))
		t.RawSetString("peer_owner", glua.LString(p.PeerOwner))
	}
	if p.Call != "" {
		t.RawSetString("call", glua.LString(p.Call))
	}
	t.RawSetString("line", glua.LString(f.Line(p)))
	if a := wire.Annotation(p); a != "" {
		t.RawSetString("annotation", glua.LString(a))
	}
	ls := L.NewTable()
	for _, l := range wire.Decode(p) {
		lt := spanTable(L, l.Name, l.Start, l.End)
		lt.RawSetString("level", glua.LString(l.Level))
		if l.Note != "" {
			lt.RawSetString("note", glua.LString(l.Note))
		}
		fs := L.CreateTable(len(l.Fields), 0)
		for _, fd := range l.Fields {
			ft := spanTable(L, fd.Name, fd.Start, fd.End)
			ft.RawSetString("value", glua.LString(fd.Value))
			if fd.Bits != "" {
				ft.RawSetString("bits", glua.LString(fd.Bits))
			}
			fs.Append(ft)
			if lt.RawGetString(fd.Name) == glua.LNil {
				lt.RawSetString(fd.Name, glua.LString(fd.Value)) // l["source port"]
			}
		}
		lt.RawSetString("fields", fs)
		ls.Append(lt)
		if t.RawGetString(l.Name) == glua.LNil && l.Name != "" {
			t.RawSetString(l.Name, lt) // p.TCP, p.IPv4
		}
	}
	t.RawSetString("layers", ls)
	L.SetMetatable(t, L.GetTypeMetatable(packetType))
	return t
}

// spanTable is a named piece of a frame: {name, offset, length}.
func spanTable(L *glua.LState, name string, start, end int) *glua.LTable {
	t := L.CreateTable(0, 6)
	t.RawSetString("name", glua.LString(name))
	t.RawSetString("offset", glua.LNumber(start))
	t.RawSetString("length", glua.LNumber(end-start))
	return t
}

func linkName(l layers.LinkType) string {
	switch l {
	case layers.LinkTypeEthernet:
		return "ethernet"
	case layers.LinkTypeRaw:
		return "raw"
	case layers.LinkTypeLinuxSLL:
		return "linux_sll"
	case layers.LinkTypeNull:
		return "null"
	}
	return fmt.Sprint(uint8(l))
}

// PacketFromLua turns a packet table (from cap:next, cap:recent,
// capture.read_pcap) back into the packet it shows: its bytes, time, link
// type and what the capture knew of its socket and call.
func PacketFromLua(v glua.LValue) (wire.Packet, bool) {
	t, ok := v.(*glua.LTable)
	if !ok {
		return wire.Packet{}, false
	}
	data, ok1 := t.RawGetString("data").(glua.LString)
	when, ok2 := t.RawGetString("time").(glua.LNumber)
	if !ok1 || !ok2 {
		return wire.Packet{}, false
	}
	p := wire.Packet{Data: []byte(data), FD: -1, PeerFD: -1, Link: layers.LinkTypeEthernet}
	sec := float64(when)
	p.Time = time.Unix(0, int64(sec*1e9))
	p.WireLen = len(p.Data)
	if n, ok := t.RawGetString("len").(glua.LNumber); ok && int(n) > len(p.Data) {
		p.WireLen = int(n)
	}
	for _, l := range []layers.LinkType{layers.LinkTypeRaw, layers.LinkTypeLinuxSLL, layers.LinkTypeNull} {
		if glua.LVAsString(t.RawGetString("link")) == linkName(l) {
			p.Link = l
		}
	}
	if n, ok := t.RawGetString("fd").(glua.LNumber); ok {
		p.FD, p.Owner = int(n), glua.LVAsString(t.RawGetString("owner"))
	}
	if n, ok := t.RawGetString("peer_fd").(glua.LNumber); ok {
		p.PeerFD, p.PeerOwner = int(n), glua.LVAsString(t.RawGetString("peer_owner"))
	}
	if c, ok := t.RawGetString("call").(glua.LString); ok {
		p.Call = string(c)
	}
	p.Iface = glua.LVAsString(t.RawGetString("iface"))
	return p, true
}

// OpenCapture starts a capture that shows nothing by itself (opts says
// where its packets go: a pcap file, Next); the host stops it when it
// closes, after every other socket.
func (h *Host) OpenCapture(opts wire.Options) (*wire.Capture, error) {
	c, err := wire.Open(sock.WithOwner(h.ctx, "capture"), h.table, opts)
	if err != nil {
		return nil, err
	}
	h.captures.add(c)
	return c, nil
}

// CaptureTo shows packets on w as they come, one tcpdump -nn line each
// with its fd and call, until StopCapture: sockplay --capture and the
// REPL's .capture. With the trace on, the trace's lines go among them in
// time order. pcap, when set, gets the packets too.
func (h *Host) CaptureTo(w *Console, opts wire.Options) error {
	h.StopCapture()
	d := &display{w: w, f: wire.NewFormatter()}
	opts.OnPacket = func(p wire.Packet) {
		line := d.f.Line(p)
		if a := wire.Annotation(p); a != "" {
			line += "  " + a
		}
		w.WriteString(line + "\n")
	}
	opts.OnText = func(s string) { w.WriteString(s) }
	c, err := h.OpenCapture(opts)
	if err != nil {
		return err
	}
	d.c = c
	h.captures.display.Store(d)
	return nil
}

// Capturing is the capture CaptureTo started, or nil.
func (h *Host) Capturing() *wire.Capture {
	if d := h.captures.display.Load(); d != nil {
		return d.c
	}
	return nil
}

// StopCapture stops the capture CaptureTo started, after showing what it
// still holds, and returns its counters; false when none was running.
func (h *Host) StopCapture() (wire.Stats, bool) {
	d := h.captures.display.Swap(nil)
	if d == nil {
		return wire.Stats{}, false
	}
	d.c.Stop()
	return d.c.Stats(), true
}

// ConnectionPackets are the packets of the connection fd last had, from
// the captures running (the one showing lines first): what .ladder draws.
func (h *Host) ConnectionPackets(fd int) []wire.Packet {
	for _, c := range h.captures.all() {
		if pkts := c.Connection(fd); len(pkts) > 0 {
			return pkts
		}
	}
	return nil
}

// traceLine sends a trace line to the display capture, which prints it
// in time order among the packets; false when none is showing.
func (h *Host) traceLine(e sock.Event, line string) bool {
	d := h.captures.display.Load()
	if d == nil {
		return false
	}
	return d.c.Interleave(e, line)
}

// StatsLine words a capture's counters for the end of a run.
func StatsLine(st wire.Stats) string {
	parts := []string{fmt.Sprintf("%d packets shown", st.Kept), fmt.Sprintf("%d received by the filter", st.Received), fmt.Sprintf("%d dropped by the kernel", st.Dropped)}
	if st.Missed > 0 {
		parts = append(parts, fmt.Sprintf("%d not read in time", st.Missed))
	}
	return "capture: " + strings.Join(parts, ", ")
}
