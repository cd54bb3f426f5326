//go:build linux

package lab_test

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"sockplay/sock"
	"sockplay/sock/lab"
)

// BenchmarkLinkTCP is one TCP connection's throughput across an unshaped
// link: every frame crosses user space (read from one TAP, written to the
// other), so this is the cost of the path every link takes.
//
//	go test -run XXX -bench LinkTCP -benchtime 64x ./sock/lab/
func BenchmarkLinkTCP(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the lab needs root")
	}
	l, err := lab.New()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	x, _ := l.AddHost("x", false)
	y, _ := l.AddHost("y", false)
	k, err := l.AddLink(x, y, lab.LinkOptions{})
	if err != nil {
		b.Fatal(err)
	}
	tab := sock.NewTable()
	defer tab.CloseAll()
	ctx := context.Background()
	ls, _ := tab.OpenIn(ctx, sock.TCP, y.Netns())
	ls.Bind(netip.AddrPortFrom(k.B.Addr.Addr(), 5001))
	ls.Listen(1)
	c, _ := tab.OpenIn(ctx, sock.TCP, x.Netns())
	c.SetTimeout(30 * time.Second)
	if err := c.Connect(ctx, netip.AddrPortFrom(k.B.Addr.Addr(), 5001)); err != nil {
		b.Fatal(err)
	}
	a, _, err := ls.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	a.SetTimeout(30 * time.Second)
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	done := make(chan error, 1)
	b.SetBytes(chunk)
	b.ResetTimer()
	go func() {
		p := make([]byte, 256<<10)
		left := b.N * chunk
		for left > 0 {
			n, err := a.Read(ctx, p)
			if err != nil {
				done <- err
				return
			}
			left -= n
		}
		done <- nil
	}()
	for range b.N {
		if _, err := c.Write(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := k.Stats(x)
	b.ReportMetric(float64(st.Frames)/float64(b.N), "frames/op")
}
