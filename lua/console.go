package lua

import (
	"io"
	"sync"
)

// Console is the one door every Lua output goes through: print, io.write,
// background tasks and the trace. The REPL installs a Hook so that text
// written while the prompt waits appears above the prompt instead of in
// the middle of the line being typed.
type Console struct {
	mu   sync.Mutex
	w    io.Writer
	hook func(p []byte) bool // returns true when it wrote p itself
}

// NewConsole wraps w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// SetHook installs fn, which gets the first look at every write.
func (c *Console) SetHook(fn func(p []byte) bool) {
	c.mu.Lock()
	c.hook = fn
	c.mu.Unlock()
}

// Write writes p whole, under the console's lock.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hook != nil && c.hook(p) {
		return len(p), nil
	}
	return c.w.Write(p)
}

// WriteString is Write for a string.
func (c *Console) WriteString(s string) (int, error) { return c.Write([]byte(s)) }

// Writer is the console's underlying writer.
func (c *Console) Writer() io.Writer { return c.w }

// Flush is for writers that buffer.
func (c *Console) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.w.(interface{ Flush() error }); ok {
		f.Flush()
	}
}
