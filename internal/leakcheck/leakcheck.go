// Package leakcheck lets a test check that every descriptor and goroutine it
// started has ended: take a Baseline before, Check it after.
package leakcheck

import (
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// Baseline is the process's open descriptors and goroutine count at one
// moment.
type Baseline struct {
	fds        []string
	goroutines int
}

// Take records the current baseline.
func Take() Baseline {
	return Baseline{fds: openFDs(), goroutines: runtime.NumGoroutine()}
}

func openFDs() []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out = append(out, e.Name()+" -> "+target)
		}
	}
	sort.Strings(out)
	return out
}

// Check fails t when descriptors or goroutines stay above the baseline for
// longer than wait (things being closed get that long to finish).
func (b Baseline) Check(t testing.TB, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		fds, g := openFDs(), runtime.NumGoroutine()
		if len(fds) <= len(b.fds) && g <= b.goroutines {
			return
		}
		if time.Now().After(deadline) {
			if len(fds) > len(b.fds) {
				t.Errorf("descriptors leaked: %d before, %d after:\n%s", len(b.fds), len(fds), strings.Join(fds, "\n"))
			}
			if g > b.goroutines {
				buf := make([]byte, 1<<16)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", b.goroutines, g, buf[:n])
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
