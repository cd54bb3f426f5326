package wire

import (
	"os"
	"path/filepath"
	"testing"
)

// testFrames reads a capture under testdata/ into Packets.
func testFrames(t testing.TB, name string) []Packet {
	t.Helper()
	pkts, err := loadFrames(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return pkts
}

// loadFrames reads a pcap file; a record cut short (a file still being
// written) ends it with an error after the whole ones.
func loadFrames(name string) ([]Packet, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadPcap(f)
}
