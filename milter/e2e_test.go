package milter

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// realChecker builds the real engine against a fake DNS server.
func realChecker(t *testing.T, servers []string, cfg rbl.Config) Checker {
	t.Helper()
	res, err := rbl.NewResolver(rbl.ResolverConfig{Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	c, err := rbl.NewChecker(cfg, rbl.Options{Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return Engine(c)
}

func TestEndToEndWithRealEngine(t *testing.T) {
	dnsSrv := rbltest.NewServer(t)
	v4 := netip.MustParseAddr("192.0.2.10")
	v6 := netip.MustParseAddr("2001:db8::10")
	for _, ip := range []netip.Addr{v4, v6} {
		dnsSrv.Set(rbl.QueryName(ip, "secretkey.bl.test"), rbltest.A("127.0.0.2"), rbltest.TXT("https://bl.test/q?"+ip.String()))
	}
	list, err := rbl.ParseSite("bl.test=127.0.0.[2..11]*3")
	if err != nil {
		t.Fatal(err)
	}
	list.Key = "secretkey"
	p := basePolicy()
	checker := realChecker(t, []string{dnsSrv.Addr()}, rbl.Config{Lists: []rbl.List{list}, Threshold: 3})
	ts := startServer(t, p, checker)

	for _, tc := range []struct {
		family gomilter.ProtoFamily
		addr   string
		ip     netip.Addr
		macros []string
	}{
		{gomilter.FamilyInet, v4.String(), v4, nil},
		{gomilter.FamilyInet6, v6.String(), v6, nil},
		{gomilter.FamilyInet6, "IPv6:" + v6.String(), v6, []string{"{client_addr}", "IPv6:" + v6.String()}},
	} {
		act := connect(t, mta(t, ts.addr), tc.family, tc.addr, tc.macros...)
		want := "5.7.1 Service unavailable; Client host [" + tc.ip.String() + "] blocked using bl.test; https://bl.test/q?" + tc.ip.String()
		if act.Code != gomilter.ActReplyCode || act.SMTPCode != 554 || act.SMTPText != want {
			t.Errorf("%s: got %+v, want 554 %q", tc.addr, act, want)
		}
	}
	if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, "192.0.2.11"); act.Code != gomilter.ActAccept {
		t.Errorf("clean: got %+v", act)
	}
	if strings.Contains(ts.logs.String(), "secretkey") {
		t.Errorf("the DQS key leaked into the log:\n%s", ts.logs.String())
	}
}

// A refusal shows one list's text, so only that list is asked for its
// TXT record, when the reply is written; the other listing list is asked
// for its A record alone. Without {txt} in the reply no TXT is asked.
func TestReplyAsksForTheTXTItShowsOnly(t *testing.T) {
	dnsSrv := rbltest.NewServer(t)
	ip := netip.MustParseAddr("192.0.2.30")
	var lists []rbl.List
	for _, zone := range []string{"one.test", "two.test"} {
		dnsSrv.Set(rbl.QueryName(ip, zone), rbltest.A("127.0.0.2"), rbltest.TXT("listed by "+zone))
		l, err := rbl.ParseSite(zone)
		if err != nil {
			t.Fatal(err)
		}
		lists = append(lists, l)
	}
	// Threshold 2: the refusal waits for both answers, and both count.
	ts := startServer(t, basePolicy(), realChecker(t, []string{dnsSrv.Addr()}, rbl.Config{Lists: lists, Threshold: 2}))
	act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, ip.String())
	want := "5.7.1 Service unavailable; Client host [192.0.2.30] blocked using one.test, two.test; listed by one.test"
	if act.Code != gomilter.ActReplyCode || act.SMTPText != want {
		t.Fatalf("got %+v, want 554 %q", act, want)
	}
	if one, two := dnsSrv.Queries(rbl.QueryName(ip, "one.test")), dnsSrv.Queries(rbl.QueryName(ip, "two.test")); one != 2 || two != 1 {
		t.Errorf("queries: one.test %d (want A and TXT: 2), two.test %d (want A alone: 1)", one, two)
	}

	p := basePolicy()
	p.Reply = "554 5.7.1 blocked using {list}"
	other := netip.MustParseAddr("192.0.2.31")
	for _, zone := range []string{"one.test", "two.test"} {
		dnsSrv.Set(rbl.QueryName(other, zone), rbltest.A("127.0.0.2"), rbltest.TXT("listed by "+zone))
	}
	ts = startServer(t, p, realChecker(t, []string{dnsSrv.Addr()}, rbl.Config{Lists: lists, Threshold: 2}))
	if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, other.String()); act.Code != gomilter.ActReplyCode || act.SMTPText != "5.7.1 blocked using one.test, two.test" {
		t.Fatalf("without {txt}: got %+v", act)
	}
	if one, two := dnsSrv.Queries(rbl.QueryName(other, "one.test")), dnsSrv.Queries(rbl.QueryName(other, "two.test")); one != 1 || two != 1 {
		t.Errorf("without {txt}: queries one.test %d, two.test %d, want one A each", one, two)
	}

	// At the rcpt stage every RCPT TO is refused with the same text, which
	// is asked for once (this engine has no cache).
	p = basePolicy()
	p.Stage = StageRcpt
	third := netip.MustParseAddr("192.0.2.32")
	for _, zone := range []string{"one.test", "two.test"} {
		dnsSrv.Set(rbl.QueryName(third, zone), rbltest.A("127.0.0.2"), rbltest.TXT("listed by "+zone))
	}
	ts = startServer(t, p, realChecker(t, []string{dnsSrv.Addr()}, rbl.Config{Lists: lists, Threshold: 2}))
	s := mta(t, ts.addr)
	connect(t, s, gomilter.FamilyInet, third.String())
	if act, err := s.Mail("<sender@example.net>", nil); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("MAIL: %+v %v", act, err)
	}
	for _, rcpt := range []string{"<a@example.com>", "<b@example.com>", "<c@example.com>"} {
		act, err := s.Rcpt(rcpt, nil)
		if err != nil || act.Code != gomilter.ActReplyCode || !strings.HasSuffix(act.SMTPText, "; listed by one.test") {
			t.Fatalf("RCPT %s: %+v %v", rcpt, act, err)
		}
	}
	if one := dnsSrv.Queries(rbl.QueryName(third, "one.test")); one != 2 {
		t.Errorf("rcpt stage: %d queries for one.test, want 2 (A, and TXT once for three refusals)", one)
	}
}

// TestDNSFailureFailsOpen: every way DNS can fail ends in ACCEPT within
// the connection's budget, unless the admin chose on_error = tempfail.
func TestDNSFailureFailsOpen(t *testing.T) {
	dnsSrv := rbltest.NewServer(t)
	ip := netip.MustParseAddr("192.0.2.20")
	dnsSrv.SetDefault(rbltest.Silent())
	dnsSrv.Set(rbl.QueryName(ip, "servfail.test"), rbltest.Rcode(dns.RcodeServerFailure))
	dnsSrv.Set(rbl.QueryName(ip, "refused.test"), rbltest.A("127.255.255.254"))
	dnsSrv.Set(rbl.QueryName(ip, "bogus.test"), rbltest.A("198.51.100.1"))

	lists := []rbl.List{}
	for _, zone := range []string{"silent.test", "servfail.test", "refused.test", "bogus.test"} {
		l, err := rbl.ParseSite(zone)
		if err != nil {
			t.Fatal(err)
		}
		lists = append(lists, l)
	}
	// A server that refuses connections, then the fake one.
	down := "127.0.0.1:1"
	checker := realChecker(t, []string{down, dnsSrv.Addr()}, rbl.Config{Lists: lists, Timeout: 300 * time.Millisecond})
	p := basePolicy()
	p.Timeout = 500 * time.Millisecond
	ts := startServer(t, p, checker)

	start := time.Now()
	act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, ip.String())
	if act.Code != gomilter.ActAccept {
		t.Fatalf("got %+v, want ACCEPT: DNS trouble must not refuse mail", act)
	}
	if took := time.Since(start); took > p.Timeout+2*time.Second {
		t.Errorf("decision took %v with a %v budget", took, p.Timeout)
	}
	if !strings.Contains(ts.logs.String(), "problems=") {
		t.Errorf("decision line should name the failing lists:\n%s", ts.logs.String())
	}

	// The same failures with on_error = tempfail on the silent list.
	lists[0].OnError = rbl.FailTempfail
	strict := realChecker(t, []string{dnsSrv.Addr()}, rbl.Config{Lists: lists, Timeout: 300 * time.Millisecond})
	if err := ts.srv.Reload(p, strict); err != nil {
		t.Fatal(err)
	}
	act = connect(t, mta(t, ts.addr), gomilter.FamilyInet, ip.String())
	if act.Code != gomilter.ActReplyCode || act.SMTPCode != 451 || !strings.Contains(act.SMTPText, "silent.test") {
		t.Fatalf("got %+v, want 451 naming silent.test", act)
	}
}
