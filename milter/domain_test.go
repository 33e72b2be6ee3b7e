package milter

import (
	"strings"
	"testing"

	gomilter "github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// domainServer runs the milter with the real engine: zen.test (an IP
// list) and DBL (a domain list asked about every name), each enough to
// refuse alone, against a fake DNS server.
func domainServer(t *testing.T, p Policy, checks rbl.CheckSet) (*testServer, *rbltest.Server) {
	t.Helper()
	dnsSrv := rbltest.NewServer(t)
	dnsSrv.Set("66.2.0.192.zen.test", rbltest.A("127.0.0.2"))
	for _, name := range []string{"spammer.example", "bad.host.example", "test"} {
		dnsSrv.Set(name+".dbl.test", rbltest.A("127.0.1.2"), rbltest.TXT("https://dbl.test/"+name))
	}
	lists := []rbl.List{
		{Zone: "zen.test", Weight: 3},
		{Zone: "dbl.test", Name: "DBL", Type: rbl.DomainList, Checks: checks, Weight: 3, Filters: []rbl.Filter{mustFilter(t, "127.0.1.[2..99]")}},
	}
	res, err := rbl.NewResolver(rbl.ResolverConfig{Servers: []string{dnsSrv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := rbl.NewCache(rbl.CacheConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checker, err := rbl.NewChecker(rbl.Config{Lists: lists, Threshold: 3}, rbl.Options{Resolver: res, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(checker.Close)
	return startServer(t, p, Engine(checker)), dnsSrv
}

func mustFilter(t *testing.T, s string) rbl.Filter {
	t.Helper()
	f, err := rbl.ParseFilter(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// step is one SMTP stage of a session and the milter's answer to it.
type step struct {
	stage string // "connect", "helo", "mail", "rcpt", "eom"
	arg   string // client address, HELO name, sender, recipient
	want  string // "continue", "accept", or "reply TEXT" (a prefix)
}

func runSteps(t *testing.T, s *gomilter.ClientSession, macros []string, steps []step) {
	t.Helper()
	for i, st := range steps {
		var act *gomilter.Action
		var err error
		switch st.stage {
		case "connect":
			if len(macros) > 0 {
				if err := s.Macros(gomilter.CodeConn, macros...); err != nil {
					t.Fatal(err)
				}
			}
			act, err = s.Conn("[192.0.2.1]", gomilter.FamilyInet, 25000, st.arg)
		case "helo":
			act, err = s.Helo(st.arg)
		case "mail":
			act, err = s.Mail(st.arg, nil)
		case "rcpt":
			act, err = s.Rcpt(st.arg, nil)
		case "eom":
			_, act, err = s.End()
		}
		if err != nil {
			t.Fatalf("step %d %s %q: %v", i+1, st.stage, st.arg, err)
		}
		var got string
		switch act.Code {
		case gomilter.ActContinue:
			got = "continue"
		case gomilter.ActAccept:
			got = "accept"
		case gomilter.ActReplyCode:
			got = "reply " + act.SMTPText
		default:
			got = string(rune(act.Code))
		}
		if got != st.want && !(strings.HasPrefix(st.want, "reply ") && strings.HasPrefix(got, st.want)) {
			t.Errorf("step %d %s %q: %q, want %q", i+1, st.stage, st.arg, got, st.want)
		}
	}
}

const dblReply = "reply 5.7.1 spammer.example listed by DBL"

// warmCache looks up the HELO names and senders of steps in sessions of
// their own, each waited for at MAIL, so that their answers are cached:
// a HELO answer is then in at HELO, the case the "listed HELO" steps pin.
// (Uncached, it comes at MAIL; see TestHeloAnswerAwaitedAtMail.)
func warmCache(t *testing.T, ts *testServer, steps []step) {
	t.Helper()
	for _, st := range steps {
		s := mta(t, ts.addr)
		switch st.stage {
		case "helo":
			runSteps(t, s, nil, []step{{"connect", "198.51.100.1", "continue"}})
			if _, err := s.Helo(st.arg); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Mail("<>", nil); err != nil {
				t.Fatal(err)
			}
		case "mail":
			runSteps(t, s, nil, []step{{"connect", "198.51.100.1", "continue"}})
			if _, err := s.Mail(st.arg, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The decision grows with the session: which stage refuses, and where the
// milter answers CONTINUE (later names could still change the decision)
// or ACCEPT (nothing can).
func TestStagedDecisions(t *testing.T) {
	every := rbl.Checks(rbl.CheckClient, rbl.CheckReverseClient, rbl.CheckHelo, rbl.CheckSender)
	heloOnly := rbl.Checks(rbl.CheckHelo)
	connectStage := basePolicy()
	connectStage.Reply = "554 5.7.1 {name} listed by {list}"
	rcptStage := connectStage
	rcptStage.Stage = StageRcpt
	for _, tt := range []struct {
		name   string
		policy Policy
		checks rbl.CheckSet
		macros []string
		steps  []step
	}{
		{"listed address refused at connect", connectStage, every, nil, []step{
			{"connect", "192.0.2.66", "reply 5.7.1 192.0.2.66 listed by zen.test"},
		}},
		{"listed client name refused at connect", connectStage, every, []string{"{client_name}", "bad.host.example"}, []step{
			{"connect", "198.51.100.1", "reply 5.7.1 bad.host.example listed by DBL"},
		}},
		{"listed PTR name refused at connect", connectStage, every, []string{"{client_name}", "unknown", "{client_ptr}", "bad.host.example"}, []step{
			{"connect", "198.51.100.1", "reply 5.7.1 bad.host.example listed by DBL"},
		}},
		{"Sendmail's forged name is not the verified name", connectStage, rbl.Checks(rbl.CheckClient, rbl.CheckSender), []string{"{client_name}", "bad.host.example", "{client_resolve}", "FORGED"}, []step{
			{"connect", "198.51.100.1", "continue"},
			{"mail", "a@good.example", "continue"},
		}},
		{"listed HELO refused at HELO once cached", connectStage, every, nil, []step{
			{"connect", "198.51.100.1", "continue"},
			{"helo", "mx.spammer.example", dblReply},
			// A new EHLO replaces the name.
			{"helo", "mx.good.example", "continue"},
			{"mail", "a@good.example", "continue"},
		}},
		{"listed sender refused at MAIL, the next transaction's clean one accepted", connectStage, every, nil, []step{
			{"connect", "198.51.100.1", "continue"},
			{"helo", "mx.good.example", "continue"},
			{"mail", "<user@spammer.example>", dblReply},
			// Sender lists: a later transaction could bring a listed
			// sender, so the session stays (CONTINUE, not ACCEPT).
			{"mail", "<user@good.example>", "continue"},
			{"eom", "", "continue"},
			{"mail", "<@relay.example:user@Mail.Spammer.Example>", dblReply},
		}},
		{"null sender and address literals are not asked", connectStage, every, nil, []step{
			{"connect", "198.51.100.1", "continue"},
			{"helo", "[198.51.100.1]", "continue"},
			{"mail", "<>", "continue"},
		}},
		{"HELO lists only, cached clean HELO: ACCEPT at HELO", connectStage, heloOnly, nil, []step{
			{"connect", "198.51.100.1", "continue"},
			{"helo", "mx.good.example", "accept"},
		}},
		{"HELO lists only, listed address: refused at connect", connectStage, heloOnly, nil, []step{
			{"connect", "192.0.2.66", "reply 5.7.1 192.0.2.66 listed by zen.test"},
		}},
		{"stage rcpt: refused at RCPT, postmaster exempt", rcptStage, every, nil, []step{
			{"connect", "198.51.100.1", "continue"},
			{"helo", "mx.spammer.example", "continue"},
			{"mail", "<a@good.example>", "continue"},
			{"rcpt", "<user@example.org>", dblReply},
			{"rcpt", "<postmaster@example.org>", "continue"},
		}},
		{"stage rcpt: each transaction's sender", rcptStage, every, nil, []step{
			{"connect", "198.51.100.1", "continue"},
			{"helo", "mx.good.example", "continue"},
			{"mail", "<a@spammer.example>", "continue"},
			{"rcpt", "<user@example.org>", dblReply},
			{"mail", "<a@good.example>", "continue"},
			{"rcpt", "<user@example.org>", "continue"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts, _ := domainServer(t, tt.policy, tt.checks)
			if tt.policy.Stage == StageConnect {
				warmCache(t, ts, tt.steps)
			}
			runSteps(t, mta(t, ts.addr), tt.macros, tt.steps)
		})
	}
}

// A HELO answer not yet in at HELO is awaited at MAIL: the EHLO reply
// does not wait for DNS.
func TestHeloAnswerAwaitedAtMail(t *testing.T) {
	p := basePolicy()
	p.Reply = "554 5.7.1 {name} listed by {list}"
	ts, dnsSrv := domainServer(t, p, rbl.Checks(rbl.CheckHelo))
	release := make(chan struct{})
	dnsSrv.Set("slow.example.dbl.test", rbltest.A("127.0.1.2"), rbltest.Hold(release))
	s := mta(t, ts.addr)
	runSteps(t, s, nil, []step{
		{"connect", "198.51.100.1", "continue"},
		{"helo", "mx.slow.example", "continue"},
	})
	close(release)
	runSteps(t, s, nil, []step{{"mail", "<a@good.example>", "reply 5.7.1 slow.example listed by DBL"}})
	if want := `at=mail score=3 lists="DBL=127.0.1.2(helo=slow.example)"`; !strings.Contains(ts.logs.String(), want) {
		t.Errorf("decision line lacks %s:\n%s", want, ts.logs.String())
	}

	// A clean HELO is ACCEPTed at MAIL, once its answer is in: with no
	// sender lists nothing else can change the decision.
	release = make(chan struct{})
	dnsSrv.Set("mx.clean.example.dbl.test", rbltest.Hold(release))
	s = mta(t, ts.addr)
	runSteps(t, s, nil, []step{
		{"connect", "198.51.100.1", "continue"},
		{"helo", "mx.clean.example", "continue"},
	})
	close(release)
	runSteps(t, s, nil, []step{{"mail", "<a@spammer.example>", "accept"}})
}

// Only the stages the lists need are negotiated.
func TestNegotiatedStages(t *testing.T) {
	for _, tt := range []struct {
		name             string
		stage            Stage
		checks           rbl.CheckSet
		helo, mail, rcpt bool
	}{
		{"IP lists only", StageConnect, 0, false, false, false},
		{"client names", StageConnect, rbl.Checks(rbl.CheckClient), false, false, false},
		{"HELO names", StageConnect, rbl.Checks(rbl.CheckHelo), true, true, false},
		{"senders", StageConnect, rbl.Checks(rbl.CheckSender), false, true, false},
		{"stage rcpt", StageRcpt, 0, false, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := basePolicy()
			p.Stage = tt.stage
			var ts *testServer
			if tt.checks == 0 {
				ts = startServer(t, p, &fakeChecker{})
			} else {
				ts, _ = domainServer(t, p, tt.checks)
			}
			s := mta(t, ts.addr)
			got := [3]bool{s.ProtocolOpts&gomilter.OptNoHelo == 0, s.ProtocolOpts&gomilter.OptNoMailFrom == 0, s.ProtocolOpts&gomilter.OptNoRcptTo == 0}
			if want := [3]bool{tt.helo, tt.mail, tt.rcpt}; got != want {
				t.Errorf("HELO, MAIL, RCPT negotiated %v, want %v", got, want)
			}
		})
	}
}
