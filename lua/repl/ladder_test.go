//go:build linux

package repl

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sockplay/internal/testpeer"
)

// .ladder after .capture on: the handshake, the data with the calls that
// sent it, the close, from a real exchange; and the same as an SVG file.
func TestLadderCommand(t *testing.T) {
	testpeer.Root(t)
	svg := filepath.Join(t.TempDir(), "c.svg")
	r, out, _ := newSession(t, []string{
		".capture on",
		`l = sock.listen_tcp("127.0.0.1", 0)`,
		`srv = spawn(function() local s = l:accept(); s:write(s:read_line() .. "\n"); s:close() end)`,
		`c = sock.dial_tcp("127.0.0.1", select(2, l:getsockname()))`,
		`c:write("ping\n"); c:read_all(); c:close(); wait(srv); l:close()`, // the server closes first
		`sleep(0.2)`, // the capture holds packets a moment to find their calls
		".ladder c",
		".ladder c " + svg,
		".capture off",
	}, Options{})
	if code := run(t, r); code != 0 {
		t.Fatalf("status %d\n%s", code, out.String())
	}
	text := out.String()
	for _, want := range []string{
		`connect   \|-- SYN seq 0 -+>\|`,
		`\|<-+ SYN-ACK seq 0 ack 1 --\|  kernel`,
		`write     \|-- data seq 1:6 len 5 ack 1 -+>\|`,
		`\|<-+ data seq 1:6 len 5 ack 6 --\|  write`,
		`\|<-+ FIN seq 6 ack 6 --\|  close`,
		`close     \|-- FIN seq 6 ack 7 -+>\|`,
		`fd \d+ \(repl\) +fd \d+ \(task \d+ \(stdin:1\)\)`,
		`\(written to .*c\.svg too\)`,
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	data, err := os.ReadFile(svg)
	if err != nil || !strings.HasPrefix(string(data), "<?xml") || !strings.Contains(string(data), "SYN-ACK seq 0 ack 1") {
		t.Fatalf("svg: %v\n%.300s", err, data)
	}
}
