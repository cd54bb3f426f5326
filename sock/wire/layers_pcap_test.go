package wire

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/pcapgo"
)

// testFrames reads a capture under testdata/ into Packets, as a pcap
// reader would give them: no interface, no direction, no descriptor.
func testFrames(t testing.TB, name string) []Packet {
	t.Helper()
	pkts, err := loadFrames(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return pkts
}

// loadFrames reads a pcap file with gopacket's pcapgo; a record cut short
// (a file still being written) ends it with an error after the whole ones.
func loadFrames(name string) ([]Packet, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, err
	}
	var pkts []Packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return pkts, nil
		}
		if err != nil {
			return pkts, err
		}
		pkts = append(pkts, Packet{Time: ci.Timestamp, Link: r.LinkType(), Data: data, WireLen: ci.Length, FD: -1})
	}
}
