package lua

import (
	"io"
	"strings"
	"testing"
)

// BenchmarkNewHost is the host's share of `sockplay -e ''` start-up time.
func BenchmarkNewHost(b *testing.B) {
	for i := 0; i < b.N; i++ {
		h := New(Options{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
		h.Close()
	}
}
