//go:build linux

package sock_test

// Compare the cost of tracing:
//
//	go test -run '^$' -bench WriteRead -benchmem ./sock/
//
// BenchmarkWriteReadNoTrace must show no allocation that the traced one
// does not also make; the difference is what tracing costs.
// BenchmarkWriteReadListen has a listener that wants no payload (as a
// packet capture's): it pays for the events but not for copies of the data.

import (
	"context"
	"testing"

	"sockplay/sock"
)

func benchWriteRead(b *testing.B, trace, data bool) {
	e := newEnv(b)
	c, s := e.pair(sock.TCP)
	if err := c.SetOption("nodelay", 1); err != nil {
		b.Fatal(err)
	}
	if trace {
		var events int
		remove := e.tbl.Listen(func(sock.Event) { events++ }, data) // one goroutine: no lock needed
		b.Cleanup(func() {
			remove()
			if events < 2*b.N {
				b.Errorf("%d events for %d write+read pairs", events, b.N)
			}
		})
	}
	// The env's context has a deadline meant for tests; a long -benchtime
	// must not run into it. Each socket keeps its own timeout.
	ctx := context.Background()
	out := make([]byte, 64)
	in := make([]byte, 64)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, err := c.Write(ctx, out); n != len(out) || err != nil {
			b.Fatalf("Write = %d, %v", n, err)
		}
		// 64 bytes written at once on loopback arrive as one segment.
		for got := 0; got < len(in); {
			n, err := s.Read(ctx, in[got:])
			if err != nil {
				b.Fatalf("Read: %v", err)
			}
			got += n
		}
	}
}

func BenchmarkWriteReadNoTrace(b *testing.B) { benchWriteRead(b, false, false) }
func BenchmarkWriteReadTrace(b *testing.B)   { benchWriteRead(b, true, true) }
func BenchmarkWriteReadListen(b *testing.B)  { benchWriteRead(b, true, false) }
