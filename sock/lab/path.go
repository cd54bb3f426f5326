package lab

import (
	"container/heap"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// path is one direction of a link: the frames one end's kernel sends out
// of its device, on their way to the other end's device. A reader takes
// each frame as it leaves, decides its fate (drop, copy, delay), and either
// hands it over at once or queues it; a writer hands queued frames over
// when they are due.
type path struct {
	from io.Reader // the sending end's TAP: frames its kernel transmits
	to   io.Writer // the receiving end's TAP: frames written here arrive there
	up   *atomic.Bool

	shape atomic.Pointer[Shape]

	mu      sync.Mutex
	queue   frameQueue
	pending int       // frames queued or being written: a frame may skip the queue only when none is
	lastDue time.Time // the latest due time handed out: jitter keeps order
	seq     uint64
	rng     *rand.Rand
	wake    chan struct{} // the writer should look at the queue again
	done    chan struct{}

	stats pathStats
}

// pathStats counts what a direction did; every field is read while the
// path runs.
type pathStats struct {
	Frames, Bytes atomic.Uint64 // frames that left the sending device
	Delivered     atomic.Uint64 // frames written to the other end (copies included)
	Lost          atomic.Uint64 // dropped by the loss fraction
	Down          atomic.Uint64 // dropped because the link was down
	Duplicated    atomic.Uint64
	Reordered     atomic.Uint64
	Overflow      atomic.Uint64 // dropped because too many were in flight
}

// Stats is a snapshot of a direction's counters.
type Stats struct {
	Frames, Bytes, Delivered, Lost, Down, Duplicated, Reordered, Overflow uint64
	Queued                                                                int // frames in flight now
}

// maxQueued bounds the frames a direction holds back, as netem's limit
// does: 1 Gbit/s for 50 ms is about 4,000 full frames.
const maxQueued = 8192

// maxFrame is the largest frame read: the devices have a 1500-byte MTU
// and no offloads, so 1514 bytes would do; room for a larger MTU costs
// nothing as the buffer is reused.
const maxFrame = 65536

type frame struct {
	due  time.Time
	seq  uint64
	data []byte
}

// frameQueue orders frames by due time, then by arrival.
type frameQueue []*frame

func (q frameQueue) Len() int { return len(q) }
func (q frameQueue) Less(i, j int) bool {
	if q[i].due.Equal(q[j].due) {
		return q[i].seq < q[j].seq
	}
	return q[i].due.Before(q[j].due)
}
func (q frameQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *frameQueue) Push(x any)   { *q = append(*q, x.(*frame)) }
func (q *frameQueue) Pop() any {
	old := *q
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return f
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func newPath(from io.Reader, to io.Writer, up *atomic.Bool, seed uint64) *path {
	p := &path{from: from, to: to, up: up, wake: make(chan struct{}, 1), done: make(chan struct{}),
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	p.shape.Store(&Shape{})
	return p
}

// run moves frames until the sending device is closed; then the writer
// drops what is still queued and stops too. wg is told when both end.
func (p *path) run(wg *sync.WaitGroup) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.write()
	}()
	go func() {
		defer wg.Done()
		defer close(p.done)
		buf := make([]byte, maxFrame)
		for {
			n, err := p.from.Read(buf)
			if err != nil {
				return
			}
			p.handle(buf[:n])
		}
	}()
}

// handle decides one frame's fate.
func (p *path) handle(data []byte) {
	p.stats.Frames.Add(1)
	p.stats.Bytes.Add(uint64(len(data)))
	if !p.up.Load() {
		p.stats.Down.Add(1)
		return
	}
	sh := p.shape.Load()
	if !sh.userSpace() {
		p.mu.Lock()
		empty := p.pending == 0
		p.mu.Unlock()
		if empty { // nothing delayed still ahead of it: no need to queue
			p.deliver(data)
			return
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if sh.Loss > 0 && p.rng.Float64() < sh.Loss {
		p.stats.Lost.Add(1)
		return
	}
	copies := 1
	if sh.Duplicate > 0 && p.rng.Float64() < sh.Duplicate {
		copies = 2
		p.stats.Duplicated.Add(1)
	}
	now := time.Now()
	due := now.Add(sh.Delay)
	if sh.Jitter > 0 {
		due = due.Add(time.Duration((p.rng.Float64()*2 - 1) * float64(sh.Jitter)))
	}
	if sh.Reorder > 0 && p.rng.Float64() < sh.Reorder {
		due = now // it overtakes the frames held back, as netem's reorder does
		p.stats.Reordered.Add(1)
	} else {
		if due.Before(p.lastDue) {
			due = p.lastDue // jitter varies the delay, not the order
		}
		p.lastDue = due
	}
	for range copies {
		if len(p.queue) >= maxQueued {
			p.stats.Overflow.Add(1)
			return
		}
		bp := framePool.Get().(*[]byte)
		p.seq++
		p.pending++
		heap.Push(&p.queue, &frame{due: due, seq: p.seq, data: append((*bp)[:0], data...)})
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *path) deliver(data []byte) {
	if _, err := p.to.Write(data); err == nil {
		p.stats.Delivered.Add(1)
	}
}

// write hands queued frames to the receiving end as they fall due.
func (p *path) write() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		var next *frame
		var wait time.Duration
		if len(p.queue) > 0 {
			next = p.queue[0]
			if wait = time.Until(next.due); wait <= 0 {
				heap.Pop(&p.queue)
			}
		}
		p.mu.Unlock()
		switch {
		case next != nil && wait <= 0:
			if p.up.Load() {
				p.deliver(next.data)
			} else {
				p.stats.Down.Add(1)
			}
			b := next.data[:0]
			framePool.Put(&b)
			p.mu.Lock()
			p.pending--
			p.mu.Unlock()
			continue
		case next != nil:
			timer.Reset(wait)
		}
		var fired <-chan time.Time
		if next != nil {
			fired = timer.C
		}
		select {
		case <-fired:
		case <-p.wake:
			timer.Stop() // since Go 1.23 a stopped timer's channel holds nothing stale
		case <-p.done:
			p.mu.Lock()
			p.queue, p.pending = nil, 0
			p.mu.Unlock()
			return
		}
	}
}

// setShape changes the direction's shape for the frames that leave from
// now on; those already queued keep their due times.
func (p *path) setShape(s Shape) { p.shape.Store(&s) }

func (p *path) snapshot() Stats {
	p.mu.Lock()
	queued := len(p.queue)
	p.mu.Unlock()
	st := &p.stats
	return Stats{Frames: st.Frames.Load(), Bytes: st.Bytes.Load(), Delivered: st.Delivered.Load(),
		Lost: st.Lost.Load(), Down: st.Down.Load(), Duplicated: st.Duplicated.Load(),
		Reordered: st.Reordered.Load(), Overflow: st.Overflow.Load(), Queued: queued}
}
