//go:build !linux

package lua

import (
	"os"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// proc.run relies on Linux (waitid with WNOWAIT, a subreaper, /proc); other
// systems get the module with a clear failure instead of a missing name.
func openProc(h *Host) {
	h.newModule("proc", "processes: run a program (Linux only)", []fn{
		{"run", func(L *glua.LState) int {
			return pushFail(L, &sock.Error{Op: "proc.run", Code: "ENOSYS", Msg: "proc.run needs Linux", Errno: unix.ENOSYS})
		}, "proc.run{argv = {prog, args...}, ...} -> nil, msg, \"ENOSYS\"  -- running programs needs Linux in this build"},
		{"executable", func(L *glua.LState) int {
			p, err := os.Executable()
			if err != nil {
				return pushFail(L, err)
			}
			L.Push(glua.LString(p))
			return 1
		}, "proc.executable() -> path  -- the running sockplay binary"},
	})
}
