package lua

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	glua "github.com/yuin/gopher-lua"
)

// How much of a value the REPL shows.
const (
	prettyWidth    = 78   // a table fits on one line up to this width
	prettyMaxItems = 50   // entries shown per table before "... (N more)"
	prettyMaxDepth = 6    // nesting shown before {...}
	prettyMaxStr   = 4096 // a top-level string is cut after this many bytes
	prettyMaxInner = 200  // a string inside a table is cut sooner
)

// Pretty renders values the way the REPL shows results: tab-separated,
// strings quoted with Lua escapes (so "\r\n" is visible and the text can be
// typed back), tables expanded (nested, keys sorted, cycles marked, long
// ones cut with a count), and anything with a __tostring metamethod
// (sockets, tasks, the fds() table) in its own words.
//
// A __tostring is Lua code, so the rendering runs as a foreground task
// under ctx: Ctrl-C stops a metamethod that loops, and one that fails shows
// its error in place of the value.
func (h *Host) Pretty(ctx context.Context, vals []glua.LValue) string {
	if len(vals) == 0 {
		return ""
	}
	var out string
	h.lock(nil)
	fn := h.L.NewFunction(func(L *glua.LState) int {
		p := &prettyPrinter{h: h, L: L, path: map[*glua.LTable]bool{}}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = p.top(v)
		}
		out = strings.Join(parts, "\t")
		return 0
	})
	t := h.startHelper(ctx, fn, "print", true)
	h.unlock()
	<-t.done
	if t.err != nil {
		return "(cannot print: " + errorMessage(t.err) + ")"
	}
	return out
}

type prettyPrinter struct {
	h    *Host
	L    *glua.LState
	path map[*glua.LTable]bool // tables being printed: a cycle leads back to one
}

func (p *prettyPrinter) top(v glua.LValue) string {
	if s, ok := v.(glua.LString); ok {
		return quoteLua(string(s), prettyMaxStr)
	}
	return p.value(v, 0)
}

// metaString calls v's __tostring, if it has one.
func (p *prettyPrinter) metaString(v glua.LValue) (string, bool) {
	mt, ok := p.L.GetMetaField(v, "__tostring").(*glua.LFunction)
	if !ok {
		return "", false
	}
	p.L.Push(mt)
	p.L.Push(v)
	if err := p.L.PCall(1, 1, nil); err != nil {
		// A cancelled task must stop here, not print on.
		if ctx := p.L.Context(); ctx != nil && ctx.Err() != nil {
			p.L.RaiseError("interrupted")
		}
		return "<__tostring failed: " + errorMessage(err) + ">", true
	}
	s := p.L.Get(-1)
	p.L.Pop(1)
	if str, ok := s.(glua.LString); ok {
		return string(str), true
	}
	return p.value(s, prettyMaxDepth), true
}

func (p *prettyPrinter) value(v glua.LValue, depth int) string {
	if o := lsArgValue(v); o != nil && o.s != nil && !o.s.Closed() {
		// A LuaSocket object prints as LuaSocket prints it, and the REPL
		// adds what sockplay knows of its socket.
		return lsString(o) + " " + SocketString(o.s)
	}
	if s, ok := p.metaString(v); ok {
		return s
	}
	switch v := v.(type) {
	case glua.LString:
		return quoteLua(string(v), prettyMaxInner)
	case glua.LNumber:
		return numberString(v)
	case *glua.LFunction:
		return p.functionString(v)
	case *glua.LTable:
		return p.table(v, depth)
	case *glua.LUserData:
		return "userdata"
	}
	return v.String()
}

func numberString(n glua.LNumber) string {
	f := float64(n)
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case f != f:
		return "nan"
	}
	return n.String()
}

// functionString names a function: the registered name of one of
// sockplay's, where a Lua function was defined, or builtin.
func (p *prettyPrinter) functionString(f *glua.LFunction) string {
	if d, ok := p.h.docs[f]; ok {
		if i := strings.IndexAny(d, "( "); i > 0 {
			return "function: " + d[:i]
		}
	}
	if f.Proto != nil {
		return fmt.Sprintf("function: %s:%d", strings.TrimPrefix(f.Proto.SourceName, "@"), f.Proto.LineDefined)
	}
	return "function: builtin"
}

type prettyEntry struct {
	key   glua.LValue
	value glua.LValue
}

func (p *prettyPrinter) table(t *glua.LTable, depth int) string {
	if p.path[t] {
		return "<cycle>"
	}
	if depth >= prettyMaxDepth {
		return "{...}"
	}
	p.path[t] = true
	defer delete(p.path, t)

	// The array part first, in order, without keys; then the other keys
	// sorted: numbers, strings, then the rest by type.
	n := 0
	for t.RawGetInt(n+1) != glua.LNil {
		n++
	}
	var rest []prettyEntry
	t.ForEach(func(k, v glua.LValue) {
		if num, ok := k.(glua.LNumber); ok {
			if f := float64(num); f == math.Trunc(f) && f >= 1 && f <= float64(n) {
				return
			}
		}
		rest = append(rest, prettyEntry{k, v})
	})
	sort.SliceStable(rest, func(i, j int) bool { return keyLess(rest[i].key, rest[j].key) })

	total := n + len(rest)
	var items []string
	for i := 1; i <= n && len(items) < prettyMaxItems; i++ {
		items = append(items, p.value(t.RawGetInt(i), depth+1))
	}
	for _, e := range rest {
		if len(items) >= prettyMaxItems {
			break
		}
		items = append(items, p.keyString(e.key, depth)+" = "+p.value(e.value, depth+1))
	}
	if total > len(items) {
		items = append(items, fmt.Sprintf("... (%d more)", total-len(items)))
	}
	if len(items) == 0 {
		return "{}"
	}
	one := "{" + strings.Join(items, ", ") + "}"
	if len(one)+2*depth <= prettyWidth && !strings.Contains(one, "\n") {
		return one
	}
	// One entry a line, indented; nested tables indent their own lines
	// through the parent. Short plain items (a list of numbers) share lines.
	const ind = "  "
	var b strings.Builder
	b.WriteString("{\n")
	line := ""
	flush := func() {
		if line != "" {
			b.WriteString(ind + line + "\n")
			line = ""
		}
	}
	for i, it := range items {
		sep := ","
		if i == len(items)-1 {
			sep = ""
		}
		short := len(it) <= 16 && !strings.Contains(it, "\n") && !strings.Contains(it, " = ")
		if !short {
			flush()
			b.WriteString(ind + strings.ReplaceAll(it, "\n", "\n"+ind) + sep + "\n")
			continue
		}
		if line != "" && len(ind)+2*depth+len(line)+1+len(it)+len(sep) > prettyWidth {
			flush()
		}
		if line != "" {
			line += " "
		}
		line += it + sep
	}
	flush()
	b.WriteString("}")
	return b.String()
}

func (p *prettyPrinter) keyString(k glua.LValue, depth int) string {
	if s, ok := k.(glua.LString); ok && isIdentifier(string(s)) {
		return string(s)
	}
	if s, ok := k.(glua.LString); ok {
		return "[" + quoteLua(string(s), prettyMaxInner) + "]"
	}
	return "[" + p.value(k, depth+1) + "]"
}

func keyRank(k glua.LValue) int {
	switch k.(type) {
	case glua.LNumber:
		return 0
	case glua.LString:
		return 1
	case glua.LBool:
		return 2
	}
	return 3
}

func keyLess(a, b glua.LValue) bool {
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return ra < rb
	}
	switch a := a.(type) {
	case glua.LNumber:
		return a < b.(glua.LNumber)
	case glua.LString:
		return a < b.(glua.LString)
	case glua.LBool:
		return !bool(a) && bool(b.(glua.LBool))
	}
	return a.String() < b.String()
}

var luaKeywords = map[string]bool{
	"and": true, "break": true, "do": true, "else": true, "elseif": true, "end": true,
	"false": true, "for": true, "function": true, "if": true, "in": true, "local": true,
	"nil": true, "not": true, "or": true, "repeat": true, "return": true, "then": true,
	"true": true, "until": true, "while": true,
}

// LuaKeywords lists Lua's reserved words (for completion).
func LuaKeywords() []string {
	out := make([]string, 0, len(luaKeywords))
	for k := range luaKeywords {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func isIdentifier(s string) bool {
	if s == "" || luaKeywords[s] {
		return false
	}
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// quoteLua quotes s as a Lua string literal that reads back to the same
// bytes: control bytes and invalid UTF-8 as \ddd, printable UTF-8 as is.
// Past max bytes it is cut, and the full length is said.
func quoteLua(s string, max int) string {
	cut := ""
	if len(s) > max {
		cut = fmt.Sprintf("...(%d bytes)", len(s))
		s = s[:max]
		// Do not split a UTF-8 sequence (binary data stays as it is).
		for i := 0; i < 3 && len(s) > 0 && !utf8.FullRuneInString(s[lastRuneStart(s):]); i++ {
			s = s[:len(s)-1]
		}
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\v':
			b.WriteString(`\v`)
		default:
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
				break
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			if c >= 0x80 && r != utf8.RuneError && strconv.IsPrint(r) {
				b.WriteString(s[i : i+size])
				i += size
				continue
			}
			// A digit after \ddd would be read as part of it: pad to 3.
			if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				fmt.Fprintf(&b, `\%03d`, c)
			} else {
				fmt.Fprintf(&b, `\%d`, c)
			}
		}
		i++
	}
	b.WriteByte('"')
	return b.String() + cut
}

// lastRuneStart is the index where the last (possibly partial) UTF-8
// sequence of s starts.
func lastRuneStart(s string) int {
	i := len(s) - 1
	for i > 0 && len(s)-i < 4 && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}
