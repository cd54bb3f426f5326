package wire

import (
	"testing"

	"github.com/gopacket/gopacket/layers"
)

var fuzzLinks = []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeLinuxSLL, layers.LinkTypeNull}

// Random bytes, seeded with real frames, never make the decoder or the
// views panic, and the layers always tile the frame.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"http.pcap", "dns.pcap", "ipv6.pcap", "loss.pcap", "http_snap.pcap"} {
		for _, p := range testFrames(f, name) {
			f.Add(p.Data, uint8(0))
			f.Add(p.Data[14:], uint8(1)) // the same as a TUN device gives it
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, link uint8) {
		p := Packet{Link: fuzzLinks[int(link)%len(fuzzLinks)], Data: data, WireLen: len(data) + int(link)%3, FD: -1}
		checkTiling(t, p, Decode(p))
		LayerView(p, true)
		if l, ok := NewLadder([]Packet{p, p}, Conn{}); ok {
			LadderText(l)
			LadderSVG(l)
		}
	})
}
