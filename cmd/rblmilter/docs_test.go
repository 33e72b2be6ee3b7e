package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/rblmilter/rblmilter/rbl"
)

// The user documentation, relative to this package's directory.
var docPages = []string{"../../README.md", "../../cmd/milterbench/README.md"}

func allDocPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 5 {
		t.Fatalf("docs/ has %d pages, want at least 5: %v", len(pages), pages)
	}
	return append(pages, docPages...)
}

var (
	markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeSpan     = regexp.MustCompile("`[^`]*`")
)

// prose returns the lines of a markdown file outside fenced code blocks,
// by line number.
func prose(text string) map[int]string {
	lines := map[int]string{}
	fenced := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			lines[i+1] = line
		}
	}
	return lines
}

// anchors returns the fragment GitHub gives each heading of a markdown file:
// lower case, only letters, digits, '-' and '_' kept, spaces made '-', and
// "-1", "-2", ... appended to repeats.
func anchors(text string) map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	lines := prose(text)
	for n := 1; n <= strings.Count(text, "\n")+1; n++ {
		line, ok := lines[n]
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var id strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				id.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				id.WriteRune(r)
			}
		}
		slug := id.String()
		if n := seen[slug]; n > 0 {
			ids[slug+"-"+strconv.Itoa(n)] = true
		} else {
			ids[slug] = true
		}
		seen[slug]++
	}
	return ids
}

// Every relative link in the README and the docs pages names a file or
// directory that exists, and every #fragment a heading of the page it points
// to, so that moving text between pages cannot leave a dead link behind.
func TestDocsRelativeLinksResolve(t *testing.T) {
	for _, page := range allDocPages(t) {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(page, "../../")
		for n, line := range prose(string(raw)) {
			for _, m := range markdownLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, fragment, _ := strings.Cut(target, "#")
				path := page
				if file != "" {
					path = filepath.Join(filepath.Dir(page), file)
					if _, err := os.Stat(path); err != nil {
						t.Errorf("%s: line %d: link %q: %s does not exist", name, n+1, target, strings.TrimPrefix(path, "../../"))
						continue
					}
				}
				if fragment == "" || !strings.HasSuffix(path, ".md") {
					continue
				}
				linked, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(string(linked))[fragment] {
					t.Errorf("%s: line %d: link %q: %s has no heading #%s", name, n+1, target, strings.TrimPrefix(path, "../../"), fragment)
				}
			}
		}
	}
}

// Every docs page starts, after its title, with what the reader can do with
// it: a paragraph of prose, not a table, list or code block.
func TestDocsPagesStartWithWhatTheyAreFor(t *testing.T) {
	for _, page := range allDocPages(t) {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		title, rest, _ := strings.Cut(string(raw), "\n")
		first := strings.TrimSpace(rest)
		if !strings.HasPrefix(title, "# ") || first == "" || strings.ContainsAny(first[:1], "#|`-*>") {
			t.Errorf("%s: want a '# ' title followed by a paragraph saying what the page is for, got %q / %.40q", strings.TrimPrefix(page, "../../"), title, first)
		}
	}
}

// The README's example configuration is accepted by the parser the daemon uses.
func TestReadmeExampleConfigParses(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "\n```toml\n")
	if !ok {
		t.Fatal("README.md has no ```toml example configuration")
	}
	example, _, _ := strings.Cut(rest, "\n```")
	if _, err := parseConfig([]byte(example), testParseEnv()); err != nil {
		t.Errorf("README.md's example configuration:\n%s\nis refused:\n%v", example, err)
	}
}

// sectionExample returns the first ```toml block of the section headed
// heading (a whole "## ..." line) in page, parsed with a resolver added:
// the examples leave the resolvers to the reader.
func sectionExample(t *testing.T, page, heading string) *daemonConfig {
	t.Helper()
	raw, err := os.ReadFile("../../" + page)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n"+heading+"\n")
	_, rest, hasBlock := strings.Cut(section, "\n```toml\n")
	if !ok || !hasBlock {
		t.Fatalf("%s has no %q section with a ```toml block", page, heading)
	}
	example, _, _ := strings.Cut(rest, "\n```")
	cfg, err := parseConfig([]byte("resolvers = [\"127.0.0.1\"]\n"+example), testParseEnv())
	if err != nil {
		t.Fatalf("%s, %s: the example:\n%s\nis refused:\n%v", page, heading, example, err)
	}
	return cfg
}

// The policy-levels example of docs/configuration.md is accepted by the
// parser and means what the page says: reject at 3, tag at 1, every
// message stamped, Spamhaus' own reply.
func TestPolicyLevelsExampleParses(t *testing.T) {
	cfg := sectionExample(t, "docs/configuration.md", "## Example: tag at 1, reject at 3 (for sites running rspamd)")
	if e, p := cfg.Engine, cfg.Policy; e.Threshold != 3 || e.TagThreshold != 1 || !p.ResultsHeader || len(p.ListReplies) != 3 || p.ListReplies[0].Reply == "" {
		t.Errorf("the example gives threshold %d, tag_threshold %d, results_header %v, list replies %q", e.Threshold, e.TagThreshold, p.ResultsHeader, p.ListReplies)
	}
}

// The README's domain-lists example is accepted by the parser and means
// what the README says: DBL asked about the client, HELO and sender
// names, ZRD about HELO and sender with a DQS key.
func TestReadmeDomainListsExampleParses(t *testing.T) {
	cfg := sectionExample(t, "README.md", "## Domain lists")
	lists := cfg.Engine.Lists
	if len(lists) != 2 {
		t.Fatalf("the example gives %d lists, want DBL and ZRD", len(lists))
	}
	dbl, zrd := lists[0], lists[1]
	if dbl.Type != rbl.DomainList || dbl.Checks != rbl.Checks(rbl.CheckClient, rbl.CheckHelo, rbl.CheckSender) || dbl.Key != "" || dbl.Weight != 3 {
		t.Errorf("DBL: type %v, checks %v, key %q, weight %d", dbl.Type, dbl.Checks, dbl.Key, dbl.Weight)
	}
	if zrd.Type != rbl.DomainList || zrd.Checks != rbl.Checks(rbl.CheckHelo, rbl.CheckSender) || zrd.Key == "" || zrd.Weight != 2 {
		t.Errorf("ZRD: type %v, checks %v, key %q, weight %d", zrd.Type, zrd.Checks, zrd.Key, zrd.Weight)
	}
}
