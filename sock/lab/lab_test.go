//go:build linux

package lab_test

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sockplay/internal/labtest"
	"sockplay/internal/leakcheck"
	"sockplay/internal/testpeer"
	"sockplay/sock"
	"sockplay/sock/lab"
)

// newLab makes a lab that is closed, and checked for leftovers, when the
// test ends.
func newLab(t *testing.T) *lab.Lab {
	t.Helper()
	before := labtest.Look(t)
	base := leakcheck.Take()
	l, err := lab.New()
	if err != nil {
		t.Fatalf("lab.New: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		before.Check(t, os.Getpid())
		base.Check(t, 2*time.Second)
	})
	return l
}

func addHost(t *testing.T, l *lab.Lab, name string, router bool) *lab.Host {
	t.Helper()
	h, err := l.AddHost(name, router)
	if err != nil {
		t.Fatalf("AddHost(%s): %v", name, err)
	}
	return h
}

func addLink(t *testing.T, l *lab.Lab, a, b *lab.Host, o lab.LinkOptions) *lab.Link {
	t.Helper()
	k, err := l.AddLink(a, b, o)
	if err != nil {
		t.Fatalf("AddLink(%s, %s): %v", a.Name, b.Name, err)
	}
	return k
}

func open(t *testing.T, tab *sock.Table, h *lab.Host) *sock.Socket {
	t.Helper()
	s, err := tab.OpenIn(context.Background(), sock.TCP, h.Netns())
	if err != nil {
		t.Fatal(err)
	}
	s.SetTimeout(10 * time.Second)
	return s
}

// chain is client - router - server.
func chain(t *testing.T, l *lab.Lab) (client, router, server *lab.Host, in, out *lab.Link) {
	t.Helper()
	client = addHost(t, l, "client", false)
	router = addHost(t, l, "router", true)
	server = addHost(t, l, "server", false)
	in = addLink(t, l, client, router, lab.LinkOptions{})
	out = addLink(t, l, router, server, lab.LinkOptions{})
	return
}

// run runs a program inside h and returns its output.
func run(t *testing.T, h *lab.Host, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := h.Start(cmd); err != nil {
		t.Fatalf("start %v in %s: %v", argv, h.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v in %s did not end:\n%s", argv, h.Name, out.String())
	}
	return "", nil
}

func TestAddressesRoutesAndNames(t *testing.T) {
	l := newLab(t)
	client, router, server, in, out := chain(t, l)
	if got := in.A.Addr.String() + " " + in.B.Addr.String(); got != "10.0.1.2/24 10.0.1.1/24" {
		t.Errorf("client-router addresses %s; want the router's end .1", got)
	}
	if got := out.A.Addr.String() + " " + out.B.Addr.String(); got != "10.0.2.1/24 10.0.2.2/24" {
		t.Errorf("router-server addresses %s", got)
	}
	if got := l.Lookup("server"); len(got) != 1 || got[0] != netip.MustParseAddr("10.0.2.2") {
		t.Errorf("Lookup(server) = %v", got)
	}
	if got := l.Lookup("router"); len(got) != 2 {
		t.Errorf("Lookup(router) = %v, want both its addresses", got)
	}
	ip := testpeer.Path(t, "ip")
	routes, err := run(t, client, ip, "route")
	if err != nil || !strings.Contains(routes, "default via 10.0.1.1 dev eth0") {
		t.Errorf("client's routes:\n%s%v", routes, err)
	}
	routes, _ = run(t, router, ip, "route")
	if strings.Contains(routes, "default") || !strings.Contains(routes, "10.0.2.0/24 dev eth1") {
		t.Errorf("router's routes:\n%s", routes)
	}
	// Programs see the lab's names and the host's own devices and name.
	hosts, _ := run(t, client, "getent", "hosts", "server")
	if !strings.HasPrefix(hosts, "10.0.2.2") {
		t.Errorf("getent hosts server in the client: %q", hosts)
	}
	name, _ := run(t, server, "hostname")
	if strings.TrimSpace(name) != "server" {
		t.Errorf("hostname in the server: %q", name)
	}
	links, _ := run(t, router, ip, "-o", "link")
	if !regexp.MustCompile(`eth0: .*UP`).MatchString(links) || !strings.Contains(links, "eth1:") || strings.Contains(links, "ifb0") {
		t.Errorf("ip link in the router:\n%s", links)
	}
	if got, _ := os.Readlink("/proc/self/ns/net"); got == "" {
		t.Error("no namespace of our own?")
	}
	// The name of each namespace is there for ip netns exec.
	if out, err := exec.Command(ip, "netns", "exec", server.NetnsName(), ip, "-o", "addr").CombinedOutput(); err != nil || !strings.Contains(string(out), "10.0.2.2/24") {
		t.Errorf("ip netns exec %s ip addr: %v\n%s", server.NetnsName(), err, out)
	}
}

func TestBadInput(t *testing.T) {
	l := newLab(t)
	a := addHost(t, l, "a", false)
	b := addHost(t, l, "b", false)
	for _, name := range []string{"", "A", "1x", "a b", "x-", strings.Repeat("x", 32)} {
		if _, err := l.AddHost(name, false); sock.Code(err) != "EINVAL" {
			t.Errorf("AddHost(%q): %v, want EINVAL", name, err)
		}
	}
	if _, err := l.AddHost("a", false); sock.Code(err) != "EEXIST" {
		t.Errorf("a second host a: %v", err)
	}
	if _, err := l.AddLink(a, a, lab.LinkOptions{}); sock.Code(err) != "EINVAL" {
		t.Errorf("a link to itself: %v", err)
	}
	p := netip.MustParsePrefix
	for _, o := range []lab.LinkOptions{
		{AddrA: p("10.9.0.1/24")},
		{AddrA: p("10.9.0.1/24"), AddrB: p("10.9.1.2/24")},
		{AddrA: p("10.9.0.1/24"), AddrB: p("10.9.0.1/24")},
		{AddrA: p("10.9.0.0/24"), AddrB: p("10.9.0.1/24")},
		{AddrA: p("fd00::1/64"), AddrB: p("fd00::2/64")},
	} {
		if _, err := l.AddLink(a, b, o); sock.Code(err) != "EINVAL" {
			t.Errorf("AddLink(%v): %v, want EINVAL", o, err)
		}
	}
	k := addLink(t, l, a, b, lab.LinkOptions{AddrA: p("192.168.7.1/30"), AddrB: p("192.168.7.2/30")})
	if _, err := l.AddLink(a, b, lab.LinkOptions{AddrA: p("192.168.7.1/24"), AddrB: p("192.168.7.9/24")}); sock.Code(err) != "EINVAL" {
		t.Errorf("an overlapping subnet: %v", err)
	}
	for _, s := range []lab.Shape{{Loss: 1.5}, {Loss: -0.1}, {Duplicate: 2}, {Delay: -time.Second}, {Reorder: 0.1}, {Rate: 10}} {
		if err := k.SetShape(nil, s); sock.Code(err) != "EINVAL" {
			t.Errorf("SetShape(%+v): %v, want EINVAL", s, err)
		}
	}
	c := addHost(t, l, "c", false)
	if err := k.SetShape(c, lab.Shape{}); sock.Code(err) != "EINVAL" {
		t.Errorf("SetShape from a host not on the link: %v", err)
	}
}

// A delay D each way across the router: ping's round trip and TCP's
// smoothed RTT both see about 2D.
func TestDelayShowsInPingAndTCP(t *testing.T) {
	l := newLab(t)
	client, _, server, _, out := chain(t, l)
	const d = 20 * time.Millisecond
	if err := out.SetShape(nil, lab.Shape{Delay: d}); err != nil {
		t.Fatal(err)
	}
	ping, err := run(t, client, testpeer.Path(t, "ping"), "-n", "-c", "3", "-i", "0.2", "server")
	if err != nil {
		t.Fatalf("ping: %v\n%s", err, ping)
	}
	m := regexp.MustCompile(`= ([\d.]+)/([\d.]+)/([\d.]+)/`).FindStringSubmatch(ping)
	if m == nil {
		t.Fatalf("no rtt line:\n%s", ping)
	}
	t.Logf("ping across %v each way: rtt min/avg/max %s/%s/%s ms", d, m[1], m[2], m[3])
	if min, _ := strconv.ParseFloat(m[1], 64); min < 2*float64(d.Milliseconds()) || min > 2*float64(d.Milliseconds())+30 {
		t.Errorf("ping min rtt %.1f ms across a %v link each way; want about %v\n%s", min, d, 2*d, ping)
	}

	tab := sock.NewTable()
	defer tab.CloseAll()
	ctx := context.Background()
	ls := open(t, tab, server)
	if err := ls.Bind(netip.MustParseAddrPort("0.0.0.0:7000")); err != nil {
		t.Fatal(err)
	}
	ls.Listen(8)
	c := open(t, tab, client)
	if err := c.Connect(ctx, netip.MustParseAddrPort("10.0.2.2:7000")); err != nil {
		t.Fatal(err)
	}
	a, peer, err := ls.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if peer.Addr() != netip.MustParseAddr("10.0.1.2") {
		t.Errorf("the server sees %v; want the client's own address (no NAT)", peer)
	}
	if a.Netns() != server.Netns() || c.Info().Host != "client" || a.Info().Host != "server" {
		t.Errorf("hosts: accepted socket in %q, client's in %q", a.Info().Host, c.Info().Host)
	}
	for range 5 { // a few round trips for the estimate to settle
		c.Write(ctx, []byte("ping"))
		buf := make([]byte, 4)
		a.Read(ctx, buf)
		a.Write(ctx, buf)
		c.Read(ctx, buf)
	}
	rtt := c.Info().RTT
	t.Logf("TCP_INFO rtt across %v each way: %v", d, rtt)
	if rtt < 2*d || rtt > 2*d+30*time.Millisecond {
		t.Errorf("TCP_INFO rtt %v across a %v link each way; want about %v", rtt, d, 2*d)
	}
	a.Close()
}

// Close called twice at once: the second returns when the lab is gone,
// not when the first began (a killed task and the end of the script race
// so).
func TestCloseTwiceAtOnce(t *testing.T) {
	l := newLab(t)
	a := addHost(t, l, "a", false)
	addLink(t, l, a, addHost(t, l, "b", false), lab.LinkOptions{})
	path := "/run/netns/" + a.NetnsName()
	first := make(chan error)
	go func() { first <- l.Close() }()
	for !l.Closed() {
		time.Sleep(time.Millisecond)
	}
	l.Close()
	if _, err := os.Stat(path); err == nil {
		t.Errorf("%s is still there when the second Close returned", path)
	}
	<-first
}

// udpRun sends n numbered datagrams from a to b across k and counts, at
// b, what arrived: distinct, duplicated, and out of order.
func udpRun(t *testing.T, a, b *lab.Host, k *lab.Link, n int) (got, dup, late int) {
	t.Helper()
	tab := sock.NewTable()
	defer tab.CloseAll()
	ctx := context.Background()
	rx, err := tab.OpenIn(ctx, sock.UDP, b.Netns())
	if err != nil {
		t.Fatal(err)
	}
	rx.SetOption("rcvbuf", 4<<20)
	to := netip.AddrPortFrom(k.B.Addr.Addr(), 9000)
	if k.B.Host != b {
		to = netip.AddrPortFrom(k.A.Addr.Addr(), 9000)
	}
	if err := rx.Bind(to); err != nil {
		t.Fatal(err)
	}
	tx, _ := tab.OpenIn(ctx, sock.UDP, a.Netns())
	// One datagram first, so that ARP has resolved before the burst: the
	// kernel sends what it queued while resolving after what came later,
	// which would read as the link's reordering.
	buf := make([]byte, 64)
	rx.SetTimeout(500 * time.Millisecond)
	for try := 0; ; try++ { // (a lossy link may take it)
		tx.SendTo(ctx, []byte("-1"), to)
		if _, _, _, err := rx.RecvFrom(ctx, buf); err == nil {
			break
		} else if try == 5 {
			t.Fatalf("the first datagram: %v", err)
		}
	}
	for i := range n {
		if _, err := tx.SendTo(ctx, []byte(strconv.Itoa(i)), to); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	rx.SetTimeout(300 * time.Millisecond)
	seen := map[int]bool{}
	highest := -1
	for {
		m, _, _, err := rx.RecvFrom(ctx, buf)
		if err != nil {
			break
		}
		i, _ := strconv.Atoi(string(buf[:m]))
		switch {
		case i < 0: // the first one's copy
		case seen[i]:
			dup++
		default:
			seen[i] = true
			got++
			if i < highest {
				late++
			}
			highest = max(highest, i)
		}
	}
	return got, dup, late
}

// What each shape does to datagrams, counted at the receiver and by the
// link; and rate, which the kernel's tbf enforces on TCP.
func TestShapes(t *testing.T) {
	l := newLab(t)
	a, b := addHost(t, l, "a", false), addHost(t, l, "b", false)
	k := addLink(t, l, a, b, lab.LinkOptions{})
	const n = 400
	set := func(s lab.Shape) {
		t.Helper()
		if err := k.SetShape(a, s); err != nil {
			t.Fatal(err)
		}
	}

	set(lab.Shape{Duplicate: 0.3})
	before := k.Stats(a).Duplicated
	got, dup, late := udpRun(t, a, b, k, n)
	// The link counts every frame, ARP's too: a few more than the datagrams.
	near := func(link uint64, seen int) bool { return link >= uint64(seen) && link <= uint64(seen)+3 }
	if got != n || dup < 60 || dup > 180 || !near(k.Stats(a).Duplicated-before, dup) || late != 0 {
		t.Errorf("duplicate 0.3: %d arrived, %d twice (the link says %d), %d late", got, dup, k.Stats(a).Duplicated-before, late)
	}

	set(lab.Shape{Delay: 10 * time.Millisecond, Reorder: 0.3})
	got, dup, late = udpRun(t, a, b, k, n)
	if got != n || dup != 0 || late < 20 || k.Stats(a).Reordered == 0 {
		t.Errorf("reorder 0.3 with a delay: %d arrived, %d twice, %d out of order (the link reordered %d)", got, dup, late, k.Stats(a).Reordered)
	}

	set(lab.Shape{Delay: 10 * time.Millisecond, Jitter: 8 * time.Millisecond})
	got, _, late = udpRun(t, a, b, k, n)
	if got != n || late != 0 {
		t.Errorf("jitter: %d arrived, %d out of order; jitter keeps order", got, late)
	}

	set(lab.Shape{Loss: 0.2})
	before = k.Stats(a).Lost
	got, _, _ = udpRun(t, a, b, k, n)
	if lost := n - got; lost < 40 || lost > 130 || !near(k.Stats(a).Lost-before, lost) {
		t.Errorf("loss 0.2: %d of %d lost, the link says %d", lost, n, k.Stats(a).Lost-before)
	}
	// The other direction was never shaped.
	if got, dup, late := udpRun(t, b, a, k, n); got != n || dup != 0 || late != 0 {
		t.Errorf("the unshaped direction: %d arrived, %d twice, %d late", got, dup, late)
	}

	// 2 Mbit/s: 256 KiB (2.1 Mbit) cannot take much less than a second.
	set(lab.Shape{Rate: 2_000_000})
	tab := sock.NewTable()
	defer tab.CloseAll()
	ctx := context.Background()
	ls := open(t, tab, b)
	ls.Bind(netip.AddrPortFrom(k.B.Addr.Addr(), 9001))
	ls.Listen(1)
	c := open(t, tab, a)
	if err := c.Connect(ctx, netip.AddrPortFrom(k.B.Addr.Addr(), 9001)); err != nil {
		t.Fatal(err)
	}
	s, _, err := ls.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.SetTimeout(10 * time.Second)
	start := time.Now()
	go func() { c.Write(ctx, make([]byte, 256<<10)); c.Shutdown("w") }()
	total := 0
	buf := make([]byte, 64<<10)
	for {
		m, err := s.Read(ctx, buf)
		total += m
		if err != nil {
			break
		}
	}
	if took := time.Since(start); total != 256<<10 || took < 800*time.Millisecond {
		t.Errorf("at 2 Mbit/s, %d bytes took %v; want 262144 in about a second", total, took)
	}
	ip := testpeer.Path(t, "ip")
	if out, _ := exec.Command(ip, "netns", "exec", a.NetnsName(), "tc", "qdisc", "show", "dev", "eth0").CombinedOutput(); !strings.Contains(string(out), "tbf") || !strings.Contains(string(out), "rate 2Mbit") {
		t.Errorf("tc in a shows no 2Mbit tbf on eth0:\n%s", out)
	}
	set(lab.Shape{})
	if out, _ := exec.Command(ip, "netns", "exec", a.NetnsName(), "tc", "qdisc", "show", "dev", "eth0").CombinedOutput(); strings.Contains(string(out), "tbf") {
		t.Errorf("the tbf stayed after the rate was cleared:\n%s", out)
	}
}
