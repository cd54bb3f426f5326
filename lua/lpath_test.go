package lua

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sockplay/internal/testpeer"
)

// evalString runs code on a fresh host and returns what it printed.
func evalString(t *testing.T, code string) string {
	t.Helper()
	h, out := newTestHost(t)
	defer h.Close()
	if _, err := h.Eval(nil, "test", code); err != nil {
		return out.String() + "error: " + errorMessage(err)
	}
	return out.String()
}

// require searches as the lua 5.1 command does: package.path and cpath
// from LUA_PATH and LUA_CPATH, ";;" for the default, the system's trees
// and LuaRocks' in the default.
func TestSearchPaths(t *testing.T) {
	t.Setenv("LUA_PATH", "")
	os.Unsetenv("LUA_PATH")
	os.Unsetenv("LUA_CPATH")
	t.Setenv("HOME", "/home/someone")
	got := evalString(t, `print(package.path) print(package.cpath)`)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 {
		t.Fatalf("output: %q", got)
	}
	path, cpath := lines[0], lines[1]
	for _, want := range []string{"./?.lua", "./?/init.lua", "/usr/local/share/lua/5.1/?.lua", "/usr/share/lua/5.1/?.lua",
		"/usr/share/lua/5.1/?/init.lua", "/home/someone/.luarocks/share/lua/5.1/?.lua"} {
		if !strings.Contains(path, want) {
			t.Errorf("package.path lacks %s: %s", want, path)
		}
	}
	if !strings.HasPrefix(path, "./?.lua;") {
		t.Errorf("package.path does not start with ./?.lua: %s", path)
	}
	for _, want := range []string{"./?.so", "/usr/local/lib/lua/5.1/?.so", "/usr/lib/lua/5.1/?.so", "/home/someone/.luarocks/lib/lua/5.1/?.so"} {
		if !strings.Contains(cpath, want) {
			t.Errorf("package.cpath lacks %s: %s", want, cpath)
		}
	}

	t.Setenv("LUA_PATH", "/mine/?.lua;;")
	t.Setenv("LUA_CPATH", "/mine/?.so")
	got = evalString(t, `print(package.path) print(package.cpath)`)
	lines = strings.Split(strings.TrimSpace(got), "\n")
	if !strings.HasPrefix(lines[0], "/mine/?.lua;./?.lua;") || !strings.Contains(lines[0], "/usr/share/lua/5.1/?.lua") {
		t.Errorf(";; is the default, after /mine: %s", lines[0])
	}
	if lines[1] != "/mine/?.so" {
		t.Errorf("LUA_CPATH without ;; replaces the default: %s", lines[1])
	}
}

// A module on LUA_PATH loads; a missing one fails with Lua 5.1's list of
// the places tried; a C module fails in one line, naming sockplay's
// built-in module where there is one.
func TestRequireFindsAndRefuses(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pkg"), 0o755)
	os.WriteFile(filepath.Join(dir, "greet.lua"), []byte(`local name = ...; return {hello = function() return "hello from " .. name end}`), 0o644)
	os.WriteFile(filepath.Join(dir, "pkg", "init.lua"), []byte(`return "pkg's init.lua"`), 0o644)
	os.WriteFile(filepath.Join(dir, "broken.lua"), []byte(`return {`), 0o644)
	os.WriteFile(filepath.Join(dir, "fails.lua"), []byte(`error("boom")`), 0o644)
	for _, so := range []string{"fake.so", "lfs.so"} {
		os.WriteFile(filepath.Join(dir, so), []byte("\x7fELF"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "root"), 0o755)
	os.WriteFile(filepath.Join(dir, "root.so"), []byte("\x7fELF"), 0o644)
	t.Setenv("LUA_PATH", dir+"/?.lua;"+dir+"/?/init.lua")
	t.Setenv("LUA_CPATH", dir+"/?.so")

	if got := evalString(t, `print(require("greet").hello()) print(require("greet") == require("greet")) print(require("pkg"))`); got != "hello from greet\ntrue\npkg's init.lua\n" {
		t.Errorf("require from LUA_PATH: %q", got)
	}
	want := "error: test:1: module 'nope.sub' not found:\n" +
		"\tno field package.preload['nope.sub']\n" +
		"\tno file '" + dir + "/nope/sub.lua'\n" +
		"\tno file '" + dir + "/nope/sub/init.lua'\n" +
		"\tno file '" + dir + "/nope/sub.so'\n" +
		"\tno file '" + dir + "/nope.so'"
	if got := evalString(t, `require("nope.sub")`); got != want {
		t.Errorf("a missing module:\n got %q\nwant %q", got, want)
	}
	if got := evalString(t, `require("fake")`); got != "error: test:1: module 'fake' is a C library ("+dir+"/fake.so) and sockplay cannot load C modules" {
		t.Errorf("a C module: %q", got)
	}
	if got := evalString(t, `require("lfs")`); !strings.HasSuffix(got, "sockplay cannot load C modules; sockplay's built-in fs does its work") {
		t.Errorf("a C module with a built-in stand-in: %q", got)
	}
	if got := evalString(t, `require("root.part")`); !strings.Contains(got, "module 'root.part' is a C library ("+dir+"/root.so)") {
		t.Errorf("a submodule of a C library: %q", got)
	}
	if got := evalString(t, `print(pcall(require, "broken"))`); !strings.Contains(got, "error loading module 'broken' from file '"+dir+"/broken.lua':\n\t") {
		t.Errorf("a module that does not compile: %q", got)
	}
	if got := evalString(t, `print(pcall(require, "fails")) print(pcall(require, "fails"))`); !strings.Contains(got, "fails.lua:1: boom") ||
		!strings.Contains(got, "loop or previous error loading module 'fails'") {
		t.Errorf("a module that fails as it runs, then again: %q", got)
	}
	// The built-in modules come first, whatever the paths hold.
	if got := evalString(t, `print(require("socket")._VERSION, type(require("mime.core").b64))`); got != "LuaSocket 3.0.0\tfunction\n" {
		t.Errorf("built-in modules: %q", got)
	}
}

// With Debian's lua-socket installed, its C parts are found and refused by
// name, its Lua parts load on sockplay's cores.
func TestRequireDebianLuaSocket(t *testing.T) {
	testpeer.NeedFile(t, debianSocket, "lua-socket")
	os.Unsetenv("LUA_PATH")
	os.Unsetenv("LUA_CPATH")
	got := evalString(t, `
print(pcall(require, "socket.unix"))
local http = require("socket.http")
print(type(http.request), require("socket.url").escape("a b"), type(require("ltn12").pump.all), type(require("mime").encode))`)
	lines := strings.Split(got, "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "module 'socket.unix' is a C library (") || !strings.Contains(lines[0], "socket/unix.so) and sockplay cannot load C modules") {
		t.Errorf("socket.unix: %q", got)
	}
	if len(lines) < 2 || lines[1] != "function\ta%20b\tfunction\tfunction" {
		t.Errorf("Debian's Lua modules: %q", got)
	}
}

// A script's own folder and its lib/ are searched before the rest.
func TestRequireBesideTheScript(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "lib"), 0o755)
	os.WriteFile(filepath.Join(dir, "lib", "helper.lua"), []byte(`return "helper in lib/"`), 0o644)
	os.WriteFile(filepath.Join(dir, "sibling.lua"), []byte(`return "sibling"`), 0o644)
	script := filepath.Join(dir, "main.lua")
	os.WriteFile(script, []byte(`print(require("helper"), require("sibling"))`), 0o644)
	t.Setenv("LUA_PATH", "/elsewhere/?.lua")
	if got := runScript(t, script); got != "helper in lib/\tsibling\n" {
		t.Errorf("modules beside the script: %q", got)
	}
}
