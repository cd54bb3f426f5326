//go:build linux

package lua

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
	"sockplay/sock/dns"
	"sockplay/sock/lab"
)

// The lab module: bindings for sock/lab. A lab is hosts (network
// namespaces), links between them with shaping, routers and NAT; every
// sock call works inside a host (host:spawn, host:call), and so do
// programs (host:run).

const (
	labType     = "lab.lab"
	labHostType = "lab.host"
	labLinkType = "lab.link"
)

// labs are the host's labs, for name resolution, the views and Close.
type labs struct {
	mu   sync.Mutex
	list []*labObj
	// The methods and fields of the lab's objects, by metatable, for the
	// REPL's completion.
	names map[*glua.LTable]labNames
}

type labNames struct{ methods, fields []string }

// labObj is a lab and the Lua objects that stand for its parts, so that
// one host is always the same value.
type labObj struct {
	lab   *lab.Lab
	hosts map[*lab.Host]*glua.LUserData
	links map[*lab.Link]*glua.LUserData
	stop  func() bool // stops watching the task that made it
}

type labHostObj struct {
	o *labObj
	h *lab.Host
}

type labLinkObj struct {
	o *labObj
	k *lab.Link
}

func openLab(h *Host) {
	h.newModule("lab", "a lab of hosts: network namespaces, links with delay and loss, routers, NAT (needs root)", []fn{
		{"new", h.labNew, "lab.new() -> net | nil, msg, code  -- an empty lab (needs root); net:host(name), net:router(name), net:link(a, b, {...}); everything in it goes when the script ends, net:close() is called, or the task that made it is killed"},
	})
}

// openLabTypes makes the metatables of the lab's objects, at the first
// lab.new(): a script without a lab does not pay for them at start-up.
func (h *Host) openLabTypes() {
	if h.labs.names != nil {
		return
	}
	h.labs.names = map[*glua.LTable]labNames{}
	h.addMethods(labType, []fn{
		{"host", h.labAddHost(false), "net:host(name) -> host  -- a host: a network namespace of its own with loopback up; name resolves to its addresses inside the lab"},
		{"router", h.labAddHost(true), "net:router(name) -> host  -- a host that forwards IPv4 between its links"},
		{"link", h.labAddLink, "net:link(a, b [, {addrs = {\"10.9.0.1/24\", \"10.9.0.2/24\"}, rate=, delay=, jitter=, loss=, duplicate=, reorder=, seed=}]) -> link  -- join two hosts (devices eth0, eth1 ... in each); addresses picked from 10.0.0.0/8 unless given; the shape applies both ways; routes follow"},
		{"hosts", h.labHosts, "net:hosts() -> {host, ...}  -- the hosts, in the order they were made"},
		{"links", h.labLinks, "net:links() -> {link, ...}  -- the links, in the order they were made"},
		{"close", h.labClose, "net:close() -> true  -- take the lab down: its sockets, devices, namespaces and rules"},
	}, func(L *glua.LState, v any, key string) glua.LValue {
		o := v.(*labObj)
		switch key {
		case "id":
			return glua.LNumber(o.lab.ID)
		case "prefix":
			return glua.LString(o.lab.Prefix())
		}
		return nil
	}, func(v any) string { return strings.TrimRight(renderLab(v.(*labObj).lab), "\n") }, "id", "prefix")

	h.addMethods(labHostType, []fn{
		{"spawn", h.labSpawn, "host:spawn(fn, ...) | host:spawn{fn, ..., name = \"label\"} -> task  -- a background task whose sockets open in the host (and those of the tasks it spawns)"},
		{"call", h.labCall, "host:call(fn, ...) -> fn's results  -- run fn here with its sockets opening in the host: host:call(sock.listen_tcp, \"0.0.0.0\", 80)"},
		{"run", h.labRun, "host:run{argv = {...}, ...} -> result | nil, msg, code  -- proc.run inside the host: its network, the lab's names in /etc/hosts, its hostname"},
		{"addrs", h.labAddrs, "host:addrs() -> {\"10.0.1.2\", ...}  -- the host's addresses, one per link"},
		{"masquerade", h.labMasquerade, "host:masquerade(link) -> true | nil, msg, code  -- NAT: packets leaving over link take this host's address (a home router)"},
		{"redirect", h.labRedirect, "host:redirect(link | nil, port, to_port) -> true | nil, msg, code  -- TCP arriving over link (nil: any) for port goes to this host's to_port; the accepting socket reads sock.getopt(fd, \"original_dst\")"},
	}, func(L *glua.LState, v any, key string) glua.LValue {
		ho := v.(*labHostObj)
		switch key {
		case "name":
			return glua.LString(ho.h.Name)
		case "router":
			return glua.LBool(ho.h.Router)
		case "netns":
			return glua.LString(ho.h.NetnsName())
		case "addr":
			if a := ho.h.Addrs(); len(a) > 0 {
				return glua.LString(a[0].String())
			}
			return glua.LNil
		}
		return nil
	}, func(v any) string {
		ho := v.(*labHostObj)
		role := "host"
		if ho.h.Router {
			role = "router"
		}
		var addrs []string
		for _, a := range ho.h.Addrs() {
			addrs = append(addrs, a.String())
		}
		return fmt.Sprintf("<%s %s %s>", role, ho.h.Name, strings.Join(append(addrs, ho.h.NetnsName()), " "))
	}, "name", "router", "netns", "addr")

	h.addMethods(labLinkType, []fn{
		{"shape", h.labShape, "link:shape([from_host,] {rate=, delay=, jitter=, loss=, duplicate=, reorder=}) -> true  -- shape both directions, or the frames leaving from_host; replaces the shape, {} clears it; acts at once on running connections. rate: bits/s or \"10mbit\"; delay, jitter: seconds; loss, duplicate, reorder: 0..1"},
		{"down", h.labSetUp(false), "link:down() -> true  -- pull the cable: both devices lose their carrier and every frame is dropped"},
		{"up", h.labSetUp(true), "link:up() -> true  -- plug it back in"},
		{"stats", h.labStats, "link:stats(from_host) -> {frames, bytes, delivered, lost, down, duplicated, reordered, overflow, queued}  -- what the link did to the frames leaving from_host"},
		{"addr", h.labLinkAddr, "link:addr(host) -> \"10.0.1.2\", \"eth0\"  -- the host's address and device on this link"},
	}, func(L *glua.LState, v any, key string) glua.LValue {
		lo := v.(*labLinkObj)
		switch key {
		case "id":
			return glua.LNumber(lo.k.ID)
		case "a":
			return lo.o.hosts[lo.k.A.Host]
		case "b":
			return lo.o.hosts[lo.k.B.Host]
		case "name":
			return glua.LString(lo.k.Name())
		case "state":
			if lo.k.Up() {
				return glua.LString("up")
			}
			return glua.LString("down")
		}
		return nil
	}, func(v any) string {
		k := v.(*labLinkObj).k
		state := "up"
		if !k.Up() {
			state = "down"
		}
		return fmt.Sprintf("<link %d %s %s - %s %s %s: %s | %s>", k.ID, k.A.Host.Name, k.A.Addr, k.B.Host.Name, k.B.Addr, state,
			k.Shape(k.A.Host), k.Shape(k.B.Host))
	}, "id", "a", "b", "name", "state")
}

// addMethods makes a metatable for userdata of type name: methods, the
// fields field answers (named in fields, for completion), and a string
// form.
func (h *Host) addMethods(name string, methods []fn, field func(*glua.LState, any, string) glua.LValue, str func(any) string, fields ...string) {
	mt := h.L.NewTypeMetatable(name)
	mtab := h.L.NewTable()
	h.addFuncs(mtab, methods)
	names := labNames{fields: fields}
	for _, m := range methods {
		names.methods = append(names.methods, m.name)
	}
	h.labs.names[mt] = names
	mt.RawSetString("__index", h.L.NewFunction(func(L *glua.LState) int {
		v := checkUserdata(L, 1, name)
		key := L.CheckString(2)
		if f := field(L, v, key); f != nil {
			L.Push(f)
			return 1
		}
		L.Push(mtab.RawGetString(key))
		return 1
	}))
	mt.RawSetString("__tostring", h.L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString(str(checkUserdata(L, 1, name))))
		return 1
	}))
}

// labFields lists what a lab object offers: its methods, and its fields
// too unless methodsOnly.
func (h *Host) labFields(ud *glua.LUserData, methodsOnly bool) []string {
	mt, _ := ud.Metatable.(*glua.LTable)
	names, ok := h.labs.names[mt]
	if !ok {
		return nil
	}
	out := append([]string(nil), names.methods...)
	if !methodsOnly {
		out = append(out, names.fields...)
	}
	return out
}

// checkUserdata returns the value behind argument n when it is of type
// name, and raises otherwise.
func checkUserdata(L *glua.LState, n int, name string) any {
	if ud, ok := L.Get(n).(*glua.LUserData); ok && ud.Metatable == L.GetTypeMetatable(name) {
		return ud.Value
	}
	what := strings.TrimPrefix(name, "lab.")
	if name == labType {
		what = "lab"
	}
	L.ArgError(n, what+" expected, got "+L.Get(n).Type().String())
	return nil
}

func checkLab(L *glua.LState, n int) *labObj {
	o := checkUserdata(L, n, labType).(*labObj)
	if o.lab.Closed() {
		L.ArgError(n, fmt.Sprintf("lab %d is closed", o.lab.ID))
	}
	return o
}

func checkLabHost(L *glua.LState, n int) *labHostObj {
	ho := checkUserdata(L, n, labHostType).(*labHostObj)
	if ho.o.lab.Closed() {
		L.ArgError(n, fmt.Sprintf("host %s's lab is closed", ho.h.Name))
	}
	return ho
}

func checkLabLink(L *glua.LState, n int) *labLinkObj {
	lo := checkUserdata(L, n, labLinkType).(*labLinkObj)
	if lo.o.lab.Closed() {
		L.ArgError(n, fmt.Sprintf("link %s's lab is closed", lo.k.Name()))
	}
	return lo
}

func newUserdata(L *glua.LState, v any, typ string) *glua.LUserData {
	ud := L.NewUserData()
	ud.Value = v
	ud.Metatable = L.GetTypeMetatable(typ)
	return ud
}

func (h *Host) labNew(L *glua.LState) int {
	h.openLabTypes()
	var l *lab.Lab
	var err error
	h.blocking(L, "lab", func(context.Context) { l, err = lab.New() })
	if err != nil {
		return pushFail(L, err)
	}
	o := &labObj{lab: l, hosts: map[*lab.Host]*glua.LUserData{}, links: map[*lab.Link]*glua.LUserData{}}
	h.labs.mu.Lock()
	h.labs.list = append(h.labs.list, o)
	h.labs.mu.Unlock()
	// Killed (or Ctrl-C'd), the task that made the lab takes it down with
	// it; a task that just ends leaves it to the tasks it started.
	if t := h.taskOf(L); t != nil {
		o.stop = t.ctx.AfterFunc(func() {
			if cause := t.ctx.Cause(); cause != nil && !errors.Is(cause, context.Canceled) {
				h.closeLab(o)
			}
		})
	}
	L.Push(newUserdata(L, o, labType))
	return 1
}

// closeLab closes the lab's sockets, then the lab, and then forgets it:
// not before, so that the host's Close, finding it still listed, waits
// for a close that a killed task began.
func (h *Host) closeLab(o *labObj) error {
	if o.stop != nil {
		o.stop()
	}
	for _, ho := range o.lab.Hosts() {
		h.table.CloseIn(ho.Netns())
		h.table.SetNote(ho.Netns().FD(), "")
		for _, i := range ho.Ifaces() {
			h.table.SetNote(i.FD(), "")
		}
	}
	err := o.lab.Close()
	h.labs.mu.Lock()
	for i, x := range h.labs.list {
		if x == o {
			h.labs.list = append(h.labs.list[:i], h.labs.list[i+1:]...)
			break
		}
	}
	h.labs.mu.Unlock()
	return err
}

// closeLabs takes every lab down, at the host's Close.
func (h *Host) closeLabs() {
	h.labs.mu.Lock()
	list := h.labs.list
	h.labs.list = nil
	h.labs.mu.Unlock()
	for _, o := range list {
		h.closeLab(o)
	}
}

// LabText describes every open lab, as .lab shows them.
func (h *Host) LabText() string {
	h.labs.mu.Lock()
	defer h.labs.mu.Unlock()
	var parts []string
	for _, o := range h.labs.list {
		if !o.lab.Closed() {
			parts = append(parts, renderLab(o.lab))
		}
	}
	if len(parts) == 0 {
		return "(no lab: lab.new() makes one)\n"
	}
	return strings.Join(parts, "\n")
}

// renderLab is the lab as print(net) and .lab show it: a title and two
// aligned tables, hosts then links.
func renderLab(l *lab.Lab) string {
	title, hosts, links := l.Tables()
	text := title + "\n"
	if len(hosts) > 1 {
		text += alignRows(hosts)
	}
	if len(links) > 1 {
		text += "\n" + alignRows(links)
	}
	return text
}

// labLookup resolves a lab host's name for a task whose sockets open in
// that lab (ns), as the hosts file does for the programs run there: ok is
// false when ns belongs to no lab or name to no host of it. The lab
// speaks IPv4.
func (h *Host) labLookup(ns *sock.Netns, name string, fam dns.Family) ([]netip.Addr, bool) {
	if ns == nil {
		return nil, false
	}
	h.labs.mu.Lock()
	defer h.labs.mu.Unlock()
	for _, o := range h.labs.list {
		if o.lab.Owns(ns) {
			addrs := o.lab.Lookup(name)
			if fam&dns.IPv4 == 0 {
				return nil, addrs != nil
			}
			return addrs, addrs != nil
		}
	}
	return nil, false
}

func (h *Host) labAddHost(router bool) glua.LGFunction {
	return func(L *glua.LState) int {
		o := checkLab(L, 1)
		name := L.CheckString(2)
		if err := lab.CheckHostName(name); err != nil {
			L.ArgError(2, err.Error())
		}
		if o.lab.Host(name) != nil {
			L.ArgError(2, "the lab has a host "+name+" already")
		}
		var host *lab.Host
		var err error
		h.blocking(L, "lab host", func(context.Context) { host, err = o.lab.AddHost(name, router) })
		if err != nil {
			return pushFail(L, err)
		}
		h.table.SetNote(host.Netns().FD(), "netns of lab host "+name+" ("+host.NetnsName()+")")
		ud := newUserdata(L, &labHostObj{o: o, h: host}, labHostType)
		o.hosts[host] = ud
		L.Push(ud)
		return 1
	}
}

// checkHostOf reads argument n as a host of lab o.
func checkHostOf(L *glua.LState, n int, o *labObj) *lab.Host {
	ho := checkLabHost(L, n)
	if ho.o != o {
		L.ArgError(n, "host "+ho.h.Name+" belongs to another lab")
	}
	return ho.h
}

func (h *Host) labAddLink(L *glua.LState) int {
	o := checkLab(L, 1)
	a, b := checkHostOf(L, 2, o), checkHostOf(L, 3, o)
	if a == b {
		L.ArgError(3, "a link joins two different hosts")
	}
	var opts lab.LinkOptions
	var shape lab.Shape
	if t, ok := L.Get(4).(*glua.LTable); ok {
		shape = checkShape(L, 4, t, "addrs", "seed")
		switch v := t.RawGetString("addrs").(type) {
		case *glua.LNilType:
		case *glua.LTable:
			x, errx := netip.ParsePrefix(glua.LVAsString(v.RawGetInt(1)))
			y, erry := netip.ParsePrefix(glua.LVAsString(v.RawGetInt(2)))
			if errx != nil || erry != nil || v.Len() != 2 {
				L.ArgError(4, "addrs: want two addresses with a prefix length, {\"10.9.0.1/24\", \"10.9.0.2/24\"}")
			}
			opts.AddrA, opts.AddrB = x, y
		default:
			L.ArgError(4, "addrs: table expected, got "+v.Type().String())
		}
		if n, ok := t.RawGetString("seed").(glua.LNumber); ok {
			opts.Seed = uint64(n)
		}
	} else if L.Get(4) != glua.LNil {
		L.ArgError(4, "table expected, got "+L.Get(4).Type().String())
	}
	var k *lab.Link
	var err error
	h.blocking(L, "lab link", func(context.Context) {
		k, err = o.lab.AddLink(a, b, opts)
		if err == nil && shape != (lab.Shape{}) {
			err = k.SetShape(nil, shape)
		}
	})
	if err != nil {
		if sock.Code(err) == "EINVAL" && k == nil {
			L.ArgError(4, sock.Message(err))
		}
		return pushFail(L, err)
	}
	for _, i := range []*lab.Iface{k.A, k.B} {
		h.table.SetNote(i.FD(), fmt.Sprintf("TAP device %s of lab host %s (link %d, %s)", i.Name, i.Host.Name, k.ID, k.Name()))
	}
	ud := newUserdata(L, &labLinkObj{o: o, k: k}, labLinkType)
	o.links[k] = ud
	L.Push(ud)
	return 1
}

// checkShape reads a shape table at argument n; extra names other keys
// the table may hold.
func checkShape(L *glua.LState, n int, t *glua.LTable, extra ...string) lab.Shape {
	known := append([]string{"rate", "delay", "jitter", "loss", "duplicate", "reorder"}, extra...)
	t.ForEach(func(k, _ glua.LValue) {
		for _, name := range known {
			if k.String() == name {
				return
			}
		}
		L.ArgError(n, fmt.Sprintf("unknown field %q (known: %s)", k.String(), strings.Join(known, ", ")))
	})
	num := func(key string) float64 {
		switch x := t.RawGetString(key).(type) {
		case glua.LNumber:
			return float64(x)
		case *glua.LNilType:
			return 0
		default:
			L.ArgError(n, fmt.Sprintf("field %q: number expected, got %s", key, x.Type()))
		}
		return 0
	}
	seconds := func(key string) time.Duration {
		v := num(key)
		if v < 0 || v > lab.MaxDelay.Seconds() {
			L.ArgError(n, fmt.Sprintf("%s must be between 0 and %g seconds, not %g", key, lab.MaxDelay.Seconds(), v))
		}
		return time.Duration(v * float64(time.Second))
	}
	s := lab.Shape{Delay: seconds("delay"), Jitter: seconds("jitter"), Loss: num("loss"), Duplicate: num("duplicate"), Reorder: num("reorder")}
	switch r := t.RawGetString("rate").(type) {
	case *glua.LNilType:
	case glua.LNumber:
		if r < 0 {
			L.ArgError(n, fmt.Sprintf("rate must not be negative, not %g", float64(r)))
		}
		s.Rate = uint64(r)
	case glua.LString:
		bps, err := parseRate(string(r))
		if err != nil {
			L.ArgError(n, err.Error())
		}
		s.Rate = bps
	default:
		L.ArgError(n, "field \"rate\": bits per second or a string like \"10mbit\" expected, got "+r.Type().String())
	}
	if err := s.Check(); err != nil {
		L.ArgError(n, err.Error())
	}
	return s
}

// parseRate reads a rate as tc writes one: 100kbit, 10mbit, 1gbit, 500bit
// (bits per second; "kbps" and the like are bytes, as tc has them).
func parseRate(s string) (uint64, error) {
	lower := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(lower, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("rate %q: want a number and a unit, like \"10mbit\"", s)
	}
	v, err := strconv.ParseFloat(lower[:i], 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("rate %q: want a number and a unit, like \"10mbit\"", s)
	}
	mult := map[string]float64{"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9}[lower[i:]]
	if mult == 0 {
		return 0, fmt.Errorf("rate %q: unknown unit %q (bit, kbit, mbit, gbit; bps, kbps, mbps, gbps are bytes)", s, lower[i:])
	}
	return uint64(v * mult), nil
}

func (h *Host) labHosts(L *glua.LState) int {
	o := checkLab(L, 1)
	t := L.NewTable()
	for _, host := range o.lab.Hosts() {
		t.Append(o.hosts[host])
	}
	L.Push(t)
	return 1
}

func (h *Host) labLinks(L *glua.LState) int {
	o := checkLab(L, 1)
	t := L.NewTable()
	for _, k := range o.lab.Links() {
		t.Append(o.links[k])
	}
	L.Push(t)
	return 1
}

func (h *Host) labClose(L *glua.LState) int {
	o := checkUserdata(L, 1, labType).(*labObj)
	var err error
	h.blocking(L, "lab close", func(context.Context) { err = h.closeLab(o) })
	return pushTrue(L, err)
}

func (h *Host) labSpawn(L *glua.LState) int {
	ho := checkLabHost(L, 1)
	if spec, ok := L.Get(2).(*glua.LTable); ok && L.GetTop() == 2 {
		L.Push(h.taskValue(L, h.spawnSpec(L, 2, spec, ho.h.Netns())))
		return 1
	}
	fn := L.CheckFunction(2)
	args := make([]glua.LValue, 0, L.GetTop()-2)
	for i := 3; i <= L.GetTop(); i++ {
		args = append(args, L.Get(i))
	}
	t := h.startTaskIn(ho.h.Netns(), fn, args, ho.h.Name+" "+functionName(fn))
	L.Push(h.taskValue(L, t))
	return 1
}

func (h *Host) labCall(L *glua.LState) int {
	ho := checkLabHost(L, 1)
	fn := L.CheckFunction(2)
	t := h.taskOf(L)
	if t == nil {
		L.RaiseError("host:call runs only inside a task")
	}
	prev := t.ctx.netns.Swap(ho.h.Netns())
	defer t.ctx.netns.Store(prev) // an error raised by fn passes through here too
	top := L.GetTop()
	L.Push(fn)
	for i := 3; i <= top; i++ {
		L.Push(L.Get(i))
	}
	L.Call(top-2, glua.MultRet)
	return L.GetTop() - top
}

func (h *Host) labRun(L *glua.LState) int {
	ho := checkLabHost(L, 1)
	spec := checkRunSpec(L, 2)
	spec.start = ho.h.Start
	return h.runAndPush(L, spec)
}

func (h *Host) labAddrs(L *glua.LState) int {
	ho := checkLabHost(L, 1)
	t := L.NewTable()
	for _, a := range ho.h.Addrs() {
		t.Append(glua.LString(a.String()))
	}
	L.Push(t)
	return 1
}

// checkIfaceOf reads argument n as a link of host's, and returns host's
// end of it.
func checkIfaceOf(L *glua.LState, n int, ho *labHostObj) *lab.Iface {
	lo := checkLabLink(L, n)
	for _, i := range []*lab.Iface{lo.k.A, lo.k.B} {
		if i.Host == ho.h {
			return i
		}
	}
	L.ArgError(n, fmt.Sprintf("link %s does not reach %s", lo.k.Name(), ho.h.Name))
	return nil
}

func (h *Host) labMasquerade(L *glua.LState) int {
	ho := checkLabHost(L, 1)
	out := checkIfaceOf(L, 2, ho)
	var err error
	h.blocking(L, "nftables", func(context.Context) { err = ho.h.Masquerade(out) })
	return pushTrue(L, err)
}

func (h *Host) labRedirect(L *glua.LState) int {
	ho := checkLabHost(L, 1)
	var in *lab.Iface
	if L.Get(2) != glua.LNil {
		in = checkIfaceOf(L, 2, ho)
	}
	port, to := checkPort(L, 3), checkPort(L, 4)
	if port == 0 || to == 0 {
		L.ArgError(3, "ports must be 1-65535")
	}
	var err error
	h.blocking(L, "nftables", func(context.Context) { err = ho.h.Redirect(in, uint16(port), uint16(to)) })
	return pushTrue(L, err)
}

// linkEnd reads an optional from-host at argument n of link lo.
func linkEnd(L *glua.LState, n int, lo *labLinkObj) *lab.Host {
	ho := checkLabHost(L, n)
	if ho.h != lo.k.A.Host && ho.h != lo.k.B.Host {
		L.ArgError(n, fmt.Sprintf("%s is not an end of link %s", ho.h.Name, lo.k.Name()))
	}
	return ho.h
}

func (h *Host) labShape(L *glua.LState) int {
	lo := checkLabLink(L, 1)
	var from *lab.Host
	n := 2
	if _, ok := L.Get(2).(*glua.LUserData); ok {
		from, n = linkEnd(L, 2, lo), 3
	}
	t, ok := L.Get(n).(*glua.LTable)
	if !ok {
		L.ArgError(n, "shape table expected, got "+L.Get(n).Type().String())
	}
	s := checkShape(L, n, t)
	var err error
	h.blocking(L, "lab shape", func(context.Context) { err = lo.k.SetShape(from, s) })
	return pushTrue(L, err)
}

func (h *Host) labSetUp(up bool) glua.LGFunction {
	return func(L *glua.LState) int {
		lo := checkLabLink(L, 1)
		return pushTrue(L, lo.k.SetUp(up))
	}
}

func (h *Host) labStats(L *glua.LState) int {
	lo := checkLabLink(L, 1)
	st := lo.k.Stats(linkEnd(L, 2, lo))
	t := L.NewTable()
	for _, f := range []struct {
		name string
		v    uint64
	}{{"frames", st.Frames}, {"bytes", st.Bytes}, {"delivered", st.Delivered}, {"lost", st.Lost}, {"down", st.Down},
		{"duplicated", st.Duplicated}, {"reordered", st.Reordered}, {"overflow", st.Overflow}, {"queued", uint64(st.Queued)}} {
		t.RawSetString(f.name, glua.LNumber(f.v))
	}
	L.Push(t)
	return 1
}

func (h *Host) labLinkAddr(L *glua.LState) int {
	lo := checkLabLink(L, 1)
	end := linkEnd(L, 2, lo)
	i := lo.k.A
	if end == lo.k.B.Host {
		i = lo.k.B
	}
	L.Push(glua.LString(i.Addr.Addr().String()))
	L.Push(glua.LString(i.Name))
	return 2
}
