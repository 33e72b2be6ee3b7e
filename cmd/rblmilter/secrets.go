package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// DQS keys are secrets: no message rblmilter prints may contain one, not
// even part of a mistyped one. The config parser quotes bad values in its
// messages; these helpers keep it from quoting a key.

// secretStr reads a string key like table.str, but never quotes the value
// in its problem.
func secretStr(t *table, name string) string {
	v, ok := t.get(name)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		t.p.addf(t.keyPath(name), "is not a string (write %s = \"...\"; the value is not shown)", name)
		return ""
	}
	return s
}

// keyValue finds what a config assigns to key, however mistyped, also in
// inline tables (list = [{zone = "...", key = ...}]).
var keyValue = regexp.MustCompile(`(?i)\bkey["']?\s*=\s*["']?([^"'\s,}\]]+)`)

// parseErrorMessage words a TOML syntax error. The TOML parser quotes a
// piece of the bad input; when that piece may be part of a key, only the
// line number is given.
func parseErrorMessage(data []byte, pe toml.ParseError) string {
	msg := strings.ToLower(pe.Message)
	for _, m := range keyValue.FindAllStringSubmatch(string(data), -1) {
		if sharesFragment(msg, strings.ToLower(m[1])) {
			return fmt.Sprintf("line %d: syntax error near a key (write key = \"...\"; the value is not shown)", pe.Position.Line)
		}
	}
	return fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)
}

// sharesFragment reports whether msg contains any 3 consecutive bytes of
// secret.
func sharesFragment(msg, secret string) bool {
	for i := 0; i+3 <= len(secret); i++ {
		if strings.Contains(msg, secret[i:i+3]) {
			return true
		}
	}
	return false
}
