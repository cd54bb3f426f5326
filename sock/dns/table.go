package dns

import (
	"fmt"
	"sort"
	"strconv"
)

// Table is a script's table in plain Go values: a list part and named
// fields. It is how messages and records go to a script (MessageTable,
// RecordTable) and come back from one (a zone's records, a handler's
// reply). A binding converts it to and from its language's tables without
// knowing anything of DNS.
//
// Values are string, a number (float64, or an integer type in tables made
// here), bool, *Table, or Foreign for anything a table field cannot hold.
type Table struct {
	List   []any          // t[1], t[2], ...
	Fields map[string]any // t.name
	// Other names the keys that are neither strings nor in the list (a
	// number past a hole, a boolean ...), rendered, for error messages.
	Other []string
	// Kind says what the table is when it has a printed form: KindResult
	// (a query's answer, printed as dig prints it) or KindRecord (one
	// record, printed as a zone-file line). "" for other tables.
	Kind string
}

// The kinds of table that have a printed form (see Table.Kind).
const (
	KindResult = "dns.result"
	KindRecord = "dns.rr"
)

// Foreign is a value a table may hold that no DNS field can: a function,
// say. It names its type for error messages.
type Foreign string

// NewTable returns an empty table of the given kind.
func NewTable(kind string) *Table { return &Table{Fields: map[string]any{}, Kind: kind} }

// Get returns a named field, nil when absent.
func (t *Table) Get(k string) any {
	if t == nil {
		return nil
	}
	return t.Fields[k]
}

func (t *Table) set(k string, v any) { t.Fields[k] = v }

// fieldNames are the names of the table's fields, sorted: an error names
// the same one each time.
func (t *Table) fieldNames() []string {
	out := make([]string, 0, len(t.Fields))
	for k := range t.Fields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// otherKeys are the keys that are not field names, rendered: the list's
// indices, then the odd keys.
func (t *Table) otherKeys() []string {
	var out []string
	for i := range t.List {
		out = append(out, strconv.Itoa(i+1))
	}
	return append(out, t.Other...)
}

// list makes a list table.
func list(items ...any) *Table { return &Table{List: items, Fields: map[string]any{}} }

func stringList(items []string) *Table {
	l := make([]any, len(items))
	for i, s := range items {
		l[i] = s
	}
	return list(l...)
}

// number reads a numeric value of any of the types a Table may hold.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint8:
		return float64(n), true
	}
	return 0, false
}

// typeOf names a value's type the way a script's author knows it.
func typeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case string:
		return "string"
	case bool:
		return "boolean"
	case *Table:
		return "table"
	case Foreign:
		return string(v)
	}
	if _, ok := number(v); ok {
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// text renders a value that stands for text: strings, and numbers as a
// script prints them.
func text(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	if n, ok := number(v); ok {
		return strconv.FormatFloat(n, 'f', -1, 64), true
	}
	return "", false
}

func truthy(v any) bool {
	b, ok := v.(bool)
	return v != nil && (!ok || b)
}
