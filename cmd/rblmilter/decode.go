package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The config file is decoded into plain TOML values (map[string]any) and
// walked key by key instead of being unmarshalled into typed structs: only
// then can every problem name its full key path with array indexes
// ("list[2].weight", which toml.MetaData cannot express for arrays of
// tables), say what was wrong with the value in the admin's words ("is not
// a number" instead of "incompatible types"), and be collected instead of
// stopping at the first.

// problems collects every configuration error, in the order found.
type problems struct {
	list []string
	// keys records every key path the schema asked for, with indexes
	// replaced by "[]", so tests can check that the documentation covers
	// every key.
	keys map[string]bool
}

func (p *problems) addf(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	p.list = append(p.list, msg)
}

// table is one TOML table being decoded; it remembers which keys the
// schema asked for so that the rest can be reported as unknown.
type table struct {
	p    *problems
	path string // "" for the root, "cache", "list[0]"
	// schemaPath is path without indexes ("list[]"), for problems.keys.
	schemaPath string
	values     map[string]any
	asked      map[string]bool
}

func newTable(p *problems, path, schemaPath string, values map[string]any) *table {
	return &table{p: p, path: path, schemaPath: schemaPath, values: values, asked: map[string]bool{}}
}

// keyPath is the full path of key name in this table.
func (t *table) keyPath(name string) string {
	if t.path == "" {
		return name
	}
	return t.path + "." + name
}

// get marks name as known and returns its value, if set.
func (t *table) get(name string) (any, bool) {
	t.asked[name] = true
	if t.p.keys != nil {
		k := name
		if t.schemaPath != "" {
			k = t.schemaPath + "." + name
		}
		t.p.keys[k] = true
	}
	v, ok := t.values[name]
	return v, ok
}

// has reports whether name is set, marking it as known.
func (t *table) has(name string) bool {
	_, ok := t.get(name)
	return ok
}

func (t *table) str(name, def string) string {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		t.p.addf(t.keyPath(name), "%s is not a string", show(v))
		return def
	}
	return s
}

func (t *table) integer(name string, def int) int {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	n, err := asInt(v)
	if err != nil {
		t.p.addf(t.keyPath(name), "%s", err)
		return def
	}
	return n
}

func asInt(v any) (int, error) {
	switch n := v.(type) {
	case int64:
		return int(n), nil
	case float64:
		if n == math.Trunc(n) {
			// 3e5 or 300000.0: TOML makes a float of them.
			return 0, fmt.Errorf("%s must be written as a whole number, without a decimal point or exponent", show(v))
		}
		return 0, fmt.Errorf("%s is not a whole number", show(v))
	default:
		return 0, fmt.Errorf("%s is not a number", show(v))
	}
}

func (t *table) boolean(name string, def bool) bool {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		t.p.addf(t.keyPath(name), "%s is not true or false", show(v))
		return def
	}
	return b
}

// duration reads a Go duration string ("5s", "1m30s") that must be at
// least min.
func (t *table) duration(name string, def, min time.Duration) time.Duration {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	s, isString := v.(string)
	d, err := time.ParseDuration(s)
	if !isString || err != nil {
		t.p.addf(t.keyPath(name), "%s is not a duration (like \"5s\")", show(v))
		return def
	}
	if d < min {
		if min == 0 {
			t.p.addf(t.keyPath(name), "%s is negative", show(v))
		} else {
			t.p.addf(t.keyPath(name), "%s must be at least %s", show(v), min)
		}
		return def
	}
	return d
}

// enum reads a string that must be one of allowed.
func (t *table) enum(name, def string, allowed ...string) string {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	s, _ := v.(string)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	t.p.addf(t.keyPath(name), "%s is not one of %s", show(v), strings.Join(allowed, ", "))
	return def
}

// enumOf reads key name as the word of one of values (def when the key
// is absent), each value's word being word(value): the type's own words,
// written once where the type is.
func enumOf[V comparable](t *table, name string, def V, word func(V) string, values ...V) V {
	words := make([]string, len(values))
	for i, v := range values {
		words[i] = word(v)
	}
	w := t.enum(name, word(def), words...)
	for i, v := range values {
		if words[i] == w {
			return v
		}
	}
	return def
}

// strings reads a list of strings; defined reports whether the key was
// set at all (so that an explicit empty list can differ from absence).
// Each element is passed to each, which returns the problem with it.
func (t *table) strings(name string, each func(i int, s string) error) (out []string, defined bool) {
	v, ok := t.get(name)
	if !ok {
		return nil, false
	}
	items, ok := v.([]any)
	if !ok {
		t.p.addf(t.keyPath(name), "%s is not a list (like [%s])", show(v), show(v))
		return nil, true
	}
	for i, item := range items {
		path := fmt.Sprintf("%s[%d]", t.keyPath(name), i)
		s, ok := item.(string)
		if !ok {
			t.p.addf(path, "%s is not a string", show(item))
			continue
		}
		if each != nil {
			if err := each(i, s); err != nil {
				t.p.addf(path, "%s", err)
				continue
			}
		}
		out = append(out, s)
	}
	return out, true
}

// sub returns the table under name, or an empty one when it is absent.
func (t *table) sub(name string) *table {
	path := t.keyPath(name)
	schema := name
	if t.schemaPath != "" {
		schema = t.schemaPath + "." + name
	}
	v, ok := t.get(name)
	m, isTable := v.(map[string]any)
	if ok && !isTable {
		t.p.addf(path, "%s is not a table (like [%s])", show(v), path)
	}
	return newTable(t.p, path, schema, m)
}

// tables returns the array of tables under name ([[name]]).
func (t *table) tables(name string) []*table {
	path := t.keyPath(name)
	schema := name + "[]"
	if t.schemaPath != "" {
		schema = t.schemaPath + "." + schema
	}
	v, ok := t.get(name)
	if !ok {
		// Still register the schema keys for documentation checks.
		return nil
	}
	var items []any
	switch x := v.(type) {
	case []map[string]any:
		for _, m := range x {
			items = append(items, m)
		}
	case []any:
		items = x
	default:
		t.p.addf(path, "%s is not a list of tables (like [[%s]])", show(v), path)
		return nil
	}
	var out []*table
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		m, ok := item.(map[string]any)
		if !ok {
			t.p.addf(p, "%s is not a table (like [[%s]])", show(item), path)
			continue
		}
		out = append(out, newTable(t.p, p, schema, m))
	}
	return out
}

// finish reports every key of the table that the schema did not ask for.
func (t *table) finish() {
	var unknown []string
	for k := range t.values {
		if !t.asked[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		msg := "unknown key"
		if s := closest(k, t.asked); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		t.p.addf(t.keyPath(k), "%s", msg)
	}
}

// closest returns the known key nearest to k when it looks like a typo.
func closest(k string, known map[string]bool) string {
	best, bestDist := "", 3
	var names []string
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if d := editDistance(k, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// show renders a TOML value the way the admin wrote it.
func show(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []map[string]any, map[string]any:
		return "a table"
	default:
		return fmt.Sprint(v)
	}
}
