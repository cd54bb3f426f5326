//go:build linux

package wire

// What the capture path costs, per packet:
//
//	go test -run XXX -bench Capture -benchmem ./sock/wire/
//
// BenchmarkCaptureFrame is the user-space work for one frame the ring
// hands over (the flow, the socket it belongs to, the pcap record):
// 1/ns per op is the rate the reader sustains. BenchmarkCaptureLoopback
// (root) captures UDP datagrams sent on loopback as fast as one socket
// sends them, and reports the packets per second captured and the
// kernel's drops.

import (
	"context"
	"io"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"sockplay/sock"
)

func BenchmarkCaptureFrame(b *testing.B) {
	tbl := sock.NewTable()
	defer tbl.CloseAll()
	ctx := context.Background()
	l, _ := tbl.Open(ctx, sock.TCP)
	l.Bind(netip.MustParseAddrPort("127.0.0.1:0"))
	l.Listen(4)
	laddr, _ := l.LocalAddr()
	c, _ := tbl.Open(ctx, sock.TCP)
	if err := c.Connect(ctx, laddr); err != nil {
		b.Fatal(err)
	}
	s, _, err := l.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	caddr, _ := c.LocalAddr()
	_ = s
	// A 64-byte data segment from the client to the server, as loopback
	// carries it.
	t := &testing.T{}
	m := &frameMaker{t: t, at: time.Now()}
	m.add(ip4("127.0.0.1", "127.0.0.1", layers.IPProtocolTCP), segment(int(caddr.Port()), int(laddr.Port()), "P.", 1, 1), gopacket.Payload(make([]byte, 64)))
	frame := m.pkts[0].Data
	pw, _ := NewPcapWriter(io.Discard, layers.LinkTypeEthernet, 0)
	cp := &Capture{link: layers.LinkTypeEthernet, own: true, owners: newOwners(tbl, nil), pcap: pw, iface: "lo"}
	d := newFlowDecoder()
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cp.frame(d, frame, len(frame), now, 0)
	}
	b.StopTimer()
	if cp.kept.Load() != uint64(b.N) {
		b.Fatalf("kept %d of %d frames: the segment was not matched to its socket", cp.kept.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

func BenchmarkCaptureLoopback(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (CAP_NET_RAW)")
	}
	tbl := sock.NewTable()
	defer tbl.CloseAll()
	ctx := context.Background()
	rx, _ := tbl.Open(ctx, sock.UDP)
	rx.Bind(netip.MustParseAddrPort("127.0.0.1:0"))
	rx.SetOption("rcvbuf", 8<<20)
	raddr, _ := rx.LocalAddr()
	tx, _ := tbl.Open(ctx, sock.UDP)
	if err := tx.Connect(ctx, raddr); err != nil {
		b.Fatal(err)
	}
	c, err := Open(ctx, tbl, Options{Filter: "udp port " + strconv.Itoa(int(raddr.Port())), Pcap: io.Discard, Keep: -1})
	if err != nil {
		b.Skip(err)
	}
	msg := make([]byte, 64)
	done := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 128)
		rx.SetTimeout(time.Second)
		for n < b.N {
			if _, err := rx.Read(ctx, buf); err != nil {
				break
			}
			n++
		}
		done <- n
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tx.Write(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	c.Stop()
	b.StopTimer()
	st := c.Stats()
	b.ReportMetric(float64(st.Kept)/b.Elapsed().Seconds(), "captured/s")
	b.ReportMetric(float64(st.Dropped), "drops")
	if st.Kept+st.Dropped < uint64(b.N) {
		b.Errorf("captured %d and dropped %d of %d datagrams", st.Kept, st.Dropped, b.N)
	}
}
