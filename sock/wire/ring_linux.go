//go:build linux

package wire

import (
	"encoding/binary"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is a TPACKET_V3 receive ring: memory shared with the kernel, cut
// into blocks. The kernel fills a block with frames, each with the time it
// arrived, and hands it over when it is full or ringTimeout has passed;
// the reader walks the block's frames and gives it back. One wake-up and
// no system call per block, where recvmsg(2) costs a call per frame and
// stamps loopback frames only when they are read.
type ring struct {
	mem       []byte
	blockSize int
	blocks    int
	cur       int
}

const (
	// ringBlock holds the largest frame loopback makes (64 KiB and headers).
	ringBlock = 128 << 10
	// ringTimeout is how long (ms) a block that is not full waits before
	// the kernel hands it over: how late a quiet capture sees a frame. A
	// block handed over part full wastes the rest of it, so the ring
	// covers blocks × ringTimeout at the least: 2.5 s with 16 MiB.
	ringTimeout = 20
	// ringFrame is the nominal frame size the kernel checks the request
	// with; TPACKET_V3 packs frames by their real size.
	ringFrame = 2048
)

// newRing sets fd up for TPACKET_V3 with about size bytes of blocks.
func newRing(fd, size int) (*ring, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, err
	}
	n := max(size/ringBlock, 4)
	req := unix.TpacketReq3{
		Block_size:     ringBlock,
		Block_nr:       uint32(n),
		Frame_size:     ringFrame,
		Frame_nr:       uint32(n * ringBlock / ringFrame),
		Retire_blk_tov: ringTimeout,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(fd, 0, n*ringBlock, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &ring{mem: mem, blockSize: ringBlock, blocks: n}, nil
}

func (r *ring) close() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

// Offsets in struct tpacket_block_desc (its tpacket_hdr_v1) and struct
// tpacket3_hdr; the sockaddr_ll follows the header, aligned to 16.
const (
	blockStatus   = 8
	blockNumPkts  = 12
	blockFirstPkt = 16
	hdrNext       = 0
	hdrSec        = 4
	hdrNsec       = 8
	hdrSnaplen    = 12
	hdrLen        = 16
	hdrMac        = 24
	hdrPkttype    = 48 + 10 // TPACKET_ALIGN(sizeof(tpacket3_hdr)) + offsetof(sockaddr_ll, sll_pkttype)
)

// status is the block's status word, which the kernel and the reader
// pass the block with.
func (r *ring) status(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*r.blockSize+blockStatus]))
}

// take walks every block the kernel has handed over, calling frame for
// each frame in it (data is only valid during the call), and gives the
// blocks back. It reports whether there was any.
func (r *ring) take(frame func(data []byte, wire int, ts time.Time, pkttype uint8)) bool {
	any := false
	for atomic.LoadUint32(r.status(r.cur))&unix.TP_STATUS_USER != 0 {
		any = true
		b := r.mem[r.cur*r.blockSize : (r.cur+1)*r.blockSize]
		n := int(ne32(b[blockNumPkts:]))
		off := int(ne32(b[blockFirstPkt:]))
		for i := 0; i < n && off > 0 && off+hdrPkttype < len(b); i++ {
			h := b[off:]
			mac, snap := int(ne16(h[hdrMac:])), int(ne32(h[hdrSnaplen:]))
			if mac+snap <= len(h) {
				ts := time.Unix(int64(ne32(h[hdrSec:])), int64(ne32(h[hdrNsec:])))
				frame(h[mac:mac+snap], int(ne32(h[hdrLen:])), ts, h[hdrPkttype])
			}
			next := int(ne32(h[hdrNext:]))
			if next <= 0 {
				break
			}
			off += next
		}
		atomic.StoreUint32(r.status(r.cur), unix.TP_STATUS_KERNEL)
		r.cur = (r.cur + 1) % r.blocks
	}
	return any
}

var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// ne32 and ne16 read the kernel's native byte order.
func ne32(b []byte) uint32 {
	if littleEndian {
		return binary.LittleEndian.Uint32(b)
	}
	return binary.BigEndian.Uint32(b)
}

func ne16(b []byte) uint16 {
	if littleEndian {
		return binary.LittleEndian.Uint16(b)
	}
	return binary.BigEndian.Uint16(b)
}
