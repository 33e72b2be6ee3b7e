package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// rblmilter.toml(5), rendered from docs/configuration.md by scripts/man.sh,
// documents every key as a tagged paragraph in the section of its table,
// and every table by a section. Rendering needs go-md2man, which a plain
// `go test` need not have: scripts/test.sh points RBLMILTER_TOML_MANPAGE at
// the page in the package it built.
func TestManPageDocumentsEveryKey(t *testing.T) {
	path := os.Getenv("RBLMILTER_TOML_MANPAGE")
	if path == "" {
		t.Skip("RBLMILTER_TOML_MANPAGE is not set: scripts/test.sh sets it to the rblmilter.toml(5) page of the package it built")
	}
	sections := manSections(t, readManPage(t, path))
	section := func(table string) (map[string]bool, bool) {
		for heading, tags := range sections {
			if table == "" && heading == "Top level" ||
				table != "" && (strings.HasPrefix(heading, "["+table+"]") || strings.HasPrefix(heading, "[["+table+"]]")) {
				return tags, true
			}
		}
		return nil, false
	}
	for _, k := range configKeys(t) {
		tags, ok := section(k.Table)
		if !ok {
			t.Errorf("%s has no section for %s (want a section headed [%s])", path, k.Path, k.Table)
			continue
		}
		if k.Name != "" && !tags[k.Name] {
			t.Errorf("%s does not document %s (no tagged paragraph %q in its section)", path, k.Path, k.Name)
		}
	}
}

// readManPage reads a man page's roff source, gzip-compressed or not.
func readManPage(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return string(raw)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

// roffEscape matches the escapes go-md2man writes into text: font changes
// (\fB, \f(CW, \f[C]) and the zero-width \&.
var roffEscape = regexp.MustCompile(`\\f(\(..|\[[^]]*\]|.)|\\&`)

// manSections maps each section (.SH) heading of a man page, as plain
// text, to the tags of its tagged paragraphs (.TP).
func manSections(t *testing.T, roff string) map[string]map[string]bool {
	t.Helper()
	plain := func(s string) string {
		s = roffEscape.ReplaceAllString(s, "")
		s = strings.ReplaceAll(s, `\-`, "-")
		return strings.Trim(strings.TrimSpace(s), `"`)
	}
	sections := map[string]map[string]bool{}
	var current map[string]bool
	lines := strings.Split(roff, "\n")
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, ".SH "):
			current = map[string]bool{}
			sections[plain(line[len(".SH "):])] = current
		case line == ".TP" && current != nil && i+1 < len(lines):
			current[plain(lines[i+1])] = true
		}
	}
	if len(sections) < 5 {
		t.Fatalf("only %d sections (.SH) in the man page", len(sections))
	}
	return sections
}

// docs/rblmilter.8.md, the command-line reference and the source of
// rblmilter(8), documents every flag the daemon and `rblmilter check`
// accept, as a row of its options table.
func TestCommandLineReferenceDocumentsEveryFlag(t *testing.T) {
	const doc = "docs/rblmilter.8.md"
	text, err := os.ReadFile("../../" + doc)
	if err != nil {
		t.Fatal(err)
	}
	flagLine := regexp.MustCompile(`(?m)^  -([a-z-]+)`)
	var flags []string
	for _, args := range [][]string{{"-help"}, {"check", "-help"}} {
		_, _, usage := runCLI(t, args...)
		for _, m := range flagLine.FindAllStringSubmatch(usage, -1) {
			flags = append(flags, m[1])
		}
	}
	if len(flags) < 5 {
		t.Fatalf("only %d flags found in the usage texts: %v", len(flags), flags)
	}
	for _, f := range flags {
		if !regexp.MustCompile("\n\\| `-" + regexp.QuoteMeta(f) + "[ `]").Match(text) {
			t.Errorf("%s has no row for the flag -%s", doc, f)
		}
	}
}
