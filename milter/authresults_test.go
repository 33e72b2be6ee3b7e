package milter

import (
	"strings"
	"testing"

	"github.com/rblmilter/rblmilter/rbl"
)

func TestAuthResultsValuePinned(t *testing.T) {
	dnswl := &rbl.List{Zone: "list.dnswl.example", Key: "secretkey", Weight: -5}
	other := &rbl.List{Zone: "wl.example", Name: "Our allowlist", Weight: -1}
	zen := &rbl.List{Zone: "zen.example", Weight: 3}
	v := rbl.Verdict{Score: -5, Results: []rbl.Result{
		{List: zen, Outcome: rbl.NotListed},
		{List: dnswl, Outcome: rbl.Listed, Weight: -5, Codes: codes("127.0.10.1", "127.0.10.2"), TXT: `example.com "fwd" https://dnswl.example/s?s=8580`},
	}}
	got := authResultsValue("mx.example.org", &v)
	want := "mx.example.org;\n\tdnswl=pass dns.zone=list.dnswl.example policy.ip=127.0.10.1\n\tpolicy.txt=\"example.com \\\"fwd\\\" https://dnswl.example/s?s=8580\""
	if got != want {
		t.Errorf("one allowlist:\n got %q\nwant %q", got, want)
	}
	if strings.Contains(got, "secretkey") {
		t.Errorf("the DQS key leaked: %q", got)
	}

	v.Results = append(v.Results, rbl.Result{List: other, Outcome: rbl.Listed, Weight: -1, Codes: codes("127.0.0.2")})
	got = authResultsValue("mx.example.org", &v)
	want = "mx.example.org;\n\tdnswl=pass dns.zone=list.dnswl.example policy.ip=127.0.10.1\n\tpolicy.txt=\"example.com \\\"fwd\\\" https://dnswl.example/s?s=8580\";\n\tdnswl=pass dns.zone=wl.example policy.ip=127.0.0.2"
	if got != want {
		t.Errorf("two allowlists:\n got %q\nwant %q", got, want)
	}

	for name, v := range map[string]rbl.Verdict{
		"blocklist only":       {Score: 3, Results: []rbl.Result{{List: zen, Outcome: rbl.Listed, Weight: 3, Codes: codes("127.0.0.2")}}},
		"shadow allowlist":     {Results: []rbl.Result{{List: &rbl.List{Zone: "s.example", Weight: -1, Shadow: true}, Outcome: rbl.Listed, Matched: -1, Codes: codes("127.0.0.2")}}},
		"allowlist not listed": {Results: []rbl.Result{{List: dnswl, Outcome: rbl.NotListed}}},
	} {
		if got := authResultsValue("mx.example.org", &v); got != "" {
			t.Errorf("%s: got %q, want none", name, got)
		}
	}
}

func TestCheckAuthservID(t *testing.T) {
	for id, want := range map[string]string{
		"mx.example.org":           "",
		"mail-1.example_corp.test": "",
		"":                         "is empty",
		"mx example":               `has the character ' ' (an authserv-id is a host name like "mx.example.org")`,
		"mx;x":                     `has the character ';' (an authserv-id is a host name like "mx.example.org")`,
		"mx\r\n":                   `has the character '\r' (an authserv-id is a host name like "mx.example.org")`,
		strings.Repeat("a", 254):   "is longer than 253 characters",
	} {
		got := ""
		if err := checkAuthservID(id); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("checkAuthservID(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestAuthservIDOf(t *testing.T) {
	for value, want := range map[string]string{
		"mx.example.org; dnswl=pass":                "mx.example.org",
		"MX.Example.ORG;spf=pass":                   "MX.Example.ORG",
		"mx.example.org 1; none":                    "mx.example.org",
		" (comment (nested \\) )) mx.example.org;x": "mx.example.org",
		"\r\n\tmx.example.org\r\n\t; dkim=pass":     "mx.example.org",
		`"mx.example.org"; none`:                    "mx.example.org",
		`"mx\"x"; none`:                             `mx"x`,
		`"unterminated`:                             "",
		"mx.example.org(c); none":                   "mx.example.org",
		"":                                          "",
		"(only a comment)":                          "",
	} {
		if got := authservIDOf(value); got != want {
			t.Errorf("authservIDOf(%q) = %q, want %q", value, got, want)
		}
	}
}
