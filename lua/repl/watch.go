package repl

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// watchEvery is how often .watch redraws.
const watchEvery = 500 * time.Millisecond

// ANSI sequences .watch uses.
const (
	hiOn       = "\x1b[7m" // reverse video: visible on any colour scheme
	hiOff      = "\x1b[0m"
	hideCursor = "\x1b[?25l"
	showCursor = "\x1b[?25h"
)

// cmdWatch redraws the descriptor table in place until a key is pressed or
// Ctrl-C, highlighting what changed since the frame before. Without a
// terminal it prints the table once.
func (r *REPL) cmdWatch(ctx context.Context, arg string) {
	all := false
	switch arg {
	case "":
	case "all":
		all = true
	default:
		r.usage(".watch")
		return
	}
	scr := r.opts.Screen
	if scr == nil {
		r.cmdFds(ctx, arg)
		return
	}
	cctx, end := r.begin(ctx)
	defer end()
	// Background output would scroll the frame away from under the cursor:
	// it waits, and comes out when the watch ends.
	release := scr.Hold()
	defer release()
	// Frames go straight to the terminal: the console holds the rest.
	w := r.h.Stdout().Writer()
	fmt.Fprint(w, hideCursor)
	defer fmt.Fprint(w, showCursor)

	var prev map[string][]string
	drawn := 0
	for frame := 0; ; frame++ {
		rows := r.h.FdRows(all)
		height, width := scr.Size()
		text, keys := renderWatchFrame(rows, prev, frame > 0, width, height, time.Now())
		if drawn > 0 {
			fmt.Fprintf(w, "\x1b[%dA\r\x1b[J", drawn)
		}
		fmt.Fprint(w, text)
		drawn = strings.Count(text, "\n")
		prev = keys
		if scr.WaitKey(cctx, watchEvery) || cctx.Err() != nil {
			return
		}
	}
}

// rowKey identifies a row across frames: its fd, or for a connection
// closed with no fd left (TIME_WAIT ...), its host and addresses: the
// cells from first (HOST, or LOCAL without one) to PEER.
func rowKey(row []string, first, peer int) string {
	if row[0] == "-" && first >= 0 && peer < len(row) {
		return "closed " + strings.Join(row[first:peer+1], " ")
	}
	return "fd " + row[0]
}

// column finds a column by its header; the table has a HOST column only
// when some socket lives in a lab host.
func column(header []string, name string) int {
	for i, c := range header {
		if c == name {
			return i
		}
	}
	return -1
}

// renderWatchFrame draws one frame: a title line and the aligned table, no
// line wider than width, no more lines than height. Cells that differ from
// prev (the last frame's rows by key), and rows that are new, are
// highlighted when mark is set.
func renderWatchFrame(rows [][]string, prev map[string][]string, mark bool, width, height int, now time.Time) (string, map[string][]string) {
	if width <= 0 {
		width = 80
	}
	if height <= 0 {
		height = 24
	}
	var b strings.Builder
	title := fmt.Sprintf(".watch  %s  every %.1fs, changes highlighted; any key stops", now.Format("15:04:05"), watchEvery.Seconds())
	b.WriteString(clip(title, width-1) + "\n")
	keys := map[string][]string{}
	if len(rows) <= 1 {
		b.WriteString("(no sockets open)\n")
		return b.String(), keys
	}
	// AGE changes every frame; highlighting it would say nothing.
	ageColumn, first, peer := column(rows[0], "AGE"), column(rows[0], "LOCAL"), column(rows[0], "PEER")
	if h := column(rows[0], "HOST"); h >= 0 {
		first = h
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	shown := rows
	if limit := height - 2; limit > 1 && len(rows) > limit {
		shown = rows[:limit-1]
	}
	for n, row := range shown {
		var changed []bool
		if n > 0 {
			key := rowKey(row, first, peer)
			keys[key] = row
			old, seen := prev[key]
			changed = make([]bool, len(row))
			for i := range row {
				changed[i] = mark && i != ageColumn && (!seen || i >= len(old) || old[i] != row[i])
			}
		}
		b.WriteString(renderRow(row, widths, changed, width-1))
		b.WriteByte('\n')
	}
	for _, row := range rows[len(shown):] {
		keys[rowKey(row, first, peer)] = row
	}
	if len(shown) < len(rows) {
		b.WriteString(clip(fmt.Sprintf("... %d more rows (a bigger window shows them)", len(rows)-len(shown)), width-1) + "\n")
	}
	return b.String(), keys
}

// renderRow pads cells to their column and cuts the line at width
// visible characters; changed cells are highlighted.
func renderRow(row []string, widths []int, changed []bool, width int) string {
	var b strings.Builder
	visible := 0
	for i, c := range row {
		pad := ""
		if i < len(row)-1 {
			pad = strings.Repeat(" ", widths[i]-len(c)+2)
		}
		room := width - visible
		if room <= 0 {
			break
		}
		cell := clip(c, room)
		if changed != nil && changed[i] && cell != "" {
			b.WriteString(hiOn + cell + hiOff)
		} else {
			b.WriteString(cell)
		}
		visible += len(cell)
		if len(cell) < len(c) {
			break
		}
		room = width - visible
		if len(pad) > room {
			pad = pad[:max(room, 0)]
		}
		b.WriteString(pad)
		visible += len(pad)
	}
	return strings.TrimRight(b.String(), " ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	return s[:n]
}
