package milter

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rblmilter/rblmilter/rbl"
)

func TestValidatePolicyReplies(t *testing.T) {
	tests := []struct {
		reply, tempfail string
		want            string
	}{
		{"", "", ""},
		{"550 5.7.1 Blocked {ip} by {list} ({code}) {txt} score {score}", "450 4.7.1 later", ""},
		{"250 2.0.0 ok", "", `reply: "250 2.0.0 ok" must start with a 5xx reply code (like "554 5.7.1 ...")`},
		{"554 blocked", "", `reply: "554 blocked" must have an enhanced status code after 554 (like 5.7.1)`},
		{"554 4.7.1 blocked", "", `reply: "554 4.7.1 blocked": enhanced status code 4.7.1 must start with 5 to match reply code 554`},
		{"554 5.7.1 blocked {host}", "", `reply: "554 5.7.1 blocked {host}": unknown placeholder {host} (use {ip}, {name}, {list}, {code}, {txt}, {score})`},
		{"", "554 5.7.1 no", `tempfail_reply: "554 5.7.1 no" must start with a 4xx reply code (like "454 4.7.1 ...")`},
		{"554 5.7.1 two\r\nlines", "", `reply: "554 5.7.1 two\r\nlines" must be a single line`},
	}
	for _, tt := range tests {
		err := ValidatePolicy(Policy{Reply: tt.reply, TempfailReply: tt.tempfail})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("ValidatePolicy(%q, %q)\n got %q\nwant %q", tt.reply, tt.tempfail, got, tt.want)
		}
	}
	if err := ValidatePolicy(Policy{Header: "X RBL"}); err == nil || !strings.HasPrefix(err.Error(), "header: ") {
		t.Errorf("bad header name: got %v", err)
	}
}

// ValidatePolicy names every bad field, not only the first, so that an
// admin fixes them in one go.
func TestValidatePolicyReportsEveryProblem(t *testing.T) {
	err := ValidatePolicy(Policy{
		Action: ActionLog + 1, Stage: StageRcpt + 1,
		Reply: "250 2.0.0 ok", TempfailReply: "554 5.7.1 no",
		Timeout: -time.Second, Header: "X:RBL",
	})
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("ValidatePolicy = %v (%T), want the problems joined by errors.Join", err, err)
	}
	var fields []string
	for _, e := range joined.Unwrap() {
		field, _, _ := strings.Cut(e.Error(), ":")
		fields = append(fields, field)
	}
	if want := []string{"action", "stage", "reply", "tempfail_reply", "timeout", "header"}; !slices.Equal(fields, want) {
		t.Errorf("problems name %q, want %q; all of them:\n%v", fields, want, err)
	}
}

func TestRenderReply(t *testing.T) {
	f := replyFields{ip: netip.MustParseAddr("2001:db8::1"), list: "zen.example", code: "127.0.0.4", score: 7}
	got := renderReply(DefaultReply, f)
	if want := "554 5.7.1 Service unavailable; Client host [2001:db8::1] blocked using zen.example"; got != want {
		t.Errorf("empty TXT:\n got %q\nwant %q", got, want)
	}
	f.txt = "100% spam\r\n250 fake\x00 ünïcode"
	got = renderReply("554 5.7.1 {list} {code} {score} {txt}", f)
	if want := "554 5.7.1 zen.example 127.0.0.4 7 100%% spam250 fake ncode"; got != want {
		t.Errorf("hostile TXT:\n got %q\nwant %q", got, want)
	}
	f.txt = strings.Repeat("x", 2000)
	if got := renderReply(DefaultReply, f); len(got) > maxReplyText {
		t.Errorf("reply is %d bytes, want at most %d", len(got), maxReplyText)
	}
}

func TestIsExempt(t *testing.T) {
	exempt := []string{"postmaster", "Abuse@Example.org"}
	for rcpt, want := range map[string]bool{
		"postmaster@example.com":   true,
		"<POSTMASTER@example.net>": true,
		"abuse@example.org":        true,
		"abuse@example.com":        false,
		"postmaster.x@example.com": false,
		"someone@postmaster":       false,
	} {
		if got := isExempt(rcpt, exempt); got != want {
			t.Errorf("isExempt(%q) = %v, want %v", rcpt, got, want)
		}
	}
}

func TestValidateListReply(t *testing.T) {
	for _, tt := range []struct {
		r    ListReply
		want string
	}{
		{ListReply{}, ""},
		{ListReply{Reply: "550 5.7.1 listed by {list}: {txt}", TempfailReply: "451 4.7.1 {list} did not answer"}, ""},
		{ListReply{Reply: "451 4.7.1 later"}, `reply: "451 4.7.1 later" must start with a 5xx reply code (like "554 5.7.1 ...")`},
		{ListReply{TempfailReply: "554 5.7.1 no"}, `tempfail_reply: "554 5.7.1 no" must start with a 4xx reply code (like "454 4.7.1 ...")`},
		{ListReply{Reply: "554 5.7.1 {host}"}, `reply: "554 5.7.1 {host}": unknown placeholder {host} (use {ip}, {name}, {list}, {code}, {txt}, {score})`},
	} {
		got := ""
		if err := ValidateListReply(tt.r); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("ValidateListReply(%+v)\n got %q\nwant %q", tt.r, got, tt.want)
		}
	}
	err := ValidatePolicy(Policy{ListReplies: []ListReply{{}, {Reply: "451 4.7.1 later"}}})
	if err == nil || !strings.HasPrefix(err.Error(), "list entry 1: reply: ") {
		t.Errorf("ValidatePolicy with a bad list reply: %v", err)
	}
}

func TestListTemplateFirstCountedEntryWithItsOwnWins(t *testing.T) {
	pbl := &rbl.List{Zone: "pbl.example", Weight: 1}
	sbl := &rbl.List{Zone: "sbl.example", Weight: 2}
	xbl := &rbl.List{Zone: "xbl.example", Weight: 2, OnError: rbl.FailTempfail}
	replies := []ListReply{
		{Reply: "554 5.7.1 pbl: {code} {txt}"},
		{},
		{Reply: "554 5.7.1 xbl", TempfailReply: "451 4.7.1 xbl down"},
	}
	v := rbl.Verdict{Decision: rbl.Reject, Score: 4, Results: []rbl.Result{
		{List: pbl, Outcome: rbl.NotListed},
		{List: sbl, Outcome: rbl.Listed, Weight: 2, Codes: codes("127.0.0.2"), TXT: "sbl says"},
		{List: xbl, Outcome: rbl.Listed, Weight: 2, Codes: codes("127.0.0.4"), TXT: "xbl says"},
	}}
	// pbl has its own reply but did not count; sbl counted but has none.
	tmpl, lead := listTemplate(&v, replies, DefaultReply)
	if tmpl != "554 5.7.1 xbl" || lead != 2 {
		t.Errorf("got %q from %d, want xbl's", tmpl, lead)
	}
	var asked []string
	txt := func(r *rbl.Result) string {
		asked = append(asked, r.List.Zone)
		return r.TXT
	}
	if f := fieldsFromVerdict(&v, lead, txt); f.code != "127.0.0.4" || f.txt != "xbl says" || f.list != "sbl.example, xbl.example" {
		t.Errorf("fields %+v: want xbl's code and TXT, and every counted list", f)
	}
	if !slices.Equal(asked, []string{"xbl.example"}) {
		t.Errorf("TXT records asked for %q, want xbl's alone (its text is the reply's)", asked)
	}
	// Without a text of its own, the lead's is the first counted list's
	// that has one, asked for in configuration order.
	v.Results[2].TXT, asked = "", nil
	if f := fieldsFromVerdict(&v, lead, txt); f.txt != "sbl says" || !slices.Equal(asked, []string{"xbl.example", "sbl.example"}) {
		t.Errorf("text %q, asked for %q: want sbl's, after xbl's", f.txt, asked)
	}
	v.Results[2].TXT = "xbl says"

	v.Results[0] = rbl.Result{List: pbl, Outcome: rbl.Listed, Weight: 1, Codes: codes("127.0.0.10")}
	if tmpl, lead := listTemplate(&v, replies, DefaultReply); tmpl != replies[0].Reply || lead != 0 {
		t.Errorf("got %q from %d, want pbl's (first in configuration order)", tmpl, lead)
	}
	if tmpl, lead := listTemplate(&v, nil, DefaultReply); tmpl != DefaultReply || lead != -1 {
		t.Errorf("no list replies: got %q from %d", tmpl, lead)
	}

	tf := rbl.Verdict{Decision: rbl.Tempfail, Results: []rbl.Result{
		{List: pbl, Outcome: rbl.Timeout},
		{List: sbl, Outcome: rbl.NotListed},
		{List: xbl, Outcome: rbl.Timeout},
	}}
	if tmpl, lead := listTemplate(&tf, replies, DefaultTempfailReply); tmpl != "451 4.7.1 xbl down" || lead != 2 {
		t.Errorf("tempfail: got %q from %d, want xbl's tempfail_reply (pbl ignores failures)", tmpl, lead)
	}
}

func TestValidatePolicyHeaderAndAuthservID(t *testing.T) {
	for _, tt := range []struct {
		p    Policy
		want string
	}{
		{Policy{Header: "X-Spam-RBL", AuthservID: "mx.example.org"}, ""},
		{Policy{Header: "subject"}, `header: "subject" is a header field the message itself uses; rblmilter deletes incoming copies of its header, so it needs a name of its own (like "X-RBL")`},
		{Policy{Header: "Content-Type"}, `header: "Content-Type" is a header field the message itself uses; rblmilter deletes incoming copies of its header, so it needs a name of its own (like "X-RBL")`},
		{Policy{Header: "Authentication-Results"}, `header: "Authentication-Results" is a header field the message itself uses; rblmilter deletes incoming copies of its header, so it needs a name of its own (like "X-RBL")`},
		{Policy{AuthservID: "mx example.org"}, `authserv_id: "mx example.org" has the character ' ' (an authserv-id is a host name like "mx.example.org")`},
	} {
		got := ""
		if err := ValidatePolicy(tt.p); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("ValidatePolicy(%+v)\n got %q\nwant %q", tt.p, got, tt.want)
		}
	}
}
