package lua

import (
	"fmt"
	"os"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
	"sockplay/sock/wire"
)

// The capture module's two views of packets: one packet layer by layer
// (the OSI walk on a real frame) and one connection as a ladder diagram.

func (h *Host) captureViewFns() []fn {
	return []fn{
		{"layer_view", h.captureLayerView, "capture.layer_view(packet [, {color = true}]) -> text  -- one packet layer by layer: link, network, transport, application (HTTP, DNS), each field with its bytes, then a hex dump whose rows each hold one layer's bytes"},
		{"ladder", h.captureLadder, "capture.ladder(packets | fd [, {svg = path}]) -> text | nil, msg, code  -- one TCP connection as a sequence diagram: SYN, data with relative seq and len, ACKs, FIN, RST, retransmissions (~), each arrow with the call that sent it; fd: that fd's last connection from the captures running; svg: write it as an image too"},
	}
}

func (h *Host) captureLayerView(L *glua.LState) int {
	p, ok := PacketFromLua(L.Get(1))
	if !ok {
		L.ArgError(1, "packet expected (a table from cap:next, cap:recent or capture.read_pcap), got "+L.Get(1).Type().String())
	}
	color := false
	if L.GetTop() >= 2 && L.Get(2) != glua.LNil {
		optionTable(L, 2, func(key string, v glua.LValue) {
			switch key {
			case "color":
				b, isBool := v.(glua.LBool)
				if !isBool {
					L.ArgError(2, "field color: boolean expected, got "+v.Type().String())
				}
				color = bool(b)
			default:
				L.ArgError(2, fmt.Sprintf("unknown option %q (known: color)", key))
			}
		})
	}
	L.Push(glua.LString(wire.LayerView(p, color)))
	return 1
}

func (h *Host) captureLadder(L *glua.LState) int {
	fd := -1
	var pkts []wire.Packet
	switch v := L.Get(1).(type) {
	case glua.LNumber:
		if fd = L.CheckInt(1); fd < 0 {
			L.ArgError(1, "an fd is not negative")
		}
	case *glua.LTable:
		for i := 1; i <= v.Len(); i++ {
			p, ok := PacketFromLua(v.RawGetInt(i))
			if !ok {
				L.ArgError(1, fmt.Sprintf("element %d is not a packet (a table with data and time)", i))
			}
			pkts = append(pkts, p)
		}
	default:
		L.ArgError(1, "packets or an fd expected, got "+v.Type().String())
	}
	svg := ""
	if L.GetTop() >= 2 && L.Get(2) != glua.LNil {
		optionTable(L, 2, func(key string, v glua.LValue) {
			s, isString := v.(glua.LString)
			if key != "svg" {
				L.ArgError(2, fmt.Sprintf("unknown option %q (known: svg)", key))
			}
			if !isString {
				L.ArgError(2, "field svg: a file name expected, got "+v.Type().String())
			}
			svg = string(s)
		})
	}
	var text string
	var err error
	if fd >= 0 {
		text, err = h.Ladder(fd, svg)
	} else {
		text, err = drawLadder(pkts, "the packets given", svg)
	}
	if err != nil {
		return pushFail(L, err)
	}
	L.Push(glua.LString(text))
	return 1
}

// optionTable calls set for each field of the options table at argument n.
func optionTable(L *glua.LState, n int, set func(key string, v glua.LValue)) {
	t := L.CheckTable(n)
	t.ForEach(func(k, v glua.LValue) {
		key, isString := k.(glua.LString)
		if !isString {
			L.ArgError(n, "option names are strings, got "+k.Type().String())
		}
		set(string(key), v)
	})
}

// Ladder draws the connection fd last had from the captures running, as
// .ladder shows it; svg, when set, is written as an SVG image too.
func (h *Host) Ladder(fd int, svg string) (string, error) {
	pkts := h.ConnectionPackets(fd)
	if len(pkts) == 0 {
		return "", &sock.Error{Op: "ladder", Code: "ENODATA",
			Msg: fmt.Sprintf("no captured packets of fd %d: start a capture (capture.open, .capture on) before its connection", fd)}
	}
	return drawLadder(pkts, fmt.Sprintf("the packets of fd %d", fd), svg)
}

// drawLadder draws the first TCP connection among pkts (what names them
// in the error when there is none) and writes its SVG when svg is set.
func drawLadder(pkts []wire.Packet, what, svg string) (string, error) {
	l, ok := wire.NewLadder(pkts, wire.Conn{})
	if !ok {
		return "", &sock.Error{Op: "ladder", Code: "ENODATA", Msg: "no TCP segment among " + what}
	}
	if svg != "" {
		if err := os.WriteFile(svg, []byte(wire.LadderSVG(l)), 0o644); err != nil {
			return "", &sock.Error{Op: "ladder", Code: "EIO", Msg: pathError(err).Error()}
		}
	}
	return wire.LadderText(l), nil
}
