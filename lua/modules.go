package lua

import (
	"regexp"
	"sort"
	"strings"
	"sync"

	glua "github.com/yuin/gopher-lua"
)

// module is one of sockplay's Lua modules. open runs under the interpreter
// lock when the host is built.
type module struct {
	name string
	doc  string
	open func(h *Host)
}

// allModules is every module, in the order they are opened. Each lives in
// a file of its own name.
func allModules() []module {
	return []module{
		{name: "base", doc: "print, io.write, os.exit and arg, through the host's streams", open: openBaseDocs},
		{name: "tasks", doc: "background tasks: spawn, sleep, tasks, wait, kill (globals)", open: openTasks},
		{name: "sock", doc: "sockets: open, bind, listen, accept, connect, read, write, sendto, recvfrom ...", open: openSock},
		{name: "dns", doc: "DNS: resolve as getaddrinfo does, query as dig does, serve a zone or a Lua handler", open: openDNS},
		{name: "fds", doc: "the descriptor table: fds(), fd(n) (globals)", open: openFds},
		{name: "time", doc: "clocks for timing: time.now(), time.monotonic()", open: openTime},
		{name: "fs", doc: "files: stat, lstat, realpath, list, read, write", open: openFs},
		{name: "proc", doc: "processes: proc.run a program with stdin, env and a time limit", open: openProc},
		{name: "lab", doc: "a lab of hosts: network namespaces joined by links with delay and loss, routers, NAT (root)", open: openLab},
		{name: "capture", doc: "packet capture: capture.open, packets as layers with fields and byte offsets, pcap files", open: openCaptureModule},
		{name: "trace", doc: "trace(true | false | fn): every socket call as an strace-style line", open: openTrace},
		{name: "socket", doc: "LuaSocket 3 (require \"socket\"): tcp, udp, select, dns ... on sockplay's sockets; Copas runs on it", open: openLuaSocket},
		{name: "mime", doc: "LuaSocket's MIME filters (require \"mime.core\"): b64, unb64, qp, unqp, wrp, qpwrp, eol, dot", open: openMime},
		{name: "require", doc: "require finds modules as lua5.1 does: LUA_PATH, LUA_CPATH, ./, the script's folder, the system's Lua 5.1 trees", open: openSearchPaths},
		{name: "help", doc: "help(), help(fn), help(\"module\")", open: openHelp},
	}
}

// fn is a Go function with its one-line documentation, registered together
// so that no function can exist without help.
type fn struct {
	name string
	f    glua.LGFunction
	doc  string
}

// quoteArgErrors wraps a Go function so that its argument errors read as
// Lua's own do, bad argument #1 to 'connect' (...): gopher-lua leaves the
// function name unquoted.
func quoteArgErrors(name string, f glua.LGFunction) glua.LGFunction {
	return func(L *glua.LState) int {
		defer func() {
			if r := recover(); r != nil {
				if ae, ok := r.(*glua.ApiError); ok {
					if s, ok := ae.Object.(glua.LString); ok {
						repl := "bad argument #$1 to '" + name + "' ("
						ae.Object = glua.LString(argErrorRE().ReplaceAllString(string(s), repl))
					}
				}
				panic(r)
			}
		}()
		return f(L)
	}
}

// argErrorRE is compiled when first needed: at start-up it would cost
// every run a tenth of a millisecond.
var argErrorRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`bad argument #(\d+) to (?:[\w.:?]+|\(anonymous\)|'[^']*') \(`)
})

// setGlobals registers functions as globals.
func (h *Host) setGlobals(fns []fn) {
	for _, f := range fns {
		lf := h.L.NewFunction(quoteArgErrors(shortName(f.name), f.f))
		h.docs[lf] = f.doc
		h.L.SetGlobal(f.name, lf)
	}
}

// newModule builds a module table, sets it as a global and preloads it for
// require.
func (h *Host) newModule(name, doc string, fns []fn) *glua.LTable {
	t := h.L.NewTable()
	h.addFuncs(t, fns)
	h.modDocs[name] = doc
	h.L.SetGlobal(name, t)
	h.L.PreloadModule(name, func(L *glua.LState) int {
		L.Push(t)
		return 1
	})
	return t
}

// library is a module that require finds and that is no global (socket,
// mime.core). It is built the first time require or help asks for it, so a
// run pays nothing at start-up for the modules it never loads.
type library struct {
	build func() *glua.LTable
	t     *glua.LTable
}

// newLibrary registers a library whose require returns the table build
// makes, under the interpreter lock, the first time it is asked for.
func (h *Host) newLibrary(name, doc string, build func() *glua.LTable) {
	h.addLibrary(name, doc, build)
	h.L.PreloadModule(name, func(L *glua.LState) int {
		L.Push(h.library(name))
		return 1
	})
}

// addLibrary is newLibrary for a module whose require does more than
// return the table (it installs its own preload function).
func (h *Host) addLibrary(name, doc string, build func() *glua.LTable) {
	h.modDocs[name] = doc
	h.libs[name] = &library{build: build}
}

// library returns a library's table, building it the first time.
func (h *Host) library(name string) *glua.LTable {
	l := h.libs[name]
	if l.t == nil {
		l.t = l.build()
	}
	return l.t
}

// moduleTable is a documented module's table: a global, or a library.
func (h *Host) moduleTable(name string) (*glua.LTable, bool) {
	if _, ok := h.libs[name]; ok {
		return h.library(name), true
	}
	t, ok := h.L.GetGlobal(name).(*glua.LTable)
	return t, ok
}

func (h *Host) addFuncs(t *glua.LTable, fns []fn) {
	for _, f := range fns {
		lf := h.L.NewFunction(quoteArgErrors(shortName(f.name), f.f))
		h.docs[lf] = f.doc
		t.RawSetString(f.name, lf)
	}
}

// Doc returns the help line of a registered function.
func (h *Host) Doc(f *glua.LFunction) (string, bool) {
	d, ok := h.docs[f]
	return d, ok
}

// Documented lists every registered function's name and whether it has a
// non-empty help line; a test keeps them all documented.
func (h *Host) Documented() map[string]bool {
	out := map[string]bool{}
	h.withLock(func() {
		visit := func(prefix string, t *glua.LTable) {
			t.ForEach(func(k, v glua.LValue) {
				if f, ok := v.(*glua.LFunction); ok && f.IsG {
					if _, builtin := h.builtin[f]; builtin {
						return
					}
					out[prefix+k.String()] = strings.TrimSpace(h.docs[f]) != ""
				}
			})
		}
		visit("", h.L.G.Global)
		for name := range h.modDocs {
			if t, ok := h.moduleTable(name); ok {
				visit(name+".", t)
			}
		}
	})
	return out
}

// moduleNames lists the documented modules.
func (h *Host) moduleNames() []string {
	var names []string
	for n := range h.modDocs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// shortName is the name an argument error uses: "connect", not "sock.connect".
func shortName(name string) string {
	if i := strings.LastIndexAny(name, ".:"); i >= 0 {
		return name[i+1:]
	}
	return name
}
