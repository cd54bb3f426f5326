package lua

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sockplay/internal/leakcheck"
	"strings"
	"sync"
	"testing"
	"time"

	glua "github.com/yuin/gopher-lua"
)

// Lua test files: every global function named Test* in lua/testdata/*_test.lua
// runs as a Go subtest on a fresh host, with an expect module that records
// failures with their file:line and carries on.

func TestLuaFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*_test.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Lua test files found: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), "_test.lua"), func(t *testing.T) {
			runLuaTestFile(t, file)
		})
	}
}

// luaTestNames lists the Test* globals a file defines, in source order.
func luaTestNames(t *testing.T, file string) []string {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "function Test"); ok {
			if i := strings.IndexByte(rest, '('); i > 0 {
				names = append(names, "Test"+rest[:i])
			}
		}
	}
	return names
}

func runLuaTestFile(t *testing.T, file string) {
	for _, name := range luaTestNames(t, file) {
		t.Run(name, func(t *testing.T) {
			base := takeBaseline()
			func() {
				h, out := newTestHost(t)
				defer h.Close()
				src, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := h.Eval(ctx, filepath.Base(file), string(src)); err != nil {
					t.Fatalf("loading %s: %s", file, FormatError(err))
				}
				if _, err := h.Eval(ctx, name, name+"()"); err != nil {
					t.Errorf("%s", FormatError(err))
				}
				h.Wait(ctx)
				if ctx.Err() != nil {
					t.Errorf("%s: tasks still running after 30 s", name)
				}
				for _, f := range h.testFailures() {
					t.Error(f)
				}
				if t.Failed() {
					t.Logf("output:\n%s", out.String())
				}
			}()
			base.check(t)
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the console's writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestHost(t testing.TB) (*Host, *syncBuffer) {
	out := &syncBuffer{}
	h := New(Options{Stdin: strings.NewReader(""), Stdout: out, Stderr: out})
	h.withLock(func() { openExpect(h) })
	return h, out
}

// The expect module.

type expectState struct {
	mu       sync.Mutex
	failures []string
}

var expectStates sync.Map // *Host -> *expectState

func (h *Host) testFailures() []string {
	v, ok := expectStates.Load(h)
	if !ok {
		return nil
	}
	st := v.(*expectState)
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.failures...)
}

func openExpect(h *Host) {
	st := &expectState{}
	expectStates.Store(h, st)
	fail := func(L *glua.LState, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if L.GetTop() >= 3 {
			if extra, ok := L.Get(3).(glua.LString); ok {
				msg += " (" + string(extra) + ")"
			}
		}
		st.mu.Lock()
		st.failures = append(st.failures, strings.TrimSpace(L.Where(1))+" "+msg)
		st.mu.Unlock()
	}
	h.newModule("expect", "assertions for Lua tests", []fn{
		{"eq", func(L *glua.LState) int {
			got, want := L.Get(1), L.Get(2)
			if !L.Equal(got, want) {
				fail(L, "got %s, want %s", luaRepr(got), luaRepr(want))
			}
			return 0
		}, "expect.eq(got, want [, msg])"},
		{"ne", func(L *glua.LState) int {
			if L.Equal(L.Get(1), L.Get(2)) {
				fail(L, "got %s, want anything else", luaRepr(L.Get(1)))
			}
			return 0
		}, "expect.ne(got, unwanted [, msg])"},
		{"ok", func(L *glua.LState) int {
			if !glua.LVAsBool(L.Get(1)) {
				fail(L, "expected a true value, got %s", luaRepr(L.Get(1)))
			}
			return 0
		}, "expect.ok(value [, msg])"},
		{"match", func(L *glua.LState) int {
			s, pat := L.Get(1), L.CheckString(2)
			str, ok := s.(glua.LString)
			if !ok || !luaFind(L, string(str), pat) {
				fail(L, "%s does not match %q", luaRepr(s), pat)
			}
			return 0
		}, "expect.match(s, pattern [, msg])"},
		{"fails", func(L *glua.LState) int {
			f := L.CheckFunction(1)
			pat := L.OptString(2, "")
			L.Push(f)
			err := L.PCall(0, 0, nil)
			if err == nil {
				fail(L, "expected an error matching %q, got none", pat)
				return 0
			}
			msg := errorMessage(err)
			if pat != "" && !luaFind(L, msg, pat) {
				fail(L, "error %q does not match %q", msg, pat)
			}
			L.Push(glua.LString(msg))
			return 1
		}, "expect.fails(fn [, pattern]) -> message"},
	})
}

func luaFind(L *glua.LState, s, pat string) bool {
	find := L.GetField(L.GetGlobal("string"), "find")
	L.Push(find)
	L.Push(glua.LString(s))
	L.Push(glua.LString(pat))
	L.Call(2, 1)
	r := L.Get(-1)
	L.Pop(1)
	return r != glua.LNil
}

func luaRepr(v glua.LValue) string {
	if s, ok := v.(glua.LString); ok {
		return fmt.Sprintf("%q", string(s))
	}
	return v.String()
}

// baseline is leakcheck's, with this package's grace period.
type baseline struct{ leakcheck.Baseline }

func takeBaseline() baseline { return baseline{leakcheck.Take()} }

func (b baseline) check(t *testing.T) {
	t.Helper()
	b.Check(t, 3*time.Second)
}
