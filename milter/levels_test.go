package milter

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	gomilter "github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/rbl"
)

// The clients of the policy-level tests, with the verdicts the engine
// gives them at tag level 1 and threshold 3.
var (
	cleanIP   = netip.MustParseAddr("198.51.100.1")
	taggedIP  = netip.MustParseAddr("192.0.2.10")
	refusedIP = netip.MustParseAddr("192.0.2.30")
	allowedIP = netip.MustParseAddr("192.0.2.50")
	allowNet  = netip.MustParsePrefix("203.0.113.0/28")
	blockNet  = netip.MustParsePrefix("203.0.113.16/28")

	pblList   = &rbl.List{Zone: "pbl.example", Weight: 1}
	sblList   = &rbl.List{Zone: "sbl.example", Name: "Spamhaus SBL", Weight: 3}
	dnswlList = &rbl.List{Zone: "list.dnswl.example", Weight: -5}
)

func levelsChecker() *fakeChecker {
	one := func(s string) []netip.Addr { return []netip.Addr{netip.MustParseAddr(s)} }
	return &fakeChecker{tag: 1, reject: 3, listed: map[netip.Addr]rbl.Verdict{
		taggedIP: {IP: taggedIP, Decision: rbl.Tag, Score: 1, Results: []rbl.Result{
			{List: pblList, Outcome: rbl.Listed, Weight: 1, Codes: one("127.0.0.10")}, {List: sblList, Outcome: rbl.NotListed}}},
		refusedIP: {IP: refusedIP, Decision: rbl.Reject, Score: 4, Results: []rbl.Result{
			{List: pblList, Outcome: rbl.Listed, Weight: 1, Codes: one("127.0.0.10")}, {List: sblList, Outcome: rbl.Listed, Weight: 3, Codes: one("127.0.0.3")}}},
		allowedIP: {IP: allowedIP, Decision: rbl.Allowlisted, Score: -5, Results: []rbl.Result{
			{List: dnswlList, Outcome: rbl.Listed, Weight: -5, Codes: one("127.0.10.1"), TXT: "example.com https://dnswl.example/s?s=1"}}},
	}}
}

// message sends one message's headers and its end, and returns what rblmilter
// asked to change.
func message(t *testing.T, s *gomilter.ClientSession, headers ...[2]string) []gomilter.ModifyAction {
	t.Helper()
	for _, h := range headers {
		if act, err := s.HeaderField(h[0], h[1]); err != nil || act.Code != gomilter.ActContinue {
			t.Fatalf("header %s: %+v %v", h[0], act, err)
		}
	}
	if act, err := s.HeaderEnd(); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("end of headers: %+v %v", act, err)
	}
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	if act.Code != gomilter.ActContinue {
		t.Fatalf("end of message: %+v, want CONTINUE (accepted)", act)
	}
	return mods
}

// stamps renders the header modifications as "add X-RBL: ...",
// "insert 0 Authentication-Results: ...", "delete X-RBL 2".
func stamps(mods []gomilter.ModifyAction) []string {
	var out []string
	for _, m := range mods {
		switch m.Code {
		case gomilter.ActAddHeader:
			out = append(out, "add "+m.HeaderName+": "+m.HeaderValue)
		case gomilter.ActInsertHeader:
			out = append(out, fmt.Sprintf("insert %d %s: %s", m.HeaderIndex, m.HeaderName, m.HeaderValue))
		case gomilter.ActChangeHeader:
			if m.HeaderValue == "" {
				out = append(out, fmt.Sprintf("delete %s %d", m.HeaderName, m.HeaderIndex))
			} else {
				out = append(out, fmt.Sprintf("change %s %d: %s", m.HeaderName, m.HeaderIndex, m.HeaderValue))
			}
		default:
			out = append(out, fmt.Sprintf("code %c", m.Code))
		}
	}
	return out
}

func verdictName(act *gomilter.Action) string {
	switch act.Code {
	case gomilter.ActAccept:
		return "accept"
	case gomilter.ActContinue:
		return "continue"
	case gomilter.ActReplyCode:
		return fmt.Sprintf("reply %d", act.SMTPCode)
	}
	return fmt.Sprintf("code %c", act.Code)
}

// TestDecisionsAtBothLevels is the table of what each kind of client gets
// at connect and on its message, by action, tag level and results_header.
func TestDecisionsAtBothLevels(t *testing.T) {
	const (
		clean   = "add X-RBL: score=0 tag=1 reject=3"
		tagged  = "add X-RBL: score=1 tag=1 reject=3 listed=pbl.example(127.0.0.10)"
		refused = "add X-RBL: score=4 tag=1 reject=3 listed=pbl.example(127.0.0.10)\n\tlisted=Spamhaus_SBL(127.0.0.3)"
		allowed = "add X-RBL: score=-5 tag=1 reject=3 listed=list.dnswl.example(127.0.10.1)"
		dnswlAR = "insert 0 Authentication-Results: mx.example.org;\n\tdnswl=pass dns.zone=list.dnswl.example policy.ip=127.0.10.1\n\tpolicy.txt=\"example.com https://dnswl.example/s?s=1\""
	)
	type row struct {
		client  netip.Addr
		connect string   // the reply at connect
		message []string // the changes at end of message; nil: not asked
	}
	tests := []struct {
		name   string
		policy func(*Policy)
		rows   []row
	}{{
		name:   "reject at 3, tag at 1",
		policy: func(*Policy) {},
		rows: []row{
			{cleanIP, "accept", nil},
			{taggedIP, "continue", []string{tagged}},
			{refusedIP, "reply 554", nil},
			{allowedIP, "accept", nil},
			{allowNet.Addr(), "accept", nil},
			{blockNet.Addr(), "reply 554", nil},
		},
	}, {
		name:   "with results_header every accepted message is stamped",
		policy: func(p *Policy) { p.ResultsHeader, p.AuthservID = true, "mx.example.org" },
		rows: []row{
			{cleanIP, "continue", []string{clean}},
			{taggedIP, "continue", []string{tagged}},
			{refusedIP, "reply 554", nil},
			{allowedIP, "continue", []string{dnswlAR, allowed}},
			{allowNet.Addr(), "continue", []string{"add X-RBL: score=0 tag=1 reject=3 allow=203.0.113.0/28"}},
			{blockNet.Addr(), "reply 554", nil},
		},
	}, {
		name:   "action tag: the reject level is tagged too",
		policy: func(p *Policy) { p.Action = ActionTag },
		rows: []row{
			{cleanIP, "accept", nil},
			{taggedIP, "continue", []string{tagged}},
			{refusedIP, "continue", []string{refused}},
			{blockNet.Addr(), "continue", []string{"add X-RBL: score=0 tag=1 reject=3 block=203.0.113.16/28"}},
		},
	}, {
		name:   "action log with results_header: nothing refused, everything stamped",
		policy: func(p *Policy) { p.Action, p.ResultsHeader, p.AuthservID = ActionLog, true, "mx.example.org" },
		rows: []row{
			{taggedIP, "continue", []string{tagged}},
			{refusedIP, "continue", []string{refused}},
			{allowedIP, "continue", []string{dnswlAR, allowed}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basePolicy()
			p.Allow, p.Block = []netip.Prefix{allowNet}, []netip.Prefix{blockNet}
			tt.policy(&p)
			ts := startServer(t, p, levelsChecker())
			for _, r := range tt.rows {
				s := mta(t, ts.addr)
				act := connect(t, s, gomilter.FamilyInet, r.client.String())
				if got := verdictName(act); got != r.connect {
					t.Errorf("%s at connect: %s (%+v), want %s", r.client, got, act, r.connect)
					continue
				}
				if r.message == nil {
					continue
				}
				if got := stamps(message(t, s, [2]string{"Subject", "hi"})); !reflect.DeepEqual(got, r.message) {
					t.Errorf("%s's message:\n got %q\nwant %q", r.client, got, r.message)
				}
			}
		})
	}
}

// Forged copies are deleted, last first, before rblmilter's own headers
// are added: every header of the results header's name, and every
// Authentication-Results with our authserv-id (here the MTA's {j}), each
// by its position among the headers of its name. The next message on the
// connection is counted anew.
func TestForgedHeadersRemoved(t *testing.T) {
	p := basePolicy()
	p.ResultsHeader = true
	ts := startServer(t, p, levelsChecker())
	s := mta(t, ts.addr)
	if act := connect(t, s, gomilter.FamilyInet, allowedIP.String(), "j", "mx.example.org"); act.Code != gomilter.ActContinue {
		t.Fatalf("connect: %+v, want CONTINUE", act)
	}
	if err := s.Macros(gomilter.CodeMail, "i", "ABC123"); err != nil {
		t.Fatal(err)
	}
	if act, err := s.Mail("<a@example.net>", nil); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("MAIL: %+v %v", act, err)
	}
	got := stamps(message(t, s,
		[2]string{"Received", "from x by y"},
		[2]string{"X-RBL", "score=-100 reject=1"},
		[2]string{"Authentication-Results", "MX.example.org; dnswl=pass dns.zone=forged.example"},
		[2]string{"Authentication-Results", "other.example; spf=pass smtp.mailfrom=example.net"},
		[2]string{"x-rbl", "score=0"},
		[2]string{"Authentication-Results", "(forged)\n\tmx.example.org 1;\n\tdkim=pass"},
		[2]string{"X-RBL-Note", "not ours"},
	))
	want := []string{
		"delete Authentication-Results 3",
		"delete X-RBL 2",
		"delete Authentication-Results 1",
		"delete X-RBL 1",
		"insert 0 Authentication-Results: mx.example.org;\n\tdnswl=pass dns.zone=list.dnswl.example policy.ip=127.0.10.1\n\tpolicy.txt=\"example.com https://dnswl.example/s?s=1\"",
		"add X-RBL: score=-5 tag=1 reject=3 listed=list.dnswl.example(127.0.10.1)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("first message:\n got %q\nwant %q", got, want)
	}
	if act, err := s.Mail("<b@example.net>", nil); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("second MAIL: %+v %v", act, err)
	}
	got = stamps(message(t, s, [2]string{"X-RBL", "score=0"}))
	if len(got) != 3 || got[0] != "delete X-RBL 1" {
		t.Errorf("second message: %q, want the one forged copy deleted as the first of its name", got)
	}
}

// Only what the policy needs is negotiated: the connect-only configuration
// asks for no headers and no header changes; the results header for
// headers (never the body) and the right to add and delete them.
func TestNegotiatesOnlyWhatTheHeaderNeeds(t *testing.T) {
	for _, tt := range []struct {
		name    string
		policy  func(*Policy)
		tag     int
		headers bool
	}{
		{"connect only", func(*Policy) {}, 0, false},
		{"tag level", func(*Policy) {}, 1, true},
		{"action tag", func(p *Policy) { p.Action = ActionTag }, 0, true},
		{"results header", func(p *Policy) { p.ResultsHeader = true }, 0, true},
	} {
		p := basePolicy()
		tt.policy(&p)
		ts := startServer(t, p, &fakeChecker{tag: tt.tag, reject: 3})
		s := mta(t, ts.addr)
		gotHeaders := s.ProtocolOpts&gomilter.OptNoHeaders == 0
		gotChange := s.ActionOpts&(gomilter.OptAddHeader|gomilter.OptChangeHeader) == gomilter.OptAddHeader|gomilter.OptChangeHeader
		if gotHeaders != tt.headers || gotChange != tt.headers || s.ProtocolOpts&gomilter.OptNoBody == 0 || s.ProtocolOpts&gomilter.OptNoEOH == 0 {
			t.Errorf("%s: protocol %#x actions %#x; want headers %v, header changes %v, never body or end of headers",
				tt.name, s.ProtocolOpts, s.ActionOpts, tt.headers, tt.headers)
		}
		if !tt.headers {
			if act := connect(t, s, gomilter.FamilyInet, cleanIP.String()); act.Code != gomilter.ActAccept {
				t.Errorf("%s: clean client got %+v, want ACCEPT at connect", tt.name, act)
			}
		}
	}
}

// An authenticated session is judged by the lists for authenticated
// sessions (the engine hears of the login at MAIL), and the block networks
// let it pass with skip_authenticated.
func TestAuthenticatedSessionsAtRcpt(t *testing.T) {
	bot := netip.MustParseAddr("192.0.2.99")
	authbl := &rbl.List{Zone: "authbl.example", Name: "AuthBL", Weight: 3, Sessions: rbl.SessionsAuthenticated}
	fc := &fakeChecker{reject: 3,
		listed: map[netip.Addr]rbl.Verdict{bot: {IP: bot, Decision: rbl.Accept, Results: []rbl.Result{{List: authbl, Outcome: rbl.NotAuthenticated}}}},
		authListed: map[netip.Addr]rbl.Verdict{bot: {IP: bot, Decision: rbl.Reject, Score: 3, Results: []rbl.Result{
			{List: authbl, Outcome: rbl.Listed, Weight: 3, Codes: []netip.Addr{netip.MustParseAddr("127.0.0.2")}}}}},
	}
	p := basePolicy()
	p.Stage = StageRcpt
	p.Block = []netip.Prefix{blockNet}
	p.ListReplies = []ListReply{{Reply: "554 5.7.1 [{ip}] logs in like a bot ({list})"}}
	ts := startServer(t, p, fc)
	rcpt := func(ip netip.Addr, login string) string {
		s := mta(t, ts.addr)
		connect(t, s, gomilter.FamilyInet, ip.String())
		if login != "" {
			if err := s.Macros(gomilter.CodeMail, "{auth_authen}", login); err != nil {
				t.Fatal(err)
			}
		}
		if act, err := s.Mail("<x@example.net>", nil); err != nil || act.Code != gomilter.ActContinue {
			t.Fatalf("MAIL: %+v %v", act, err)
		}
		act, err := s.Rcpt("<someone@example.com>", nil)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(fmt.Sprintf("%s %s", verdictName(act), act.SMTPText))
	}
	if got := rcpt(bot, ""); got != "continue" {
		t.Errorf("unauthenticated bot address: %s, want continue", got)
	}
	if got, want := rcpt(bot, "alice"), "reply 554 5.7.1 [192.0.2.99] logs in like a bot (AuthBL)"; got != want {
		t.Errorf("authenticated bot: %q, want %q", got, want)
	}
	if got := rcpt(blockNet.Addr(), "alice"); got != "continue" {
		t.Errorf("authenticated client in block: %s, want continue (skip_authenticated)", got)
	}
	if got := rcpt(blockNet.Addr(), ""); !strings.HasPrefix(got, "reply 554") {
		t.Errorf("unauthenticated client in block: %s, want refused", got)
	}
}

// Without authserv_id the MTA's {j} is the authserv-id; a {j} that cannot
// be one (a space) writes no Authentication-Results and warns once, not
// once per session.
func TestAuthservIDFromTheMTAsHostName(t *testing.T) {
	p := basePolicy()
	p.ResultsHeader = true
	ts := startServer(t, p, levelsChecker())
	for i := 0; i < 2; i++ {
		s := mta(t, ts.addr)
		connect(t, s, gomilter.FamilyInet, allowedIP.String(), "j", "mx example")
		got := stamps(message(t, s, [2]string{"Authentication-Results", "mx example; dnswl=pass"}))
		if want := []string{"add X-RBL: score=-5 tag=1 reject=3 listed=list.dnswl.example(127.0.10.1)"}; !reflect.DeepEqual(got, want) {
			t.Errorf("session %d: %q, want %q", i, got, want)
		}
	}
	if n := strings.Count(ts.logs.String(), "is no authserv-id"); n != 1 {
		t.Errorf("%d warnings about the host name, want 1:\n%s", n, ts.logs.String())
	}
}
