package wire

import (
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Packet is one captured frame, as a capture reads it or a pcap file holds
// it, with what sockplay knows about where it came from. Every view (the
// tcpdump line, the layer walk, the ladder) starts from a Packet.
type Packet struct {
	Time time.Time
	// Link says how Data begins: LinkTypeEthernet on loopback and veth
	// (loopback's AF_PACKET frames carry a zeroed Ethernet header),
	// LinkTypeRaw on a TUN device (the IP header first).
	Link    layers.LinkType
	Data    []byte // the bytes captured, at most the snapshot length
	WireLen int    // the frame's length on the wire; more than len(Data) when cut short
	Iface   string // the interface it was captured on ("" when read from a file)
	Out     bool   // sent by this host rather than received (PACKET_OUTGOING)

	// The descriptor table's view: the socket the packet belongs to (FD -1
	// when none of this process's sockets matches its addresses), the
	// socket's owner, and the call that caused it ("connect", "write",
	// "close" ...), "kernel" for the kernel's own segments (ACKs,
	// retransmissions), or "" when nothing is known.
	FD    int
	Owner string
	Call  string
	// On loopback both ends are often this process's sockets: PeerFD and
	// PeerOwner name the receiving one when FD names the sender (PeerFD
	// -1 when the other end is not ours).
	PeerFD    int
	PeerOwner string
}
