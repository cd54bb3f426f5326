package sock

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Impairment describes what happens to a datagram socket's outgoing
// datagrams before they reach the kernel. Probabilities are 0..1. It works
// in user space, so it needs no privileges, and the same Seed makes the
// same decisions.
type Impairment struct {
	Loss, Duplicate, Reorder float64
	Delay, Jitter            time.Duration
	Seed                     uint64
}

func (im Impairment) String() string {
	var parts []string
	add := func(name string, p float64) {
		if p > 0 {
			parts = append(parts, fmt.Sprintf("%s=%g%%", name, p*100))
		}
	}
	add("loss", im.Loss)
	add("dup", im.Duplicate)
	add("reorder", im.Reorder)
	if im.Delay > 0 {
		parts = append(parts, "delay="+im.Delay.String())
	}
	if im.Jitter > 0 {
		parts = append(parts, "jitter="+im.Jitter.String())
	}
	parts = append(parts, fmt.Sprintf("seed=%d", im.Seed))
	return strings.Join(parts, " ")
}

// ImpairStats counts what the impairment did.
type ImpairStats struct {
	Sent, Dropped, Duplicated, Reordered, Delayed uint64
}

type impairer struct {
	cfg Impairment

	mu      sync.Mutex
	rng     *rand.Rand
	held    *heldDatagram // a datagram waiting for the next one to overtake it
	timers  map[*time.Timer]struct{}
	stats   ImpairStats
	stopped bool
}

type heldDatagram struct {
	op    string
	data  []byte
	to    *sockaddr
	timer *time.Timer
}

// reorderHold is how long a held-back datagram waits for a successor
// before it is sent anyway.
const reorderHold = 50 * time.Millisecond

// Impair sets (or with nil clears) the impairment of a datagram socket.
func (s *Socket) Impair(im *Impairment) error {
	if s.Kind.Stream() {
		return argError("impair", "impairment applies to datagram sockets (udp, udp6), not %s", s.Kind)
	}
	if s.closed.Load() {
		return withOp("impair", ErrClosed)
	}
	if im == nil {
		if old := s.impair.Swap(nil); old != nil {
			old.stop(s)
		}
		return nil
	}
	for _, p := range []float64{im.Loss, im.Duplicate, im.Reorder} {
		if p < 0 || p > 1 {
			return argError("impair", "probability %g is outside 0..1", p)
		}
	}
	if im.Delay < 0 || im.Jitter < 0 {
		return argError("impair", "delay and jitter must not be negative")
	}
	n := &impairer{cfg: *im, rng: rand.New(rand.NewPCG(im.Seed, im.Seed^0x9e3779b97f4a7c15)), timers: map[*time.Timer]struct{}{}}
	if old := s.impair.Swap(n); old != nil {
		old.stop(s)
	}
	return nil
}

// Impairment returns the socket's impairment and what it has done so far.
func (s *Socket) Impairment() (*Impairment, ImpairStats) {
	im := s.impair.Load()
	if im == nil {
		return nil, ImpairStats{}
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	cfg := im.cfg
	return &cfg, im.stats
}

// send applies the impairment to one datagram. To the sender it looks like
// a successful send either way, as real loss does.
func (im *impairer) send(ctx context.Context, s *Socket, op string, p []byte, to *sockaddr) (int, error) {
	im.mu.Lock()
	im.stats.Sent++
	drop := im.rng.Float64() < im.cfg.Loss
	dup := im.rng.Float64() < im.cfg.Duplicate
	reorder := im.rng.Float64() < im.cfg.Reorder
	delay := im.cfg.Delay
	if im.cfg.Jitter > 0 {
		delay += time.Duration((im.rng.Float64()*2 - 1) * float64(im.cfg.Jitter))
	}
	if delay < 0 {
		delay = 0
	}
	if drop {
		im.stats.Dropped++
		im.mu.Unlock()
		s.note(op, p, "dropped by impairment")
		s.bytesOut.Add(uint64(len(p)))
		s.dgramsOut.Add(1)
		return len(p), nil
	}
	copies := 1
	if dup {
		im.stats.Duplicated++
		copies = 2
	}
	data := append([]byte(nil), p...)
	if reorder && im.held == nil {
		// Hold this one back: the next datagram overtakes it.
		im.stats.Reordered++
		h := &heldDatagram{op: op, data: data, to: to}
		h.timer = time.AfterFunc(reorderHold, func() { im.release(s, h) })
		im.held = h
		im.mu.Unlock()
		s.note(op, p, "held back by impairment (reorder)")
		if dup {
			im.later(s, op, data, to, delay)
		}
		s.bytesOut.Add(uint64(len(p)))
		s.dgramsOut.Add(1)
		return len(p), nil
	}
	held := im.held
	im.held = nil
	if held != nil {
		held.timer.Stop()
	}
	if delay > 0 {
		im.stats.Delayed++
	}
	im.mu.Unlock()

	var n int
	var err error
	for i := 0; i < copies; i++ {
		if delay > 0 {
			im.later(s, op, data, to, delay)
			n = len(p)
		} else {
			n, err = s.rawSend(ctx, op, data, to, netip.AddrPort{})
		}
		if i == 1 {
			s.note(op, p, "duplicated by impairment")
		}
	}
	if held != nil {
		im.later(s, held.op, held.data, held.to, delay)
	}
	return n, err
}

// later sends a datagram after d (at once when d is 0) on a timer, so the
// sender never waits for the impairment.
func (im *impairer) later(s *Socket, op string, data []byte, to *sockaddr, d time.Duration) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.stopped {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		im.mu.Lock()
		delete(im.timers, t)
		stopped := im.stopped
		im.mu.Unlock()
		if !stopped {
			s.rawSend(context.Background(), op, data, to, netip.AddrPort{})
		}
	})
	im.timers[t] = struct{}{}
}

func (im *impairer) release(s *Socket, h *heldDatagram) {
	im.mu.Lock()
	if im.held != h {
		im.mu.Unlock()
		return
	}
	im.held = nil
	im.mu.Unlock()
	im.later(s, h.op, h.data, h.to, 0)
}

// stop cancels every pending send; it runs when the impairment is replaced
// or the socket closes.
func (im *impairer) stop(s *Socket) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.stopped = true
	for t := range im.timers {
		t.Stop()
	}
	im.timers = nil
	if im.held != nil {
		im.held.timer.Stop()
		im.held = nil
	}
}

// note traces what the impairment did to a datagram.
func (s *Socket) note(op string, p []byte, what string) {
	start := s.table.traceStart()
	if start.IsZero() {
		return
	}
	s.emitData(start, Event{Call: op, Args: []string{fmt.Sprint(len(p))}, Note: what}, len(p), nil, p)
}
