// Package labtest checks that a lab leaves the machine as it found it:
// no namespace of the process under test left under /run/netns, the same
// devices (ip link) and the same nftables ruleset outside.
package labtest

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"sockplay/internal/testpeer"
)

// World is what the machine shows outside the lab.
type World struct{ links, rules string }

func run(t testing.TB, p string, args ...string) string {
	t.Helper()
	out, err := exec.Command(p, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", p, args, err, out)
	}
	return string(out)
}

// Look records the devices and the ruleset outside any namespace. It
// skips t without root (or fails it under SOCKPLAY_REQUIRE_PEERS=1).
func Look(t testing.TB) World {
	t.Helper()
	testpeer.Root(t)
	return World{links: run(t, testpeer.Path(t, "ip"), "-o", "link"), rules: run(t, testpeer.Path(t, "nft"), "list", "ruleset")}
}

// Namespaces lists the lab namespaces of process pid that ip netns list
// shows. Only pid's: other packages' tests may run labs at the same time.
func Namespaces(t testing.TB, pid int) []string {
	t.Helper()
	var mine []string
	for _, line := range strings.Split(run(t, testpeer.Path(t, "ip"), "netns", "list"), "\n") {
		if strings.HasPrefix(line, "sockplay-"+strconv.Itoa(pid)+"-") {
			mine = append(mine, strings.Fields(line)[0])
		}
	}
	return mine
}

// Check fails t unless process pid's labs are all gone and the devices
// and ruleset are as w recorded them. A lab taken down in the background
// (a killed task's) gets a second to finish.
func (w World) Check(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for len(Namespaces(t, pid)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := Namespaces(t, pid); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	if links := run(t, testpeer.Path(t, "ip"), "-o", "link"); links != w.links {
		t.Errorf("ip link changed:\nbefore:\n%s\nafter:\n%s", w.links, links)
	}
	if rules := run(t, testpeer.Path(t, "nft"), "list", "ruleset"); rules != w.rules {
		t.Errorf("nft ruleset changed:\nbefore:\n%s\nafter:\n%s", w.rules, rules)
	}
}
