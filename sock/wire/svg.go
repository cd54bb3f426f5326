package wire

import (
	"encoding/xml"
	"fmt"
	"math"
	"strings"
	"time"
)

// SVG geometry of the ladder, in pixels.
const (
	svgWidth   = 900
	svgLeftX   = 250 // A's lifeline
	svgRightX  = 700 // B's lifeline
	svgTop     = 100 // the first arrow
	svgRow     = 30  // from one arrow to the next
	svgSlant   = 10  // an arrow drops this much: the segment takes time to cross
	svgHeadLen = 9
)

// stepColor is an arrow's colour by its kind: the handshake green, data
// dark, bare ACKs grey, the close blue, resets and retransmissions red.
func stepColor(st Step) string {
	switch {
	case st.Retransmit:
		return "#c0392b"
	case strings.HasPrefix(st.Kind, "SYN"):
		return "#1e8449"
	case strings.HasPrefix(st.Kind, "RST"):
		return "#c0392b"
	case strings.Contains(st.Kind, "FIN"):
		return "#2e5fa8"
	case st.Kind == "data":
		return "#222222"
	}
	return "#888888"
}

// LadderSVG draws the ladder as an SVG image: the two endpoints' lifelines,
// one slanted arrow per segment labelled as in LadderText (retransmissions
// dashed), the time in ms on the left and each call beside its sender.
func LadderSVG(l Ladder) string {
	height := svgTop + len(l.Steps)*svgRow + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans Mono, monospace" font-size="12">
<rect width="100%%" height="100%%" fill="#ffffff"/>
`, svgWidth, height, svgWidth, height)
	svgText(&b, 12, 22, "start", "font-weight=\"bold\"", "TCP "+l.Conn.String()+": "+ladderSummary(l))
	svgText(&b, 70, 54, "end", `fill="#555555"`, "ms")
	svgText(&b, svgLeftX, 54, "middle", `font-weight="bold"`, l.Conn.A.String())
	svgText(&b, svgRightX, 54, "middle", `font-weight="bold"`, l.Conn.B.String())
	svgText(&b, svgLeftX, 70, "middle", `fill="#555555"`, l.A.String())
	svgText(&b, svgRightX, 70, "middle", `fill="#555555"`, l.B.String())
	bottom := height - 12
	for _, x := range []int{svgLeftX, svgRightX} {
		fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"78\" x2=\"%d\" y2=\"%d\" stroke=\"#999999\" stroke-width=\"2\"/>\n", x, x, bottom)
	}
	for i, st := range l.Steps {
		y := svgTop + i*svgRow
		x1, x2 := svgLeftX, svgRightX
		if !st.FromA {
			x1, x2 = x2, x1
		}
		color := stepColor(st)
		dash := ""
		if st.Retransmit {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"1.5\"%s/>\n", x1, y, x2, y+svgSlant, color, dash)
		b.WriteString(arrowHead(float64(x1), float64(y), float64(x2), float64(y+svgSlant), color))
		svgText(&b, (svgLeftX+svgRightX)/2, y-3, "middle", `fill="`+color+`"`, st.Label)
		svgText(&b, 70, y+8, "end", `fill="#555555"`, fmt.Sprintf("%.3f", float64(st.Time)/float64(time.Millisecond)))
		if st.Call != "" {
			if st.FromA {
				svgText(&b, svgLeftX-10, y+4, "end", `font-style="italic"`, st.Call)
			} else {
				svgText(&b, svgRightX+10, y+4, "start", `font-style="italic"`, st.Call)
			}
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// arrowHead is a filled triangle with its tip at (x2, y2), pointing along
// the line from (x1, y1).
func arrowHead(x1, y1, x2, y2 float64, color string) string {
	dx, dy := x2-x1, y2-y1
	n := math.Hypot(dx, dy)
	ux, uy := dx/n, dy/n
	bx, by := x2-ux*svgHeadLen, y2-uy*svgHeadLen
	return fmt.Sprintf("<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\"/>\n",
		x2, y2, bx-uy*4, by+ux*4, bx+uy*4, by-ux*4, color)
}

func svgText(b *strings.Builder, x, y int, anchor, attrs, text string) {
	if text == "" {
		return
	}
	fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\" %s>", x, y, anchor, attrs)
	xml.EscapeText(b, []byte(text))
	b.WriteString("</text>\n")
}
