//go:build integration && linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// contribPath is the path of a file below contrib/ from the test's
// directory.
func contribPath(rel string) string { return filepath.Join("..", "contrib", filepath.FromSlash(rel)) }

func readContrib(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(contribPath(rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// postfixSnippet is contrib/postfix/main.cf read the way Postfix reads
// main.cf: parameter lines, with continuation lines (starting with
// whitespace) joined, comments left out.
type postfixSnippet struct {
	// Active are the "name = value" settings in order.
	Active [][2]string
	// Examples are the commented-out settings ("#name = value").
	Examples [][2]string
}

func readPostfixSnippet(t testing.TB) postfixSnippet {
	t.Helper()
	var s postfixSnippet
	var last *[][2]string
	for _, line := range strings.Split(readContrib(t, "postfix/main.cf"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			last = nil
		case line[0] == ' ' || line[0] == '\t':
			if last != nil && len(*last) > 0 {
				(*last)[len(*last)-1][1] += " " + strings.TrimSpace(line)
			}
		case line[0] == '#':
			name, value, ok := strings.Cut(line[1:], "=")
			if ok && !strings.ContainsAny(strings.TrimSpace(name), " \t") && strings.TrimSpace(name) != "" {
				s.Examples = append(s.Examples, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
			}
			last = nil
		default:
			name, value, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("contrib/postfix/main.cf: not a parameter line: %q", line)
			}
			s.Active = append(s.Active, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
			last = &s.Active
		}
	}
	return s
}

// get returns the active value of name.
func (s postfixSnippet) get(t testing.TB, name string) string {
	t.Helper()
	for _, kv := range s.Active {
		if kv[0] == name {
			return kv[1]
		}
	}
	t.Fatalf("contrib/postfix/main.cf sets no %s", name)
	return ""
}

// example returns the first commented-out value of name containing part.
func (s postfixSnippet) example(t testing.TB, name, part string) string {
	t.Helper()
	for _, kv := range s.Examples {
		if kv[0] == name && strings.Contains(kv[1], part) {
			return kv[1]
		}
	}
	t.Fatalf("contrib/postfix/main.cf has no example %s line containing %q", name, part)
	return ""
}

// milters is contrib's smtpd_milters value with the milter at port
// instead of 8890.
func (s postfixSnippet) milters(t testing.TB, port int) string {
	t.Helper()
	return replaceOnce(t, "contrib smtpd_milters", s.get(t, "smtpd_milters"), "inet:127.0.0.1:8890", fmt.Sprintf("inet:127.0.0.1:%d", port))
}

// mainLines are the active settings for main.cf exactly as contrib ships
// them, with the milter at port.
func (s postfixSnippet) mainLines(t testing.TB, port int) string {
	t.Helper()
	var b strings.Builder
	for _, kv := range s.Active {
		value := kv[1]
		if kv[0] == "smtpd_milters" {
			value = s.milters(t, port)
		}
		fmt.Fprintf(&b, "%s = %s\n", kv[0], value)
	}
	return b.String()
}

// replaceOnce replaces old by new in s and fails the test unless old occurs
// exactly once: a contrib file that no longer has the expected shape must
// fail the test, not be tested half.
func replaceOnce(t testing.TB, what, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("%s: %q occurs %d times in %q, want exactly once", what, old, n, s)
	}
	return strings.Replace(s, old, new, 1)
}
