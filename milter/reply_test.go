package milter

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
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
