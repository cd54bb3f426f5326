//go:build linux

package lua

import (
	"context"
	"os"
	"strings"
	"testing"

	"sockplay/internal/labtest"
	"sockplay/internal/testpeer"
)

// The lab from Lua, root only: each Test* in testdata/lab/lab_test.lua
// on a fresh host, then a look that nothing stayed behind.
func TestLabFromLua(t *testing.T) {
	testpeer.Need(t, "curl", "nc", "ping", "tcpdump", "dig")
	w := labtest.Look(t)
	runLuaTestFile(t, "testdata/lab/lab_test.lua")
	w.Check(t, os.Getpid())
}

// The REPL completes a lab's objects: methods after ':', fields too after '.'.
func TestLabCompletion(t *testing.T) {
	testpeer.Root(t)
	h, _ := newTestHost(t)
	defer h.Close()
	if _, err := h.Eval(context.Background(), "lab", `net = assert(lab.new()); c = net:host("c"); k = net:link(c, net:host("d"))`); err != nil {
		t.Fatal(FormatError(err))
	}
	for _, tc := range []struct {
		path string
		sep  byte
		want string
	}{
		{"net", ':', "close host hosts link links router"},
		{"c", ':', "addrs call masquerade redirect run spawn"},
		{"c", '.', "addr addrs call masquerade name netns redirect router run spawn"},
		{"k", ':', "addr down shape stats up"},
	} {
		if got := strings.Join(h.Fields(tc.path, tc.sep), " "); got != tc.want {
			t.Errorf("Fields(%q, %q) = %q, want %q", tc.path, tc.sep, got, tc.want)
		}
	}
}
