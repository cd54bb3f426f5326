//go:build !linux

package lua

import (
	"net/netip"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"sockplay/sock"
	"sockplay/sock/dns"
)

// The lab is made of Linux network namespaces; other systems get the
// module with a clear failure instead of a missing name.

type labs struct{}

func openLab(h *Host) {
	h.newModule("lab", "a lab of hosts (Linux only)", []fn{
		{"new", func(L *glua.LState) int {
			return pushFail(L, &sock.Error{Op: "lab", Code: "ENOSYS", Msg: "the lab needs Linux network namespaces", Errno: unix.ENOSYS})
		}, "lab.new() -> nil, msg, \"ENOSYS\"  -- the lab needs Linux in this build"},
	})
}

func (h *Host) closeLabs() {}

func (h *Host) labFields(*glua.LUserData, bool) []string { return nil }

func (h *Host) labLookup(*sock.Netns, string, dns.Family) ([]netip.Addr, bool) { return nil, false }

// LabText describes the open labs: none here.
func (h *Host) LabText() string { return "(the lab needs Linux)\n" }
