package lab

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Shape is what a link does to the frames going one way.
type Shape struct {
	Rate      uint64        // bits per second (the kernel's tbf); 0: as fast as sockplay moves them
	Delay     time.Duration // added to every frame
	Jitter    time.Duration // the delay varies by up to this much either way, keeping order
	Loss      float64       // fraction of frames dropped, 0..1
	Duplicate float64       // fraction of frames sent twice, 0..1
	Reorder   float64       // fraction of frames sent at once, overtaking the delayed ones (needs a delay)
}

// MaxDelay bounds Delay and Jitter: a lab shows a network, not a space probe.
const MaxDelay = 10 * time.Second

// Check says what is wrong with s, naming the field as a script names it.
func (s Shape) Check() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", s.Loss}, {"duplicate", s.Duplicate}, {"reorder", s.Reorder}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("%s must be between 0 and 1, not %g", p.name, p.v)
		}
	}
	if s.Delay < 0 || s.Delay > MaxDelay {
		return fmt.Errorf("delay must be between 0 and %gs, not %gs", MaxDelay.Seconds(), s.Delay.Seconds())
	}
	if s.Jitter < 0 || s.Jitter > MaxDelay {
		return fmt.Errorf("jitter must be between 0 and %gs, not %gs", MaxDelay.Seconds(), s.Jitter.Seconds())
	}
	if s.Reorder > 0 && s.Delay == 0 {
		return fmt.Errorf("reorder needs a delay: reordered frames overtake the delayed ones")
	}
	if s.Rate > 0 && s.Rate < 8000 {
		return fmt.Errorf("rate must be at least 8000 bits/s (1 KB/s), not %d", s.Rate)
	}
	return nil
}

// userSpace reports whether frames need more than a copy from one end to
// the other.
func (s *Shape) userSpace() bool {
	return s.Delay > 0 || s.Jitter > 0 || s.Loss > 0 || s.Duplicate > 0 || s.Reorder > 0
}

// String is the shape in tc's words: "rate 1Mbit delay 50ms ±5ms loss 1%",
// "-" for none.
func (s Shape) String() string {
	var parts []string
	if s.Rate > 0 {
		parts = append(parts, "rate "+FormatRate(s.Rate))
	}
	if s.Delay > 0 || s.Jitter > 0 {
		d := "delay " + formatDuration(s.Delay)
		if s.Jitter > 0 {
			d += " ±" + formatDuration(s.Jitter)
		}
		parts = append(parts, d)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", s.Loss}, {"duplicate", s.Duplicate}, {"reorder", s.Reorder}} {
		if p.v > 0 {
			parts = append(parts, p.name+" "+strconv.FormatFloat(p.v*100, 'g', 4, 64)+"%")
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// FormatRate writes bits per second as tc does: 1Mbit, 512Kbit, 100bit.
func FormatRate(bps uint64) string {
	for _, u := range []struct {
		div  uint64
		name string
	}{{1e9, "Gbit"}, {1e6, "Mbit"}, {1e3, "Kbit"}} {
		if bps >= u.div {
			return strconv.FormatFloat(float64(bps)/float64(u.div), 'g', 4, 64) + u.name
		}
	}
	return strconv.FormatUint(bps, 10) + "bit"
}

func formatDuration(d time.Duration) string {
	if d%time.Millisecond == 0 || d >= time.Second {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'g', 6, 64) + "ms"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'g', 6, 64) + "us"
}
