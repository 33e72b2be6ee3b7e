package milter

import (
	"strings"
	"testing"
)

func TestHeaderToken(t *testing.T) {
	for in, want := range map[string]string{
		"zen.spamhaus.org":       "zen.spamhaus.org",
		"Spamhaus ZEN":           "Spamhaus_ZEN",
		"evil\r\nX-Spam: no":     "evil__X-Spam__no",
		"bl(1);x=y":              "bl_1__x_y",
		"ünï":                    "__n__",
		strings.Repeat("a", 100): strings.Repeat("a", 64),
	} {
		if got := headerToken(in, 64); got != want {
			t.Errorf("headerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuotedString(t *testing.T) {
	for in, want := range map[string]string{
		"example.com https://dnswl.example/s?s=1": `"example.com https://dnswl.example/s?s=1"`,
		`say "hi" \ bye`:                 `"say \"hi\" \\ bye"`,
		"two\r\nlines\x00 and\t\ttabs  ": `"twolines and tabs"`,
		"  lead ünï trail":               `"lead n trail"`,
		"":                               `""`,
	} {
		if got := quotedString(in, 200); got != want {
			t.Errorf("quotedString(%q) = %s, want %s", in, got, want)
		}
	}
	if got := quotedString(strings.Repeat(`"`, 300), 200); got != `"`+strings.Repeat(`\"`, 100)+`"` {
		t.Errorf("long quoted string: %d bytes, %q...", len(got), got[:20])
	}
}

func TestFold(t *testing.T) {
	parts := []string{"score=12", "tag=1", "reject=3", "listed=zen.spamhaus.org(127.0.0.2,127.0.0.4)", "listed=pbl.example(127.0.0.10)", "listed=b.example(127.0.0.2)"}
	got := fold("X-RBL", parts)
	want := "score=12 tag=1 reject=3 listed=zen.spamhaus.org(127.0.0.2,127.0.0.4)\n\tlisted=pbl.example(127.0.0.10) listed=b.example(127.0.0.2)"
	if got != want {
		t.Fatalf("fold:\n got %q\nwant %q", got, want)
	}
	for i, line := range strings.Split("X-RBL: "+got, "\n") {
		if len(line) > foldWidth {
			t.Errorf("line %d is %d octets: %q", i, len(line), line)
		}
	}
	// A part longer than a line is never split.
	long := strings.Repeat("x", 120)
	if got := fold("X-RBL", []string{"score=0", long, "y"}); got != "score=0\n\t"+long+"\n\ty" {
		t.Errorf("long part: %q", got)
	}
}
