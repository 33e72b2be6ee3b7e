package rbl_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rblmilter/rblmilter/rbl"
)

// A display name that quotes the key, in any case, is refused without
// printing either, and never printed by the List itself.
func TestNameQuotingTheKeyNeverShown(t *testing.T) {
	const key = "Dqs5ecretKey42"
	for _, name := range []string{"ZEN " + key, "zen-" + strings.ToLower(key), strings.ToUpper(key)} {
		l := rbl.List{Zone: "zen.dq.test", Name: name, Key: key}
		_, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{l}}, rbl.Options{Resolver: resolver(t, "127.0.0.1:1")})
		if err == nil {
			t.Errorf("name %q accepted", name)
			continue
		}
		out := fmt.Sprintf("%v %s %+v %#v", err, l, l, l)
		if strings.Contains(strings.ToLower(out), strings.ToLower(key)) {
			t.Errorf("name %q: the key shows in %q", name, out)
		}
		if !strings.Contains(out, "zen.dq.test") || !strings.Contains(err.Error(), "display name contains the key") {
			t.Errorf("name %q: %q does not name the list by its zone and the problem", name, out)
		}
	}
	if l := (rbl.List{Zone: "zen.dq.test", Name: "Spamhaus DQS", Key: key}); l.String() != "Spamhaus DQS" {
		t.Errorf("an innocent name shows as %q", l)
	}
}
