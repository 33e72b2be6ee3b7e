package rbl_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// Domain lists of the session tests: a DBL-like list asked about every
// name (filters and weights as a Spamhaus guide would set them), a
// ZRD-like list asked about HELO and sender names only, and an IP list.
func domainLists(t testing.TB) []rbl.List {
	t.Helper()
	return []rbl.List{
		site(t, "zen.test*3"),
		{Zone: "dbl.test", Name: "DBL", Type: rbl.DomainList, Weight: 3, Filters: filters(t, "127.0.1.[2..99]", "127.0.1.[102..199]*1"),
			Checks: rbl.Checks(rbl.CheckClient, rbl.CheckReverseClient, rbl.CheckHelo, rbl.CheckSender)},
		{Zone: "zrd.test", Name: "ZRD", Type: rbl.DomainList, Weight: 2, Checks: rbl.Checks(rbl.CheckHelo, rbl.CheckSender)},
	}
}

func dbl(name string) string { return name + ".dbl.test" }
func zrd(name string) string { return name + ".zrd.test" }

func domainEnv(t *testing.T, threshold int, opts rbl.Options) *env {
	t.Helper()
	e := newEnv(t, rbl.Config{Lists: domainLists(t), Threshold: threshold, FetchTXT: true}, opts)
	e.srv.Set(rbl.QueryName(ip("192.0.2.66"), "zen.test"), rbltest.A("127.0.0.2"))
	e.srv.Set(dbl("spammer.example"), rbltest.A("127.0.1.2"), rbltest.TXT("https://dbl.test/spammer.example"))
	e.srv.Set(dbl("bad.host.example"), rbltest.A("127.0.1.2"))
	e.srv.Set(dbl("abused.example"), rbltest.A("127.0.1.102"))
	e.srv.Set(dbl("errcode.example"), rbltest.A("127.0.1.255"))
	e.srv.Set(zrd("new.example"), rbltest.A("127.0.2.2"))
	e.srv.Set(zrd("zrderr.example"), rbltest.A("127.0.2.255"))
	return e
}

var (
	cleanClient = ip("198.51.100.1")
	afterHelo   = rbl.Checks(rbl.CheckSender)
	afterConn   = rbl.Checks(rbl.CheckHelo, rbl.CheckSender)
)

// A listed registered domain catches its subdomains; the result names the
// check and the name that was listed.
func TestSessionAsksNameAndRegisteredDomain(t *testing.T) {
	e := domainEnv(t, 3, rbl.Options{})
	s := e.c.Start(cleanClient)
	if err := s.Ask(rbl.CheckHelo, "Mail.Spammer.Example."); err != nil {
		t.Fatal(err)
	}
	v := s.Verdict(t.Context(), 0)
	r := v.Results[1]
	if v.Decision != rbl.Reject || !v.Settled || v.Score != 3 || r.Outcome != rbl.Listed || r.Check != rbl.CheckHelo ||
		r.Name != "spammer.example" || r.TXT != "https://dbl.test/spammer.example" {
		t.Errorf("verdict %s settled %v score %d, DBL result %+v", v.Decision, v.Settled, v.Score, r)
	}
	// Once each (the listed one twice: A and TXT).
	for name, want := range map[string]int{dbl("mail.spammer.example"): 1, dbl("spammer.example"): 2, zrd("mail.spammer.example"): 1, zrd("spammer.example"): 1} {
		e.srv.WaitQueries(t, name, want)
		if n := e.srv.Queries(name); n != want {
			t.Errorf("%s asked %d times, want %d", name, n, want)
		}
	}
	// The decision came with DBL's listing; ZRD's answers follow.
	if r := settle(t, s).Results[2]; r.Outcome != rbl.NotListed || r.Check != rbl.CheckHelo || r.Name != "mail.spammer.example" {
		t.Errorf("ZRD result %+v, want not listed for the HELO name", r)
	}
}

// A list entry adds its weight once however many of its names are listed,
// like a postscreen pattern matching several A records; DNS is asked once
// per distinct name, whatever asks it.
func TestSessionCountsAnEntryOnce(t *testing.T) {
	e := domainEnv(t, 9, rbl.Options{})
	s := e.c.Start(cleanClient)
	s.Ask(rbl.CheckClient, "bad.host.example")
	s.Ask(rbl.CheckReverseClient, "bad.host.example")
	s.Ask(rbl.CheckHelo, "mx.spammer.example")
	s.Ask(rbl.CheckSender, "<user@spammer.example>")
	v := settle(t, s)
	if v.Score != 3 || v.Results[1].Weight != 3 || v.Decision != rbl.Accept {
		t.Errorf("score %d, DBL weight %d, decision %s; want 3, 3, accept", v.Score, v.Results[1].Weight, v.Decision)
	}
	// Client and PTR name are one name; the sender domain is the HELO
	// name's registered domain. (Listed names are asked for TXT too.)
	for name, want := range map[string]int{dbl("bad.host.example"): 2, dbl("host.example"): 1, dbl("spammer.example"): 2, zrd("spammer.example"): 1} {
		if n := e.srv.Queries(name); n != want {
			t.Errorf("%s asked %d times, want %d", name, n, want)
		}
	}
	// Filters with their own weight add it once more: the names' codes
	// count as the records of one answer.
	s = e.c.Start(cleanClient)
	s.Ask(rbl.CheckHelo, "mx.spammer.example")
	s.Ask(rbl.CheckSender, "a@abused.example")
	if v := settle(t, s); v.Score != 4 || len(v.Results[1].Codes) != 2 {
		t.Errorf("listed and abused names: score %d codes %v, want 3+1 and both codes", v.Score, v.Results[1].Codes)
	}
}

// settle waits until every lookup of s has answered and returns the
// verdict then.
func settle(t *testing.T, s *rbl.Session) rbl.Verdict {
	t.Helper()
	s.Verdict(t.Context(), 0)
	var v rbl.Verdict
	testutil.WaitFor(t, "every lookup of the session to answer", func() bool {
		v = s.Peek(0)
		return !v.Early
	})
	return v
}

// The decision grows with the session: what is certain at which stage, and
// when the names still to come could change it.
func TestSessionStages(t *testing.T) {
	e := domainEnv(t, 3, rbl.Options{})
	type step struct {
		check    rbl.Check
		name     string
		open     rbl.CheckSet
		decision rbl.Decision
		settled  bool
	}
	for _, tt := range []struct {
		name   string
		client string
		steps  []step
	}{
		{"listed address: certain at connect", "192.0.2.66", []step{
			{rbl.CheckClient, "", afterConn, rbl.Reject, true},
		}},
		{"listed client name: certain at connect", "198.51.100.1", []step{
			{rbl.CheckClient, "bad.host.example", afterConn, rbl.Reject, true},
		}},
		{"clean client: HELO and sender could still list it", "198.51.100.1", []step{
			{rbl.CheckClient, "good.example", afterConn, rbl.Accept, false},
			{rbl.CheckHelo, "mx.good.example", afterHelo, rbl.Accept, false},
			{rbl.CheckSender, "a@good.example", 0, rbl.Accept, true},
		}},
		{"listed HELO: refused at HELO", "198.51.100.1", []step{
			{rbl.CheckClient, "", afterConn, rbl.Accept, false},
			{rbl.CheckHelo, "mx.spammer.example", afterHelo, rbl.Reject, true},
		}},
		{"listed sender: refused at MAIL", "198.51.100.1", []step{
			{rbl.CheckClient, "", afterConn, rbl.Accept, false},
			{rbl.CheckHelo, "mx.good.example", afterHelo, rbl.Accept, false},
			{rbl.CheckSender, "a@new.example", 0, rbl.Accept, true},
			{rbl.CheckSender, "a@spammer.example", 0, rbl.Reject, true},
			// The next transaction's sender replaces it.
			{rbl.CheckSender, "b@good.example", 0, rbl.Accept, true},
		}},
		{"ZRD and abused DBL together reach the threshold", "198.51.100.1", []step{
			{rbl.CheckHelo, "new.example", afterHelo, rbl.Accept, false},
			{rbl.CheckSender, "x@abused.example", 0, rbl.Reject, true},
		}},
		{"null sender and address literals ask nothing", "198.51.100.1", []step{
			{rbl.CheckHelo, "[198.51.100.1]", afterHelo, rbl.Accept, false},
			{rbl.CheckSender, "<>", 0, rbl.Accept, true},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := e.c.Start(ip(tt.client))
			for i, st := range tt.steps {
				s.Ask(st.check, st.name)
				v := s.Verdict(t.Context(), st.open)
				if v.Decision != st.decision || v.Settled != st.settled {
					t.Errorf("step %d (%s %q, open %s): %s settled %v, want %s settled %v; results %v",
						i+1, st.check, st.name, st.open, v.Decision, v.Settled, st.decision, st.settled, outcomes(v))
				}
			}
		})
	}
	// With a threshold the domain lists cannot reach together, a clean
	// client is settled at connect already.
	e = domainEnv(t, 7, rbl.Options{})
	if v := e.c.Start(cleanClient).Verdict(t.Context(), afterConn); v.Decision != rbl.Accept || !v.Settled {
		t.Errorf("threshold 7: %s settled %v, want a settled accept at connect", v.Decision, v.Settled)
	}
	// A listed sender is refused, but another transaction could send a
	// clean one: the session is not settled for the senders to come.
	e = domainEnv(t, 3, rbl.Options{})
	s := e.c.Start(cleanClient)
	s.Ask(rbl.CheckHelo, "mx.good.example")
	s.Ask(rbl.CheckSender, "a@spammer.example")
	if v := s.Verdict(t.Context(), 0); v.Decision != rbl.Reject || s.Settled(afterHelo) {
		t.Errorf("listed sender: %s, settled for later senders %v; want reject, false", v.Decision, s.Settled(afterHelo))
	}
}

func TestSessionRefusesUnaskableNames(t *testing.T) {
	rec := &recorder{}
	e := domainEnv(t, 3, rbl.Options{Observer: rec})
	s := e.c.Start(cleanClient)
	for _, tt := range []struct {
		check rbl.Check
		name  string
	}{
		{rbl.CheckSender, "<>"},
		{rbl.CheckSender, "postmaster"},
		{rbl.CheckHelo, "[192.0.2.1]"},
		{rbl.CheckHelo, "localhost"},
		{rbl.CheckHelo, "mx\r\nspammer.example"},
		{rbl.CheckClient, "unknown"},
	} {
		if err := s.Ask(tt.check, tt.name); err == nil {
			t.Errorf("Ask(%s, %q) asked it", tt.check, tt.name)
		}
	}
	if err := s.Ask(rbl.CheckIP, "192.0.2.1"); err == nil {
		t.Error("Ask(CheckIP) accepted")
	}
	v := s.Verdict(t.Context(), 0)
	if n := e.srv.TotalQueries(); n != 1 {
		t.Errorf("%d queries, want only zen.test's", n)
	}
	if v.Results[1].Outcome != rbl.NoName || v.Results[2].Outcome != rbl.NoName || v.Decision != rbl.Accept {
		t.Errorf("results %v decision %s", outcomes(v), v.Decision)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.lookups) != 1 {
		t.Errorf("the observer heard %d lookups, want zen.test's only", len(rec.lookups))
	}
}

// Peek takes what is in; Verdict waits for the rest.
func TestSessionPeekDoesNotWait(t *testing.T) {
	e := domainEnv(t, 3, rbl.Options{})
	release := make(chan struct{})
	e.srv.Set(dbl("slow.example"), rbltest.A("127.0.1.2"), rbltest.Hold(release))
	s := e.c.Start(cleanClient)
	s.Ask(rbl.CheckHelo, "slow.example")
	if v := s.Peek(afterHelo); v.Settled || v.Results[1].Outcome != rbl.Pending || !v.Early {
		t.Errorf("peek before the answer: settled %v, DBL %s", v.Settled, v.Results[1].Outcome)
	}
	close(release)
	if v := s.Verdict(t.Context(), afterHelo); v.Decision != rbl.Reject || !v.Settled || v.Results[1].Name != "slow.example" {
		t.Errorf("verdict after the answer: %s settled %v %+v", v.Decision, v.Settled, v.Results[1])
	}
	// Cached now: a new session sees it at once.
	s = e.c.Start(cleanClient)
	s.Ask(rbl.CheckHelo, "slow.example")
	if v := s.Peek(afterHelo); v.Decision != rbl.Reject || !v.Results[1].Cached {
		t.Errorf("cached peek: %s %+v", v.Decision, v.Results[1])
	}
}

// A name lookup that outlives the caller's deadline is a timeout for the
// session, handled by the list's failure policy.
func TestSessionNameTimeout(t *testing.T) {
	lists := domainLists(t)
	lists[1].OnError = rbl.FailTempfail
	e := newEnv(t, rbl.Config{Lists: lists, Threshold: 3}, rbl.Options{})
	e.srv.Set(dbl("silent.example"), rbltest.Silent())
	s := e.c.Start(cleanClient)
	s.Ask(rbl.CheckHelo, "silent.example")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	v := s.Verdict(ctx, 0)
	if v.Decision != rbl.Tempfail || v.Results[1].Outcome != rbl.Timeout || !errors.Is(v.Results[1].Err, rbl.ErrTimeout) {
		t.Errorf("%s, DBL %+v", v.Decision, v.Results[1])
	}
	// It stays a timeout: a later stage does not wait for it again.
	s.Ask(rbl.CheckSender, "a@good.example")
	if v := s.Verdict(t.Context(), 0); v.Decision != rbl.Tempfail || v.Results[1].Outcome != rbl.Timeout {
		t.Errorf("next stage: %s, DBL %s", v.Decision, v.Results[1].Outcome)
	}
}

// Error codes of domain lists are never listings, and make the list
// unhealthy at once.
func TestSessionDomainErrorCodes(t *testing.T) {
	rec := &recorder{}
	e := domainEnv(t, 1, rbl.Options{Observer: rec, Health: rec})
	s := e.c.Start(cleanClient)
	s.Ask(rbl.CheckHelo, "errcode.example")
	s.Ask(rbl.CheckSender, "a@zrderr.example")
	v := s.Verdict(t.Context(), 0)
	if v.Decision != rbl.Accept || v.Results[1].Outcome != rbl.Refused || v.Results[2].Outcome != rbl.Refused {
		t.Errorf("%s %v", v.Decision, outcomes(v))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var refused []string
	for _, o := range rec.observed {
		if o == "DBL refused [127.0.1.255]" || o == "ZRD refused [127.0.2.255]" {
			refused = append(refused, o)
		}
	}
	if len(refused) != 2 {
		t.Errorf("health observed %q, want both error codes", rec.observed)
	}
}

// The Observer hears one result per list entry, check and name, with the
// check and the name; Metrics labels them by check.
func TestSessionReportsEachNameLookup(t *testing.T) {
	rec := &recorder{}
	e := domainEnv(t, 10, rbl.Options{Observer: rec})
	s := e.c.Start(cleanClient)
	s.Ask(rbl.CheckHelo, "mx.spammer.example")
	s.Ask(rbl.CheckSender, "a@spammer.example")
	v := s.Verdict(t.Context(), 0)
	testutil.WaitFor(t, "seven lookups reported", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.lookups) == 7
	})
	rec.mu.Lock()
	var got []string
	for _, r := range rec.lookups {
		got = append(got, r.List.String()+" "+r.Check.String()+" "+r.Name+" "+r.Outcome.String())
	}
	rec.mu.Unlock()
	slices.Sort(got)
	want := []string{
		"DBL helo mx.spammer.example not_listed",
		"DBL helo spammer.example listed",
		"DBL sender spammer.example listed",
		"ZRD helo mx.spammer.example not_listed",
		"ZRD helo spammer.example not_listed",
		"ZRD sender spammer.example not_listed",
		"zen.test ip  not_listed",
	}
	if !slices.Equal(got, want) {
		t.Errorf("lookups heard:\n%q\nwant\n%q", got, want)
	}
	if len(rec.verdicts) != 1 || rec.verdicts[0].Score != v.Score {
		t.Errorf("verdicts heard: %d", len(rec.verdicts))
	}

	reg := prometheus.NewRegistry()
	m, err := rbl.NewMetrics(reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.lookups {
		m.LookupDone(r)
	}
	mustMetric(t, reg, 1, "rblmilter_lookups_total", "list", "DBL", "check", "helo", "outcome", "listed")
	mustMetric(t, reg, 1, "rblmilter_lookups_total", "list", "DBL", "check", "sender", "outcome", "listed")
	mustMetric(t, reg, 2, "rblmilter_lookups_total", "list", "ZRD", "check", "helo", "outcome", "not_listed")
	mustMetric(t, reg, 1, "rblmilter_listed_total", "list", "DBL", "check", "helo", "code", "127.0.1.2")
	mustMetric(t, reg, 1, "rblmilter_lookups_total", "list", "zen.test", "check", "ip", "outcome", "not_listed")
}

func TestForgeableAllowlistIsRefused(t *testing.T) {
	for _, tt := range []struct {
		list rbl.List
		msg  string
	}{
		{rbl.List{Zone: "dwl.test", Type: rbl.DomainList, Weight: -2},
			`rbl: list 1 (dwl.test): negative weight -2 on checks helo, sender: a client can claim any HELO name, sender domain or PTR name, so it could allowlist itself; a domain allowlist may only check "client" (the verified client name)`},
		{rbl.List{Zone: "dwl.test", Type: rbl.DomainList, Weight: 1, Checks: rbl.Checks(rbl.CheckReverseClient), Filters: filters(t, "127.0.2.0/24*-1")},
			`rbl: list 1 (dwl.test): negative weight -1 on checks reverse_client: a client can claim any HELO name, sender domain or PTR name, so it could allowlist itself; a domain allowlist may only check "client" (the verified client name)`},
		{rbl.List{Zone: "zen.test", Checks: rbl.Checks(rbl.CheckHelo)},
			`rbl: list 1 (zen.test): checks helo: an IP list is asked about the client's address only`},
		{rbl.List{Zone: "dbl.test", Type: rbl.DomainList, Checks: rbl.Checks(rbl.CheckIP)},
			`rbl: list 1 (dbl.test): checks: a domain list is asked about names (client, reverse_client, helo, sender), not the address`},
	} {
		_, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{tt.list}}, rbl.Options{Resolver: resolver(t, "127.0.0.1:1")})
		if err == nil || err.Error() != tt.msg {
			t.Errorf("NewChecker error\n got %v\nwant %s", err, tt.msg)
		}
	}
	// On the verified client name, a domain allowlist is fine.
	dwl := rbl.List{Zone: "dwl.test", Type: rbl.DomainList, Weight: -2, Checks: rbl.Checks(rbl.CheckClient)}
	c, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{dwl}}, rbl.Options{Resolver: resolver(t, "127.0.0.1:1")})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
