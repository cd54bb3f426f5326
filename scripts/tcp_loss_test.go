package scripts_test

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// tcp_loss.lua: real kernel loss in a namespace; TCP retransmits and
// delivers everything, UDP loses about the configured fraction.
func TestTCPLossScript(t *testing.T) {
	testpeer.Root(t)
	r := scripttest.Run(t, "", 120*time.Second, scripttest.Script("tcp_loss.lua"), "--loss", "0.1", "--kib", "512", "--datagrams", "1000")
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	tcp := regexp.MustCompile(`TCP  sent 524288 bytes, received 524288, intact and in order: true, (\d+) segments retransmitted`).FindStringSubmatch(r.Stdout)
	if tcp == nil {
		t.Fatalf("no intact TCP line:\n%s", r.Stdout)
	}
	if n, _ := strconv.Atoi(tcp[1]); n == 0 {
		t.Errorf("no retransmissions at 10%% loss:\n%s", r.Stdout)
	}
	udp := regexp.MustCompile(`UDP  sent 1000 datagrams, received (\d+), lost (\d+)`).FindStringSubmatch(r.Stdout)
	if udp == nil {
		t.Fatalf("no UDP line:\n%s", r.Stdout)
	}
	received, _ := strconv.Atoi(udp[1])
	lost, _ := strconv.Atoi(udp[2])
	if received+lost != 1000 || lost < 40 || lost > 180 {
		t.Errorf("UDP received %d, lost %d of 1000 at 10%% loss", received, lost)
	}
	bad := scripttest.Run(t, "", 30*time.Second, scripttest.Script("tcp_loss.lua"), "--loss", "2")
	if bad.Code != 2 || bad.Stderr != "tcp_loss.lua: --loss must be between 0 and 1 (try --help)\n" {
		t.Errorf("--loss 2: exit %d, stderr %q", bad.Code, bad.Stderr)
	}
}
