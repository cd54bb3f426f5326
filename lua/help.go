package lua

import (
	"fmt"
	"sort"
	"strings"

	glua "github.com/yuin/gopher-lua"
)

func openHelp(h *Host) {
	h.setGlobals([]fn{
		{"help", h.luaHelp, "help([fn | \"module\"])  -- what a function does, or the functions of a module; help() lists the modules"},
	})
}

func (h *Host) luaHelp(L *glua.LState) int {
	h.out.WriteString(h.HelpText(L, L.Get(1)) + "\n")
	return 0
}

// HelpText is what help(v) prints.
func (h *Host) HelpText(L *glua.LState, v glua.LValue) string {
	switch v := v.(type) {
	case *glua.LNilType:
		var b strings.Builder
		b.WriteString("sockplay " + Version + ": real sockets from Lua. Modules and globals:\n")
		for _, m := range allModules() {
			fmt.Fprintf(&b, "  %-6s %s\n", m.name, m.doc)
		}
		b.WriteString("help(\"sock\") lists a module's functions; help(sock.connect) shows one.")
		return b.String()
	case *glua.LFunction:
		if d, ok := h.docs[v]; ok {
			return d
		}
		if _, ok := h.builtin[v]; ok {
			return "a Lua standard library function (see the Lua 5.1 manual)"
		}
		if v.Proto != nil {
			return fmt.Sprintf("a Lua function defined at %s:%d", v.Proto.SourceName, v.Proto.LineDefined)
		}
		return "no help for this function"
	case glua.LString:
		name := string(v)
		if t, ok := h.moduleTable(name); ok && h.modDocs[name] != "" {
			return h.moduleHelp(name, t)
		}
		for _, m := range allModules() {
			if m.name == name {
				return m.name + ": " + m.doc
			}
		}
		if f, ok := L.GetGlobal(name).(*glua.LFunction); ok {
			return h.HelpText(L, f)
		}
		return fmt.Sprintf("no module or function named %q; help() lists them", name)
	case *glua.LTable:
		for _, name := range h.moduleNames() {
			if t, ok := h.moduleTable(name); ok && t == v {
				return h.moduleHelp(name, v)
			}
		}
		return "a table; help(\"module\") lists a module's functions"
	case *glua.LUserData:
		if _, ok := v.Value.(*sockObj); ok {
			return "a socket object: its methods are the sock module's functions with the socket in place of the fd (s:read(), s:write(data) ...); s.fd is its fd. help(\"sock\") lists them."
		}
		if o, ok := v.Value.(*lsSocket); ok {
			return fmt.Sprintf("a LuaSocket %s object: its methods are LuaSocket's (help(obj.receive) shows one); help(\"socket\") lists the module", o.class)
		}
		if _, ok := v.Value.(*captureObj); ok {
			return "a capture: cap:next(), cap:packets(), cap:recent(), cap:connection(fd), cap:stats(), cap:write_pcap(path), cap:stop(); cap.fd, cap.iface, cap.filter. help(\"capture\") lists them."
		}
		if _, ok := v.Value.(*Task); ok {
			return "a task: wait(t) gets its results, kill(t) ends it; t.id, t.name, t.state"
		}
	}
	return fmt.Sprintf("a %s value", v.Type())
}

func (h *Host) moduleHelp(name string, t *glua.LTable) string {
	var lines []string
	add := func(t *glua.LTable) {
		t.ForEach(func(k, v glua.LValue) {
			if f, ok := v.(*glua.LFunction); ok {
				if d := h.docs[f]; d != "" {
					lines = append(lines, "  "+d)
				}
			}
		})
	}
	add(t)
	if m := h.modMethods[name]; m != nil {
		add(m) // the methods of the module's objects
	}
	sort.Strings(lines)
	return name + ": " + h.modDocs[name] + "\n" + strings.Join(lines, "\n")
}
