package main

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"
)

// echo is the way from liner to the terminal. liner draws the prompt's row
// with fmt.Print on os.Stdout and has no API for output from elsewhere, so
// a background write must clear the row, print above it, and draw the row
// again. liner redraws on SIGWINCH, but that redraw ends a Ctrl-R search
// and drops what was typed into it. Instead, while the REPL runs,
// os.Stdout is a pipe that a goroutine copies to the terminal, keeping the
// bytes liner drew the current row with: a background write is followed by
// those bytes again, which puts the row back as it was, whatever liner was
// doing (editing, a search, a completion's question).
type echo struct {
	term *os.File    // the terminal, where the bytes go
	r, w *os.File    // the pipe that stands in for os.Stdout
	mu   *sync.Mutex // the terminal's: one writer to the screen at a time
	row  []byte      // liner's bytes since its last newline; under mu

	synced chan struct{} // the copier reached a sync mark
	done   chan struct{} // the copier ended
}

// syncMark is written into the pipe to learn when the copier has passed
// everything before it. liner never writes an OSC sequence.
var syncMark = []byte("\x1b]sockplay-sync\x07")

// startEcho puts the pipe in place of os.Stdout (term, the terminal) and
// starts the copier. mu guards writes to the terminal.
func startEcho(term *os.File, mu *sync.Mutex) (*echo, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("cannot make the prompt's pipe: %v", err)
	}
	e := &echo{term: term, r: r, w: w, mu: mu, synced: make(chan struct{}, 1), done: make(chan struct{})}
	os.Stdout = w
	go e.copy()
	return e, nil
}

// copy forwards what liner writes, minus the sync marks, and keeps the
// current row.
func (e *echo) copy() {
	defer close(e.done)
	buf := make([]byte, 4096)
	var carry []byte // the start of a sync mark cut by a read
	for {
		n, err := e.r.Read(buf)
		if n > 0 {
			data := append(carry, buf[:n]...)
			carry = nil
			for {
				i := bytes.Index(data, syncMark)
				if i < 0 {
					break
				}
				e.forward(data[:i])
				data = data[i+len(syncMark):]
				select {
				case e.synced <- struct{}{}:
				default:
				}
			}
			k := markPrefix(data)
			carry = append([]byte(nil), data[len(data)-k:]...)
			e.forward(data[:len(data)-k])
		}
		if err != nil {
			return
		}
	}
}

// markPrefix is how many bytes at the end of data may begin a sync mark.
func markPrefix(data []byte) int {
	for k := min(len(syncMark)-1, len(data)); k > 0; k-- {
		if bytes.HasPrefix(syncMark, data[len(data)-k:]) {
			return k
		}
	}
	return 0
}

// maxRow bounds the bytes kept of a row; past it they are cut at the last
// redraw, which draws the whole row anew.
const maxRow = 8 << 10

func (e *echo) forward(p []byte) {
	if len(p) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.term.Write(p)
	if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
		e.row = e.row[:0]
		p = p[i+1:]
	}
	for _, c := range p {
		if c != '\a' { // a beep is not part of the picture
			e.row = append(e.row, c)
		}
	}
	if len(e.row) > maxRow {
		if i := lastRedraw(e.row[:len(e.row)-32]); i > 0 {
			e.row = append(e.row[:0], e.row[i:]...)
		}
	}
}

// lastRedraw finds where liner last began to draw the whole row: the
// cursor sent to column 1, "\x1b[1G", or a carriage return that is not
// the start of a cursor move ("\r\x1b[5C").
func lastRedraw(row []byte) int {
	at := bytes.LastIndex(row, []byte("\x1b[1G"))
	for i := len(row) - 1; i > at; i-- {
		if row[i] == '\r' && !bytes.HasPrefix(row[i+1:], []byte("\x1b[")) {
			return i
		}
	}
	return at
}

// sync returns once everything written to the pipe so far is on the
// terminal (or after a second, should the copier be stuck).
func (e *echo) sync() {
	select {
	case <-e.synced: // a stale signal
	default:
	}
	if _, err := e.w.Write(syncMark); err != nil {
		return
	}
	select {
	case <-e.synced:
	case <-time.After(time.Second):
	}
}

// stop puts the terminal back as os.Stdout, after what is in the pipe.
func (e *echo) stop() {
	e.sync()
	os.Stdout = e.term
	e.w.Close()
	<-e.done
	e.r.Close()
}
