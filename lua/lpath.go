package lua

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// require finds modules as the lua 5.1 command does: package.path and
// package.cpath come from LUA_PATH and LUA_CPATH, where ";;" stands for the
// default, and the default covers ./, the system's Lua 5.1 trees and
// LuaRocks' user tree, so a Debian lua-socket or a LuaRocks install is
// found. The searchers are Lua 5.1's (preload, Lua files, C libraries, a
// C library of the module's root), and so is the message when none finds
// the module. sockplay cannot load C libraries: a module found as one
// fails in one line, naming sockplay's built-in module where there is one.

// luaTrees are the system's Lua 5.1 module trees, as Debian's lua5.1
// searches them, then LuaRocks' tree in the user's home.
func luaPathDefault(home string) string {
	dirs := []string{"./?.lua", "./?/init.lua"}
	for _, d := range []string{"/usr/local/share/lua/5.1", "/usr/local/lib/lua/5.1", "/usr/share/lua/5.1"} {
		dirs = append(dirs, d+"/?.lua", d+"/?/init.lua")
	}
	if home != "" {
		d := filepath.Join(home, ".luarocks/share/lua/5.1")
		dirs = append(dirs, d+"/?.lua", d+"/?/init.lua")
	}
	return strings.Join(dirs, ";")
}

func luaCPathDefault(home string) string {
	dirs := []string{"./?.so", "/usr/local/lib/lua/5.1/?.so"}
	if triple := multiarch(); triple != "" {
		dirs = append(dirs, "/usr/lib/"+triple+"/lua/5.1/?.so")
	}
	dirs = append(dirs, "/usr/lib/lua/5.1/?.so", "/usr/local/lib/lua/5.1/loadall.so")
	if home != "" {
		dirs = append(dirs, filepath.Join(home, ".luarocks/lib/lua/5.1")+"/?.so")
	}
	return strings.Join(dirs, ";")
}

// multiarch is Debian's name for this machine's library directory.
func multiarch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64-linux-gnu"
	case "arm64":
		return "aarch64-linux-gnu"
	case "386":
		return "i386-linux-gnu"
	case "arm":
		return "arm-linux-gnueabihf"
	case "riscv64":
		return "riscv64-linux-gnu"
	}
	return ""
}

// searchPath is LUA_PATH's rule: the variable's value, with ";;" standing
// for the default; the default when it is unset.
func searchPath(env, def string) string {
	v, ok := os.LookupEnv(env)
	if !ok {
		return def
	}
	v = strings.ReplaceAll(v, ";;", ";"+def+";")
	return strings.Trim(v, ";")
}

// builtinFor names sockplay's module that stands in for a C module.
var builtinFor = map[string]string{
	"socket.core": "socket.core (require \"socket\")",
	"mime.core":   "mime.core",
	"lfs":         "fs",
	"posix":       "proc and fs",
}

func openSearchPaths(h *Host) {
	home, _ := os.UserHomeDir()
	pkg := h.L.GetGlobal("package").(*glua.LTable)
	pkg.RawSetString("path", glua.LString(searchPath("LUA_PATH", luaPathDefault(home))))
	pkg.RawSetString("cpath", glua.LString(searchPath("LUA_CPATH", luaCPathDefault(home))))
	// The loaders table is the one require reads: change it in place.
	loaders := pkg.RawGetString("loaders").(*glua.LTable)
	preload := loaders.RawGetInt(1)
	for i := loaders.Len(); i >= 1; i-- {
		loaders.RawSetInt(i, glua.LNil)
	}
	loaders.Append(preload)
	for _, f := range []glua.LGFunction{h.searchLua, h.searchC, h.searchCRoot} {
		lf := h.L.NewFunction(f)
		h.builtin[lf] = struct{}{} // package.loaders entries, as in Lua
		loaders.Append(lf)
	}
	h.setGlobals([]fn{
		{"require", h.luaRequire, "require(name) -> module  -- load a module once: package.preload, then package.path (LUA_PATH), then package.cpath (C modules cannot load in sockplay)"},
	})
}

// findFile looks for name along a search path, as package.searchpath
// will: "." in the name is a directory separator. It returns the file, or
// the list of files tried in Lua's words.
func findFile(name, path string) (string, string) {
	name = strings.ReplaceAll(name, ".", "/")
	var tried strings.Builder
	for _, tmpl := range strings.Split(path, ";") {
		if tmpl == "" {
			continue
		}
		file := strings.ReplaceAll(tmpl, "?", name)
		if st, err := os.Stat(file); err == nil && !st.IsDir() {
			return file, ""
		}
		fmt.Fprintf(&tried, "\n\tno file '%s'", file)
	}
	return "", tried.String()
}

func packageField(L *glua.LState, field string) string {
	pkg, _ := L.GetGlobal("package").(*glua.LTable)
	if pkg == nil {
		L.RaiseError("package is not a table")
	}
	s, ok := pkg.RawGetString(field).(glua.LString)
	if !ok {
		L.RaiseError("'package.%s' must be a string", field)
	}
	return string(s)
}

func (h *Host) searchLua(L *glua.LState) int {
	name := L.CheckString(1)
	file, tried := findFile(name, packageField(L, "path"))
	if file == "" {
		L.Push(glua.LString(tried))
		return 1
	}
	fn, err := loadLuaFile(L, file)
	if err != nil {
		L.RaiseError("error loading module '%s' from file '%s':\n\t%s", name, file, errorMessage(err))
	}
	L.Push(fn)
	return 1
}

// cModuleError is the one line a C module found on package.cpath gets.
func cModuleError(L *glua.LState, name, file string) {
	msg := fmt.Sprintf("module '%s' is a C library (%s) and sockplay cannot load C modules", name, file)
	if b := builtinFor[name]; b != "" {
		msg += "; sockplay's built-in " + b + " does its work"
	}
	L.RaiseError("%s", msg)
}

func (h *Host) searchC(L *glua.LState) int {
	name := L.CheckString(1)
	return findCModule(L, name, name)
}

// searchCRoot looks for a.b.c's root a as a C library holding all of a's
// submodules.
func (h *Host) searchCRoot(L *glua.LState) int {
	name := L.CheckString(1)
	root, _, ok := strings.Cut(name, ".")
	if !ok {
		return 0
	}
	return findCModule(L, name, root)
}

// findCModule looks for file along package.cpath: not found, it returns
// the files tried; found, it fails, as sockplay cannot load it.
func findCModule(L *glua.LState, name, file string) int {
	path, tried := findFile(file, packageField(L, "cpath"))
	if path == "" {
		L.Push(glua.LString(tried))
		return 1
	}
	cModuleError(L, name, path)
	return 0
}

// requireSentinel marks a module being loaded, to catch a loop.
var requireSentinel = &glua.LUserData{}

// luaRequire is Lua 5.1's require: package.loaded, then each of
// package.loaders in turn.
func (h *Host) luaRequire(L *glua.LState) int {
	name := L.CheckString(1)
	pkg, _ := L.GetGlobal("package").(*glua.LTable)
	if pkg == nil {
		L.RaiseError("package is not a table")
	}
	loaded, ok := pkg.RawGetString("loaded").(*glua.LTable)
	if !ok {
		L.RaiseError("'package.loaded' must be a table")
	}
	if v := loaded.RawGetString(name); glua.LVAsBool(v) {
		if v == requireSentinel {
			L.RaiseError("loop or previous error loading module '%s'", name)
		}
		L.Push(v)
		return 1
	}
	loaders, ok := pkg.RawGetString("loaders").(*glua.LTable)
	if !ok {
		L.RaiseError("'package.loaders' must be a table")
	}
	var msg strings.Builder
	var loader glua.LValue
	for i := 1; ; i++ {
		f := loaders.RawGetInt(i)
		if f == glua.LNil {
			L.RaiseError("module '%s' not found:%s", name, msg.String())
		}
		L.Push(f)
		L.Push(glua.LString(name))
		L.Call(1, 1)
		r := L.Get(-1)
		L.Pop(1)
		if fn, ok := r.(*glua.LFunction); ok {
			loader = fn
			break
		}
		if s, ok := r.(glua.LString); ok {
			if !strings.HasPrefix(string(s), "\n\t") {
				msg.WriteString("\n\t") // gopher-lua's preload searcher leaves it out
			}
			msg.WriteString(string(s))
		}
	}
	loaded.RawSetString(name, requireSentinel)
	L.Push(loader)
	L.Push(glua.LString(name))
	L.Call(1, 1)
	r := L.Get(-1)
	L.Pop(1)
	if r != glua.LNil {
		loaded.RawSetString(name, r)
	}
	if loaded.RawGetString(name) == requireSentinel {
		loaded.RawSetString(name, glua.LTrue)
	}
	L.Push(loaded.RawGetString(name))
	return 1
}
