//go:build linux

package lua

import "sockplay/sock"

// A lab host stands for its namespace: capture.open{netns = host}.
func (o *labHostObj) captureNetns() *sock.Netns { return o.h.Netns() }
