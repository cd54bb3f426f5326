//go:build linux

package lua

import (
	"os"
	"path/filepath"
	"testing"

	"sockplay/internal/testpeer"
)

// capture.layer_view and capture.ladder on packets read from a real
// capture print what the Go views print (their golden files), and say
// clearly what is wrong with their arguments.
func TestCaptureViewsOfPcap(t *testing.T) {
	wire := filepath.Join("..", "sock", "wire", "testdata")
	layers, err1 := os.ReadFile(filepath.Join(wire, "layers_http_request.golden"))
	ladder, err2 := os.ReadFile(filepath.Join(wire, "ladder_http.golden"))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	svg := filepath.Join(t.TempDir(), "http.svg")
	evalLua(t, "views", `
		local pkts = assert(capture.read_pcap("`+filepath.Join(wire, "http.pcap")+`"))
		expect.eq(capture.layer_view(pkts[4]), [==[`+string(layers)+`]==])
		expect.match(capture.layer_view(pkts[4], {color = true}), "\27%[1;34mlink: Ethernet")
		expect.eq(capture.ladder(pkts), [==[`+string(ladder)+`]==])
		expect.eq(capture.ladder(pkts, {svg = "`+svg+`"}), [==[`+string(ladder)+`]==])
		expect.match(fs.read("`+svg+`"), "^<%?xml")

		local none, msg, code = capture.ladder({pkts[1]}, nil)
		expect.eq(code, nil) -- one SYN is a connection too
		none, msg, code = capture.ladder({})
		expect.eq(none, nil); expect.eq(msg, "no TCP segment among the packets given"); expect.eq(code, "ENODATA")
		none, msg, code = capture.ladder(99)
		expect.eq(none, nil); expect.match(msg, "^no captured packets of fd 99: start a capture"); expect.eq(code, "ENODATA")
		none, msg, code = capture.ladder(pkts, {svg = "/nonexistent/dir/x.svg"})
		expect.eq(none, nil); expect.eq(code, "EIO")

		expect.fails(function() capture.ladder("x") end, "bad argument #1 to 'ladder' %(packets or an fd expected, got string%)")
		expect.fails(function() capture.ladder(-1) end, "bad argument #1 to 'ladder'")
		expect.fails(function() capture.ladder({1, 2}) end, "element 1 is not a packet")
		expect.fails(function() capture.ladder(pkts, {png = "x"}) end, "bad argument #2 to 'ladder' %(unknown option \"png\"")
		expect.fails(function() capture.layer_view() end, "bad argument #1 to 'layer_view' %(packet expected")
		expect.fails(function() capture.layer_view(pkts[1], {colour = true}) end, "unknown option \"colour\"")
		expect.fails(function() capture.layer_view(pkts[1], {color = 1}) end, "field color: boolean expected")
	`)
}

// capture.ladder(fd) draws the connection a capture running kept.
func TestCaptureLadderOfFD(t *testing.T) {
	testpeer.Root(t)
	evalLua(t, "ladder", `
		local cap = assert(capture.open{})
		local l = sock.listen_tcp("127.0.0.1", 0)
		local srv = spawn(function() local s = l:accept(); s:read_all(); s:close() end)
		local c = sock.dial_tcp("127.0.0.1", select(2, l:getsockname()))
		c:write("hello\n")
		c:close(); wait(srv); l:close()
		sleep(0.2)
		local text = assert(capture.ladder(c.fd))
		expect.match(text, "connect   |%-%- SYN seq 0 %-+>|")
		expect.match(text, "write     |%-%- data seq 1:7 len 6 ack 1 %-+>|")
		expect.match(text, "close     |%-%- FIN seq 7 ack 1 %-+>|")
		cap:stop()
	`)
}
