//go:build linux

package sock

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockplay/internal/testpeer"
)

func needNetns(t *testing.T) *Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root; skipping")
	}
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
	testpeer.Path(t, "nft")
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
