package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// message is what each round trip sends: letters ending in a newline, so
// that line servers (Copas's) answer it as byte servers do.
func message() []byte {
	msg := make([]byte, *size)
	for i := range msg {
		msg[i] = byte('a' + i%26)
	}
	if len(msg) > 0 {
		msg[len(msg)-1] = '\n'
	}
	return msg
}

// loadTCP runs -c connections doing write-then-read round trips for -d and
// returns round trips per second and the server's CPU time (user +
// system) per round trip, which a busy machine disturbs far less than the
// rate.
func loadTCP(addr string, pid int) (float64, time.Duration) {
	return measure(pid, func(stop time.Time, total *atomic.Int64) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return
		}
		defer c.Close()
		c.(*net.TCPConn).SetNoDelay(true)
		c.SetDeadline(stop.Add(10 * time.Second))
		msg := message()
		buf := make([]byte, len(msg))
		n := int64(0)
		for time.Now().Before(stop) {
			if _, err := c.Write(msg); err != nil {
				fmt.Fprintln(os.Stderr, "write:", err)
				break
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				fmt.Fprintln(os.Stderr, "read:", err)
				break
			}
			n++
		}
		total.Add(n)
	})
}

// loadUDP is loadTCP for datagrams: each client is a connected UDP
// socket with one datagram in flight; a reply that does not come within
// 100 ms counts as lost and the client sends again.
func loadUDP(addr string, pid int) (float64, time.Duration) {
	var lost atomic.Int64
	rate, cpu := measure(pid, func(stop time.Time, total *atomic.Int64) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return
		}
		defer c.Close()
		msg := message()
		buf := make([]byte, len(msg)+1)
		n := int64(0)
		for time.Now().Before(stop) {
			if _, err := c.Write(msg); err != nil {
				fmt.Fprintln(os.Stderr, "write:", err)
				break
			}
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Read(buf); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					lost.Add(1)
					continue
				}
				fmt.Fprintln(os.Stderr, "read:", err)
				break
			}
			n++
		}
		total.Add(n)
	})
	if l := lost.Load(); l > 0 {
		fmt.Printf("  (%d datagrams lost and sent again)\n", l)
	}
	return rate, cpu
}

// measure runs client on -c goroutines until -d has passed.
func measure(pid int, client func(stop time.Time, total *atomic.Int64)) (float64, time.Duration) {
	pinSelf()
	var total atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(*duration)
	start := time.Now()
	cpu0 := cpuTime(pid)
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client(stop, &total)
		}()
	}
	wg.Wait()
	cpu := cpuTime(pid) - cpu0
	n := total.Load()
	if n == 0 {
		return 0, 0
	}
	return float64(n) / time.Since(start).Seconds(), cpu / time.Duration(n)
}

// memory holds n idle connections to each server and reports the growth
// of the server's resident set divided by n.
func memory(n int) {
	fmt.Printf("memory: %d idle connections, each held by its own task (Lua) or goroutine (Go)\n", n)
	for _, name := range serverList() {
		s := starters[name]()
		time.Sleep(200 * time.Millisecond)
		before := rss(s.pid())
		var held []net.Conn
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
			if err != nil {
				fmt.Fprintf(os.Stderr, "dial %d: %v\n", i, err)
				break
			}
			held = append(held, c)
		}
		ok := roundTripEach(held)
		time.Sleep(500 * time.Millisecond)
		after := rss(s.pid())
		fmt.Printf("  %-8s %d connections served; RSS %6.1f MiB -> %6.1f MiB: %.1f KiB per connection\n",
			name, ok, float64(before)/1024, float64(after)/1024, float64(after-before)/float64(len(held)))
		for _, c := range held {
			c.Close()
		}
		s.stop()
	}
}

// roundTripEach does one round trip on every connection, which proves
// each is being served, and counts those that were.
func roundTripEach(held []net.Conn) int {
	buf := make([]byte, 1)
	ok := 0
	for _, c := range held {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("x")); err == nil {
			if _, err := io.ReadFull(c, buf); err == nil {
				ok++
			}
		}
	}
	return ok
}

// bursts opens n connections to each server at once (one goroutine each,
// all released together) and reports dial errors, how long the last dial
// took, and how many connections then answer a round trip.
func bursts(n int) {
	fmt.Printf("burst: %d TCP connections opened at once\n", n)
	for _, name := range serverList() {
		s := starters[name]()
		conns := make([]net.Conn, n)
		errs := make([]error, n)
		var slow atomic.Int64
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				t := time.Now()
				conns[i], errs[i] = net.DialTimeout("tcp", s.addr, 5*time.Second)
				if time.Since(t) > time.Second {
					slow.Add(1) // a SYN was dropped and sent again
				}
			}()
		}
		t0 := time.Now()
		close(gate)
		wg.Wait()
		took := time.Since(t0)
		failed := 0
		var first error
		var held []net.Conn
		for i := range n {
			if errs[i] != nil {
				failed++
				if first == nil {
					first = errs[i]
				}
				continue
			}
			held = append(held, conns[i])
		}
		ok := roundTripEach(held)
		fmt.Printf("  %-8s %d dial errors, %d dials over 1 s (a SYN sent again), all done in %v; %d of %d connections served",
			name, failed, slow.Load(), took.Round(time.Millisecond), ok, n)
		if first != nil {
			fmt.Printf(" (first error: %v)", first)
		}
		fmt.Println()
		for _, c := range held {
			c.Close()
		}
		s.stop()
	}
}
