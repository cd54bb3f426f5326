//go:build linux

package lua

import "golang.org/x/sys/unix"

// LuaSocket's TCP options that only Linux has.
const (
	tcpKeepIdle        = unix.TCP_KEEPIDLE
	tcpDeferAccept     = unix.TCP_DEFER_ACCEPT
	tcpFastopenConnect = unix.TCP_FASTOPEN_CONNECT
)
