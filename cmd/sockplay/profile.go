//go:build profile

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile to $SOCKPLAY_CPUPROFILE when it is set,
// for performance work on the host: go tool pprof sockplay FILE. Only in a
// binary built with -tags profile: runtime/pprof and the compression it
// brings cost every start-up about half a millisecond.
func startProfile() (stop func()) {
	path := os.Getenv("SOCKPLAY_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sockplay: cpu profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "sockplay: cpu profile: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
