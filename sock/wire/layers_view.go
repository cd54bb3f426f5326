package wire

import (
	"fmt"
	"strings"
)

// viewWidth is the widest line the terminal views print.
const viewWidth = 100

// LayerView prints one packet layer by layer, link first, each field with
// the bytes that hold it (offsets in the frame, inclusive), then the frame
// as a hex dump in which every row holds the bytes of one layer only and
// names it. With color, ANSI colours mark the levels; without, the text is
// plain (what golden files and pipes get).
func LayerView(p Packet, color bool) string {
	ls := Decode(p)
	var b strings.Builder
	b.WriteString(frameSummary(p) + "\n")
	namew := 0
	for _, l := range ls {
		for _, f := range l.Fields {
			namew = max(namew, min(len(f.Name), 24))
		}
	}
	for _, l := range ls {
		head := fmt.Sprintf("%s: %s, bytes %s (%d)", l.Level, l.Name, byteRange(l.Start, l.End), l.End-l.Start)
		b.WriteString(paint(color, l.Level, true, head) + "\n")
		if l.Note != "" {
			b.WriteString(clip("  ("+l.Note+")") + "\n")
		}
		for _, f := range l.Fields {
			value := f.Value
			if f.Bits != "" {
				value += "  (" + f.Bits + ")"
			}
			b.WriteString(clip(fmt.Sprintf("  %-9s %-*s  %s", byteRange(f.Start, f.End), namew, f.Name, value)) + "\n")
		}
	}
	b.WriteString("\n")
	b.WriteString(layerHexDump(p.Data, ls, color))
	return b.String()
}

// frameSummary is the view's first line: size, where it was seen, and the
// descriptors and call it belongs to when the capture knows them (as the
// capture's lines annotate them).
func frameSummary(p Packet) string {
	s := fmt.Sprintf("frame: %d bytes", len(p.Data))
	if p.WireLen > len(p.Data) {
		s += fmt.Sprintf(" of %d (cut short by the snapshot length)", p.WireLen)
	}
	switch {
	case p.Iface == "lo": // on loopback a frame leaves and arrives on lo
		s += ", on lo"
	case p.Out:
		s += ", sent on " + p.Iface
	case p.Iface != "":
		s += ", received on " + p.Iface
	}
	if a := Annotation(p); a != "" {
		s += "; " + strings.TrimPrefix(a, "-- ")
	}
	return s
}

// byteRange writes [start, end) as inclusive offsets: "14", "14-33".
func byteRange(start, end int) string {
	switch {
	case end <= start:
		return fmt.Sprintf("%d (none)", start)
	case end == start+1:
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d-%d", start, end-1)
}

// clip cuts a line to the view's width.
func clip(s string) string {
	if len(s) <= viewWidth {
		return s
	}
	return s[:viewWidth-3] + "..."
}

var levelColor = map[string]string{
	LevelLink:        "34", // blue
	LevelNetwork:     "32", // green
	LevelTransport:   "33", // yellow
	LevelApplication: "35", // magenta
	LevelRaw:         "31", // red
}

func paint(color bool, level string, bold bool, s string) string {
	if !color || s == "" {
		return s
	}
	code := levelColor[level]
	if bold {
		code = "1;" + code
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// layerHexDump is the frame's hex dump, 16 bytes a line in the usual
// columns, with a line split wherever a layer begins so that every row
// holds one layer's bytes and ends with its name.
func layerHexDump(data []byte, ls []Layer, color bool) string {
	var b strings.Builder
	for _, l := range ls {
		for start := l.Start; start < l.End; {
			line := start &^ 15
			end := min(l.End, line+16)
			b.WriteString(hexRow(data, start, end, color, l))
			start = end
		}
	}
	return b.String()
}

// hexRow prints bytes [start, end) of one 16-byte line, each in its column.
func hexRow(data []byte, start, end int, color bool, l Layer) string {
	line := start &^ 15
	var hex, text strings.Builder
	for i := line; i < line+16; i++ {
		if i == line+8 {
			hex.WriteByte(' ')
		}
		if i < start || i >= end {
			hex.WriteString("   ")
			text.WriteByte(' ')
			continue
		}
		fmt.Fprintf(&hex, "%02x ", data[i])
		if c := data[i]; c >= 0x20 && c < 0x7f {
			text.WriteByte(c)
		} else {
			text.WriteByte('.')
		}
	}
	h, t := hex.String(), text.String()
	if color {
		// Colour only the bytes, not the blank columns around them.
		h = paintSpan(h, color, l.Level)
		t = paintSpan(t, color, l.Level)
	}
	return fmt.Sprintf("%04x  %s %s  %s\n", start, h, t, paint(color, l.Level, false, l.Name))
}

// paintSpan colours s from its first to its last non-blank character.
func paintSpan(s string, color bool, level string) string {
	i := len(s) - len(strings.TrimLeft(s, " "))
	j := len(strings.TrimRight(s, " "))
	if i >= j {
		return s
	}
	return s[:i] + paint(color, level, false, s[i:j]) + s[j:]
}
