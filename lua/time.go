package lua

import (
	"time"

	glua "github.com/yuin/gopher-lua"
)

// The time module: clocks fine enough to time a round trip. Lua's own
// os.clock is CPU time and os.time counts whole seconds.

// monotonicBase anchors time.monotonic: Go's time.Since reads the
// monotonic clock, which no change of the wall clock moves.
var monotonicBase = time.Now()

func openTime(h *Host) {
	h.newModule("time", "clocks for timing: time.now(), time.monotonic()", []fn{
		{"now", timeNow, "time.now() -> seconds  -- wall-clock time since 1970 as a float, to the microsecond"},
		{"monotonic", timeMonotonic, "time.monotonic() -> seconds  -- a clock that only moves forward, for measuring durations (the difference of two readings)"},
	})
}

func timeNow(L *glua.LState) int {
	L.Push(glua.LNumber(float64(time.Now().UnixMicro()) / 1e6))
	return 1
}

func timeMonotonic(L *glua.LState) int {
	L.Push(glua.LNumber(time.Since(monotonicBase).Seconds()))
	return 1
}
