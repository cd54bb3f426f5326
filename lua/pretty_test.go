package lua

import (
	"context"
	"strings"
	"testing"
	"time"

	glua "github.com/yuin/gopher-lua"
)

func TestQuoteLua(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"a\"b\\c", `"a\"b\\c"`},
		{"GET / HTTP/1.1\r\n", `"GET / HTTP/1.1\r\n"`},
		{"\x00\x01", `"\0\1"`},
		{"\x001", `"\0001"`}, // a digit after an escape: padded so it reads back
		{"\xff\xfe", `"\255\254"`},
		{"café", `"café"`},
		{"\t\a\b\f\v", `"\t\a\b\f\v"`},
	}
	for _, tt := range tests {
		if got := quoteLua(tt.in, 100); got != tt.want {
			t.Errorf("quoteLua(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got := quoteLua(strings.Repeat("x", 300), 10); got != `"xxxxxxxxxx"...(300 bytes)` {
		t.Errorf("long string: %s", got)
	}
	// Cutting never splits a UTF-8 sequence.
	if got := quoteLua("aé", 2); got != `"a"...(3 bytes)` {
		t.Errorf("cut inside a rune: %s", got)
	}
}

// The quoted form reads back to the same bytes in Lua.
func TestQuoteLuaRoundTrip(t *testing.T) {
	h, _ := newTestHost(t)
	defer h.Close()
	for _, s := range []string{"\x00\x01\x02 \x7f\x80\xff", "a\r\nb", "\x001\x002", "\"'\\", "ünï"} {
		vals, err := h.Eval(context.Background(), "t", "return "+quoteLua(s, 1000))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got := string(vals[0].(glua.LString)); got != s {
			t.Errorf("round trip %q gave %q", s, got)
		}
	}
}

func prettyOf(t *testing.T, h *Host, expr string) string {
	t.Helper()
	vals, err := h.Eval(context.Background(), "t", "return "+expr)
	if err != nil {
		t.Fatalf("%s: %s", expr, FormatError(err))
	}
	return h.Pretty(context.Background(), vals)
}

func TestPretty(t *testing.T) {
	h, _ := newTestHost(t)
	defer h.Close()
	tests := []struct{ expr, want string }{
		{`1, "a", nil, true`, "1\t\"a\"\tnil\ttrue"},
		{`{3, 2, 1}`, "{3, 2, 1}"},
		{`{z = 1, a = 2, [2] = "b", [1] = "a", [1.5] = 0}`, `{"a", "b", [1.5] = 0, a = 2, z = 1}`},
		{`{["not an id"] = 1, ["end"] = 2}`, `{["end"] = 2, ["not an id"] = 1}`},
		{`(function() local t = {}; t.t = t; return t end)()`, "{t = <cycle>}"},
		{`(function() local s = {}; return {s, s} end)()`, "{{}, {}}"}, // shared, not a cycle
		{`{{{{{{{{}}}}}}}}`, "{{{{{{{...}}}}}}}"},
		{`fds`, "function: fds"},
		{`sock.open("udp") and nil`, "nil"},
	}
	for _, tt := range tests {
		if got := prettyOf(t, h, tt.expr); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.expr, got, tt.want)
		}
	}
	if got := prettyOf(t, h, "fds()"); !strings.HasPrefix(got, "FD ") {
		t.Errorf("fds() prints with its __tostring: %q", got)
	}
}

// A __tostring that loops is Lua code like any other: cancelling the
// context stops it.
func TestPrettyCancelled(t *testing.T) {
	h, _ := newTestHost(t)
	defer h.Close()
	vals, err := h.Eval(context.Background(), "t", `return setmetatable({}, {__tostring = function() while true do end end})`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan string)
	go func() { done <- h.Pretty(ctx, vals) }()
	select {
	case got := <-done:
		if !strings.HasPrefix(got, "(cannot print: ") {
			t.Errorf("got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pretty did not stop when its context ended")
	}
}
