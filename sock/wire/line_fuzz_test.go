package wire

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Random bytes, seeded with real frames, never make the tcpdump line or
// the flow reader panic.
func FuzzSummary(f *testing.F) {
	for _, name := range []string{"http.pcap", "dns.pcap", "ipv6.pcap", "loss.pcap", "rst.pcap"} {
		for _, p := range testFrames(f, name) {
			f.Add(p.Data, uint8(0))
			f.Add(p.Data[14:], uint8(1))
		}
	}
	fm := NewFormatter()
	d := newFlowDecoder()
	f.Fuzz(func(t *testing.T, data []byte, link uint8) {
		p := Packet{Link: fuzzLinks[int(link)%len(fuzzLinks)], Data: data, WireLen: len(data), FD: -1, PeerFD: -1}
		if fm.Summary(p) == "" {
			t.Error("an empty line")
		}
		d.flow(p.Link, p.Data)
		ConnectionOf([]Packet{p}, -1)
	})
}

// Random bytes, seeded with real pcap files whole and cut short, never
// make the pcap reader panic: it returns what it read and a PcapError.
func FuzzReadPcap(f *testing.F) {
	names, _ := filepath.Glob("testdata/*.pcap")
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)*2/3])
		f.Add(b[:30])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pkts, err := ReadPcap(bytes.NewReader(b))
		var pe *PcapError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *PcapError", err)
		}
		fm := NewFormatter()
		for _, p := range pkts {
			fm.Line(p)
		}
	})
}

// A pcap file cut inside a packet gives the packets before it and says
// where the damage is, with its bytes.
func TestReadPcapCutShort(t *testing.T) {
	b, err := os.ReadFile("testdata/http.pcap")
	if err != nil {
		t.Fatal(err)
	}
	whole, err := ReadPcap(bytes.NewReader(b))
	if err != nil || len(whole) < 5 {
		t.Fatalf("%d packets, %v", len(whole), err)
	}
	cut := b[:len(b)-10]
	pkts, err := ReadPcap(bytes.NewReader(cut))
	var pe *PcapError
	if !errors.As(err, &pe) || len(pkts) != len(whole)-1 || pe.Packet != len(whole) || len(pe.Rest) == 0 {
		t.Fatalf("cut file: %d packets, %v", len(pkts), err)
	}
	if _, err := ReadPcap(bytes.NewReader([]byte("not a pcap file at all"))); err == nil {
		t.Error("garbage read as a pcap file")
	}
	if _, err := ReadPcap(bytes.NewReader(nil)); err == nil {
		t.Error("an empty file read as a pcap file")
	}
}
