//go:build linux

package sock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockplay/internal/testpeer"
)

func needNetns(t *testing.T) *Netns {
	t.Helper()
	testpeer.Root(t)
	ns, err := NewNetns()
	if err != nil {
		t.Fatalf("NewNetns: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// Real kernel loss inside a namespace: TCP retransmits and delivers every
// byte in order; the host's own loopback is untouched.
func TestNetnsTCPRecoversFromKernelLoss(t *testing.T) {
	ns := needNetns(t)
	if err := ns.SetLoss(0.05); err != nil {
		t.Fatalf("SetLoss: %v", err)
	}
	tab := NewTable()
	t.Cleanup(tab.CloseAll)
	ctx := context.Background()
	l, err := tab.OpenIn(ctx, TCP, ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Bind(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(4); err != nil {
		t.Fatal(err)
	}
	addr, _ := l.LocalAddr()
	c, err := tab.OpenIn(ctx, TCP, ns)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(60 * time.Second)
	l.SetTimeout(60 * time.Second)
	if err := c.Connect(ctx, addr); err != nil { // the SYN may be lost too: the kernel retries
		t.Fatal(err)
	}
	a, _, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.SetTimeout(60 * time.Second)

	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		p := make([]byte, 32*1024)
		for {
			n, err := a.Read(ctx, p)
			buf.Write(p[:n])
			if err != nil {
				break
			}
		}
		got <- buf.Bytes()
	}()
	if n, err := c.Write(ctx, data); err != nil || n != len(data) {
		t.Fatalf("write: %d, %v", n, err)
	}
	info := c.Info()
	c.Shutdown("w")
	received := <-got
	if !bytes.Equal(received, data) {
		t.Fatalf("received %d bytes, not the %d sent in order", len(received), len(data))
	}
	// About 700 segments of 1448 bytes at 5% loss: no retransmission at
	// all would mean the loss rule did nothing.
	if info.Retrans == 0 {
		if after := c.Info(); after.Retrans == 0 {
			t.Errorf("no retransmissions under 5%% loss (state %s)", after.State)
		}
	}

	// The namespace's loopback is not the host's: a host listener is not
	// reachable from inside.
	host, err := tab.Open(ctx, TCP)
	if err != nil {
		t.Fatal(err)
	}
	host.Bind(netip.MustParseAddrPort("127.0.0.1:0"))
	host.Listen(1)
	hostAddr, _ := host.LocalAddr()
	inside, _ := tab.OpenIn(ctx, TCP, ns)
	inside.SetTimeout(5 * time.Second)
	if err := inside.Connect(ctx, hostAddr); Code(err) != "ECONNREFUSED" && Code(err) != "ETIMEDOUT" {
		t.Errorf("connect from the namespace to the host's loopback: %v, want it refused", err)
	}
}

func TestNetnsErrors(t *testing.T) {
	ns := needNetns(t)
	if err := ns.SetLoss(1.5); Code(err) != "EINVAL" {
		t.Errorf("SetLoss(1.5): %v, want EINVAL", err)
	}
	ns.Close()
	tab := NewTable()
	if _, err := tab.OpenIn(context.Background(), TCP, ns); Code(err) != "EBADF" {
		t.Errorf("OpenIn a closed namespace: %v, want EBADF", err)
	}
	if err := ns.Close(); Code(err) != "EBADF" {
		t.Errorf("second Close: %v, want EBADF", err)
	}
}

// Do runs its function inside the namespace, and the thread comes back.
func TestNetnsDo(t *testing.T) {
	ns := needNetns(t)
	nsInode := func(path string) uint64 {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	var want unix.Stat_t
	if err := unix.Fstat(ns.FD(), &want); err != nil {
		t.Fatal(err)
	}
	own := nsInode("/proc/self/ns/net")
	var inside uint64
	if err := ns.Do(func() error { inside = nsInode("/proc/thread-self/ns/net"); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != want.Ino || inside == own {
		t.Errorf("Do ran in namespace %d; want the namespace's %d (sockplay's own is %d)", inside, want.Ino, own)
	}
	boom := errors.New("boom")
	if err := ns.Do(func() error { return boom }); err != boom {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	ns.Close()
	if err := ns.Do(func() error { return nil }); Code(err) != "EBADF" {
		t.Errorf("Do on a closed namespace: %v, want EBADF", err)
	}
}

// The loss rule, written through netlink, is what nft itself lists inside
// the namespace; SetLoss(0) removes it, and a second SetLoss replaces it.
func TestNetnsLossRuleAsNftSeesIt(t *testing.T) {
	paths := testpeer.Need(t, "nft", "nsenter")
	ns := needNetns(t)
	list := func() string {
		out, err := exec.Command(paths[1], "--net=/proc/"+strconv.Itoa(os.Getpid())+"/fd/"+strconv.Itoa(ns.FD()), paths[0], "list", "ruleset").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list ruleset: %v\n%s", err, out)
		}
		return string(out)
	}
	for _, p := range []float64{0.25, 0.05} {
		if err := ns.SetLoss(p); err != nil {
			t.Fatalf("SetLoss(%g): %v", p, err)
		}
		rules := list()
		want := fmt.Sprintf("numgen random mod 10000 < %d counter packets 0 bytes 0 drop", int(p*10000))
		if !strings.Contains(rules, want) || strings.Count(rules, "numgen") != 1 || !strings.Contains(rules, "hook input") {
			t.Errorf("after SetLoss(%g) nft lists:\n%s\nwant one rule %q on the input hook", p, rules, want)
		}
	}
	if err := ns.SetLoss(0); err != nil {
		t.Fatal(err)
	}
	if rules := list(); strings.TrimSpace(rules) != "" {
		t.Errorf("after SetLoss(0) nft lists:\n%s", rules)
	}
}

// A context that names a namespace opens its sockets there, and so do the
// contexts derived from it; accepted sockets live where their listener
// does; the snapshot, the trace and notes say so.
func TestSocketsKnowTheirNamespace(t *testing.T) {
	ns := needNetns(t)
	tab := NewTable()
	t.Cleanup(tab.CloseAll)
	var events []Event
	var mu sync.Mutex
	tab.SetTracer(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	ctx, cancel := context.WithTimeout(WithNetns(context.Background(), ns), 10*time.Second)
	defer cancel()
	if NetnsOf(ctx) != ns || NetnsOf(context.Background()) != nil || NetnsOf(nil) != nil {
		t.Fatal("NetnsOf does not find the namespace through a derived context")
	}
	l, err := tab.Open(ctx, TCP)
	if err != nil {
		t.Fatal(err)
	}
	l.Bind(netip.MustParseAddrPort("127.0.0.1:0"))
	l.Listen(1)
	addr, _ := l.LocalAddr()
	c, _ := tab.Open(ctx, TCP)
	if err := c.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	a, _, err := l.Accept(context.Background()) // the listener's namespace, whatever ctx says
	if err != nil {
		t.Fatal(err)
	}
	if l.Netns() != ns || c.Netns() != ns || a.Netns() != ns {
		t.Errorf("namespaces: listener %v, client %v, accepted %v; want all %v", l.Netns(), c.Netns(), a.Netns(), ns)
	}
	// Outside, the same port on loopback is somebody else's (nobody's).
	out, _ := tab.Open(context.Background(), TCP)
	out.SetTimeout(2 * time.Second)
	if err := out.Connect(context.Background(), addr); err == nil {
		t.Error("the namespace's listener answered on sockplay's own loopback")
	}
	tab.SetNote(ns.FD(), "the test's namespace")
	var seen int
	for _, e := range tab.Snapshot() {
		switch {
		case e.FD == ns.FD():
			if e.Note != "the test's namespace" || !strings.HasPrefix(e.Target, "net:[") {
				t.Errorf("nsfs fd %d: note %q, target %q", e.FD, e.Note, e.Target)
			}
			seen++
		case e.Socket != nil && (e.FD == l.FD || e.FD == c.FD || e.FD == a.FD):
			if e.Socket.Host != "netns" {
				t.Errorf("fd %d: host %q, want netns", e.FD, e.Socket.Host)
			}
			seen++
		case e.Socket != nil && e.FD == out.FD && e.Socket.Host != "":
			t.Errorf("a socket of sockplay's own namespace shows host %q", e.Socket.Host)
		}
	}
	if seen != 4 {
		t.Errorf("found %d of the 4 entries in the snapshot", seen)
	}
	tab.SetTracer(nil)
	mu.Lock()
	var lines []string
	for _, e := range events {
		lines = append(lines, e.String())
	}
	mu.Unlock()
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "socket(tcp@netns) = ") || !strings.Contains(all, "<TCP@netns>, "+addr.String()+") = 0") {
		t.Errorf("the trace does not name the namespace:\n%s", all)
	}
	if n := tab.CloseIn(ns); n != 3 || !a.Closed() || out.Closed() {
		t.Errorf("CloseIn closed %d sockets (accepted closed: %v, outside closed: %v); want the 3 inside", n, a.Closed(), out.Closed())
	}
}
