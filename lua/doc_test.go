package lua

import (
	"sort"
	"strings"
	"testing"
)

// Every function sockplay registers has a help line, and help() finds it.
func TestEveryFunctionHasHelp(t *testing.T) {
	h, _ := newTestHost(t)
	defer h.Close()
	docs := h.Documented()
	var missing []string
	for name, ok := range docs {
		if !ok && !strings.HasPrefix(name, "expect.") {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("functions without a help line: %s", strings.Join(missing, ", "))
	}
	for _, name := range []string{"sock.connect", "sock.read", "spawn", "fds", "trace", "help", "print"} {
		if !docs[name] {
			t.Errorf("%s is not registered with help", name)
		}
	}
}

func TestHelpOutput(t *testing.T) {
	h, out := newTestHost(t)
	defer h.Close()
	for _, code := range []string{`help(sock.connect)`, `help("sock")`, `help()`, `help(spawn)`} {
		if _, err := h.Eval(nil, "test", code); err != nil {
			t.Fatalf("%s: %v", code, err)
		}
	}
	got := out.String()
	for _, want := range []string{
		"sock.connect(fd, host, port) -> true | nil, msg, code",
		"sock: sockets on real kernel fds",
		"  sock.accept(fd) -> cfd, host, port",
		"sockplay 0.1.0: real sockets from Lua. Modules and globals:",
		"spawn(fn, ...) -> task",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("help output lacks %q:\n%s", want, got)
		}
	}
}
