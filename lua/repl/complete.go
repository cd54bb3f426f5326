package repl

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Complete is a liner WordCompleter: it completes globals and keywords,
// module fields (sock.re), methods (s:re), dot commands (.wa), and file
// names after .load. The line's text before head and after tail stays.
func (r *REPL) Complete(line string, pos int) (head string, completions []string, tail string) {
	if pos > len(line) {
		pos = len(line)
	}
	before, tail := line[:pos], line[pos:]
	trimmed := strings.TrimLeft(before, " \t")
	if strings.HasPrefix(trimmed, ".") && !strings.ContainsAny(trimmed, " \t") && (len(trimmed) == 1 || isCommand(trimmed)) {
		indent := before[:len(before)-len(trimmed)]
		for _, c := range commands {
			if strings.HasPrefix(c.name, trimmed) {
				completions = append(completions, c.name)
			}
		}
		return indent, completions, tail
	}
	if rest, ok := strings.CutPrefix(trimmed, ".load "); ok {
		rest = strings.TrimLeft(rest, " ")
		return before[:len(before)-len(rest)], completeFile(rest), tail
	}

	start := len(before)
	for start > 0 && isWordByte(before[start-1]) {
		start--
	}
	word := before[start:]
	head = before[:start]
	if start > 0 && (before[start-1] == '"' || before[start-1] == '\'') {
		return head, nil, tail // inside a string
	}
	path, sep, partial := "", byte(0), word
	if i := strings.LastIndexAny(word, ".:"); i >= 0 {
		path, sep, partial = word[:i], word[i], word[i+1:]
		if path == "" || strings.ContainsAny(path, ":") || strings.Contains(path, "..") {
			return head, nil, tail
		}
	}
	for _, name := range r.h.Fields(path, sep) {
		if strings.HasPrefix(name, partial) {
			if path == "" {
				completions = append(completions, name)
			} else {
				completions = append(completions, path+string(sep)+name)
			}
		}
	}
	return head, completions, tail
}

func isWordByte(c byte) bool {
	return c == '_' || c == '.' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// completeFile lists the files and directories starting with prefix;
// directories end with a slash.
func completeFile(prefix string) []string {
	dir, base := filepath.Split(prefix)
	open := dir
	if open == "" {
		open = "."
	}
	ents, err := os.ReadDir(open)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, base) || (strings.HasPrefix(name, ".") && !strings.HasPrefix(base, ".")) {
			continue
		}
		if e.IsDir() {
			name += "/"
		}
		out = append(out, dir+name)
	}
	sort.Strings(out)
	return out
}
