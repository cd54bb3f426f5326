//go:build !linux

package lua

// LuaSocket's TCP options that only Linux has: elsewhere the kernel is
// asked for option -1, and setoption returns its refusal.
const (
	tcpKeepIdle        = -1
	tcpDeferAccept     = -1
	tcpFastopenConnect = -1
)
