package wire

import (
	"sort"
	"sync"
	"time"
)

// Hold is how long a packet waits before it is shown: the event of the
// call that sent it comes when the call returns, often after the packet
// was captured (on loopback the segment goes out during the call), and
// the trace's lines must find their place among the packets. It is more
// than the ring's timeout, after which a frame reaches the reader at the
// latest.
const Hold = 60 * time.Millisecond

// seqItem is a packet or a line of text waiting for its turn.
type seqItem struct {
	at   time.Time
	pkt  *Packet
	fi   flowInfo
	snd  *endpoint
	text string
}

// sequencer releases items in time order once they are Hold old. An item
// that arrives later than items already released (a call that waited a
// long time before returning) goes out with the next ones.
type sequencer struct {
	mu      sync.Mutex
	items   []seqItem
	last    time.Time // the time of the last item released
	stopped bool
	wake    chan struct{}
	done    chan struct{}
	out     func(seqItem)
}

func newSequencer(out func(seqItem)) *sequencer {
	s := &sequencer{wake: make(chan struct{}, 1), done: make(chan struct{}), out: out}
	go s.run()
	return s
}

// push queues it; false once the sequencer has stopped.
func (s *sequencer) push(it seqItem) bool {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return false
	}
	if it.at.Before(s.last) {
		it.at = s.last
	}
	i := sort.Search(len(s.items), func(i int) bool { return s.items[i].at.After(it.at) })
	s.items = append(s.items, seqItem{})
	copy(s.items[i+1:], s.items[i:])
	s.items[i] = it
	first := len(s.items) == 1
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// due takes the items old enough to go, all of them once stopping.
func (s *sequencer) due(now time.Time) (batch []seqItem, next time.Duration, stopped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.items)
	if !s.stopped {
		n = sort.Search(len(s.items), func(i int) bool { return now.Sub(s.items[i].at) < Hold })
	}
	batch = append(batch, s.items[:n]...)
	s.items = append(s.items[:0], s.items[n:]...)
	if n > 0 {
		s.last = batch[n-1].at
	}
	next = -1
	if len(s.items) > 0 {
		next = Hold - now.Sub(s.items[0].at)
	}
	return batch, next, s.stopped
}

func (s *sequencer) run() {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		batch, next, stopped := s.due(time.Now())
		for _, it := range batch {
			s.out(it)
		}
		if stopped {
			return
		}
		if next < 0 {
			next = time.Hour
		}
		timer.Reset(max(next, time.Millisecond))
		select {
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// stop releases everything still waiting and ends the goroutine.
func (s *sequencer) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done
}
