package rbl_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
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

// A list operator's TXT record that echoes the query name, in any case,
// never shows the key.
func TestTXTEchoOfTheKeyScrubbed(t *testing.T) {
	const key = "Dqs5ecretKey42"
	list := rbl.List{Zone: "zen.dq.test", Key: key, Weight: 1}
	e := newEnv(t, rbl.Config{Lists: []rbl.List{list}, FetchTXT: true}, rbl.Options{})
	client := ip("192.0.2.1")
	name := rbl.QueryName(client, strings.ToLower(key)+".zen.dq.test")
	e.srv.Set(name, rbltest.A("127.0.0.2"), rbltest.TXT("asked "+name+", "+strings.ToUpper(name)+" and "+key+key))
	v := e.c.Check(t.Context(), client)
	txt := v.Results[0].TXT
	if want := "asked 1.2.0.192.[key].zen.dq.test, 1.2.0.192.[key].ZEN.DQ.TEST and [key][key]"; txt != want {
		t.Errorf("TXT %q, want %q", txt, want)
	}
}
