package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// DefaultSnaplen is how much of each frame a capture keeps, tcpdump's
// default: whole frames, even loopback's 64 KiB ones.
const DefaultSnaplen = 262144

// PcapWriter writes packets as a pcap file (microsecond timestamps, the
// format tcpdump -r and Wireshark read everywhere). It buffers: Flush
// before the file is read.
type PcapWriter struct {
	bw *bufio.Writer
	w  *pcapgo.Writer
}

// NewPcapWriter writes the file header for frames of the given link type.
func NewPcapWriter(w io.Writer, link layers.LinkType, snaplen int) (*PcapWriter, error) {
	if snaplen <= 0 {
		snaplen = DefaultSnaplen
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	pw := &PcapWriter{bw: bw, w: pcapgo.NewWriter(bw)}
	if err := pw.w.WriteFileHeader(uint32(snaplen), link); err != nil {
		return nil, err
	}
	return pw, nil
}

// Write appends one packet.
func (pw *PcapWriter) Write(p Packet) error {
	wire := max(p.WireLen, len(p.Data))
	return pw.w.WritePacket(gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: wire}, p.Data)
}

// Flush writes out what is buffered.
func (pw *PcapWriter) Flush() error { return pw.bw.Flush() }

// PcapError says where a pcap file stopped making sense: the packets
// before it were read, Rest holds the bytes from the damaged record on
// (up to 64 KiB), for a hex dump.
type PcapError struct {
	Packet int   // the number of the record that failed, from 1
	Offset int64 // its offset in the file (-1 when unknown)
	Rest   []byte
	Err    error
}

func (e *PcapError) Error() string {
	switch {
	case e.Packet == 0:
		return "pcap: " + e.Err.Error()
	case e.Offset < 0:
		return fmt.Sprintf("pcap: packet %d: %v", e.Packet, e.Err)
	}
	return fmt.Sprintf("pcap: packet %d at byte %d: %v (%d bytes left undecoded)", e.Packet, e.Offset, e.Err, len(e.Rest))
}

func (e *PcapError) Unwrap() error { return e.Err }

// maxPcap bounds the file ReadPcap takes: it reads the file whole.
const maxPcap = 256 << 20

// ReadPcap reads a pcap or pcapng file. It returns the packets it could
// read; when the file is damaged or cut short, a *PcapError too. Records
// are checked against the bytes the file really holds before gopacket's
// pcapgo reads them, so a length field that lies costs nothing.
func ReadPcap(r io.Reader) ([]Packet, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxPcap+1))
	if err != nil {
		return nil, &PcapError{Err: err}
	}
	if len(b) > maxPcap {
		return nil, &PcapError{Err: fmt.Errorf("the file is larger than %d MiB", maxPcap>>20)}
	}
	if len(b) < 4 {
		return nil, &PcapError{Err: fmt.Errorf("not a pcap file: %d bytes", len(b))}
	}
	// good is how much of the file is made of whole records; damage says
	// what is wrong after it.
	good, damage, ng := checkRecords(b)
	var next func() ([]byte, gopacket.CaptureInfo, error)
	var link func() layers.LinkType
	if ng {
		rd, err := pcapgo.NewNgReader(bytes.NewReader(b[:good]), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, &PcapError{Err: fmt.Errorf("not a pcapng file: %v", err)}
		}
		next, link = rd.ReadPacketData, rd.LinkType
	} else {
		rd, err := pcapgo.NewReader(bytes.NewReader(b[:good]))
		if err != nil {
			return nil, &PcapError{Err: fmt.Errorf("not a pcap file: %v", err)}
		}
		next, link = rd.ReadPacketData, rd.LinkType
	}
	var out []Packet
	for {
		data, ci, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, &PcapError{Packet: len(out) + 1, Offset: -1, Err: err}
		}
		out = append(out, Packet{
			Time: ci.Timestamp, Link: link(), Data: append([]byte(nil), data...),
			WireLen: max(ci.Length, len(data)), FD: -1, PeerFD: -1,
		})
	}
	if damage != nil {
		damage.Packet = len(out) + 1
		damage.Rest = b[good:min(len(b), good+64<<10)]
		return out, damage
	}
	return out, nil
}

// checkRecords walks the file's record (pcap) or block (pcapng) lengths
// and returns how many leading bytes hold whole ones, and what is wrong
// with the rest.
func checkRecords(b []byte) (good int, damage *PcapError, ng bool) {
	fail := func(at int, format string, a ...any) (int, *PcapError, bool) {
		return at, &PcapError{Offset: int64(at), Err: fmt.Errorf(format, a...)}, ng
	}
	var order binary.ByteOrder
	if bytes.Equal(b[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng = true
		at := 0
		for at < len(b) {
			if len(b)-at < 12 {
				return fail(at, "the file ends inside a block header")
			}
			if binary.LittleEndian.Uint32(b[at:]) == 0x0a0d0d0a { // a section header says the byte order
				switch {
				case bytes.Equal(b[at+8:at+12], []byte{0x4d, 0x3c, 0x2b, 0x1a}):
					order = binary.LittleEndian
				case bytes.Equal(b[at+8:at+12], []byte{0x1a, 0x2b, 0x3c, 0x4d}):
					order = binary.BigEndian
				default:
					return fail(at, "a section header with no byte-order mark")
				}
			}
			if order == nil {
				return fail(at, "no section header")
			}
			n := int(order.Uint32(b[at+4:]))
			if n < 12 || n%4 != 0 || n > len(b)-at {
				return fail(at, "a block claims %d bytes, %d are left", n, len(b)-at)
			}
			at += n
		}
		return at, nil, true
	}
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return 0, &PcapError{Err: fmt.Errorf("not a pcap file: magic %x", b[:4])}, false
	}
	if len(b) < 24 {
		return 0, &PcapError{Err: errors.New("not a pcap file: the header is cut short")}, false
	}
	snaplen := int(order.Uint32(b[16:]))
	at := 24
	for at < len(b) {
		if len(b)-at < 16 {
			return fail(at, "the file ends inside a packet header")
		}
		n := int(order.Uint32(b[at+8:]))
		if n > len(b)-at-16 {
			return fail(at, "the file ends inside the packet (%d bytes of %d)", len(b)-at-16, n)
		}
		if snaplen > 0 && n > max(snaplen, DefaultSnaplen) {
			return fail(at, "a packet of %d bytes, more than the file's snapshot length %d", n, snaplen)
		}
		at += 16 + n
	}
	return at, nil, false
}
