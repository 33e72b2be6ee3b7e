package rbl_test

import (
	"context"
	"testing"
	"time"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// Without FetchTXT the verdict carries no text and no TXT query is sent;
// Session.TXT fetches the one asked for, once, and later sessions get it
// from the cache.
func TestSessionTXTFetchesOnlyTheTextAskedFor(t *testing.T) {
	// Threshold 2: both answers count, so neither is still out.
	e := newEnv(t, rbl.Config{Lists: []rbl.List{site(t, "a.test"), site(t, "b.test")}, Threshold: 2}, rbl.Options{})
	client := ip("192.0.2.70")
	for _, zone := range []string{"a.test", "b.test"} {
		e.srv.Set(rbl.QueryName(client, zone), rbltest.A("127.0.0.2"), rbltest.TXT("listed by "+zone))
	}
	s := e.c.Start(client)
	v := s.Verdict(context.Background(), 0)
	if v.Decision != rbl.Reject || v.Results[0].TXT != "" || v.Results[1].TXT != "" {
		t.Fatalf("verdict %s, texts %q %q: want a refusal without texts", v.Decision, v.Results[0].TXT, v.Results[1].TXT)
	}
	if got := s.TXT(context.Background(), &v.Results[1]); got != "listed by b.test" {
		t.Errorf("TXT of b.test = %q", got)
	}
	// One A query each, and one TXT query: b.test's.
	if a, b := e.srv.Queries(rbl.QueryName(client, "a.test")), e.srv.Queries(rbl.QueryName(client, "b.test")); a != 1 || b != 2 {
		t.Errorf("queries: a.test %d, b.test %d; want 1 and 2", a, b)
	}
	s2 := e.c.Start(client)
	v2 := s2.Verdict(context.Background(), 0)
	if got := s2.TXT(context.Background(), &v2.Results[1]); got != "listed by b.test" || !v2.Results[1].Cached {
		t.Errorf("second session: TXT %q, cached %v", got, v2.Results[1].Cached)
	}
	if n := e.srv.TotalQueries(); n != 3 {
		t.Errorf("%d queries in all, want 3: the second session's answers come from the cache", n)
	}
}

// A listed name's text is that name's TXT record in the domain list.
func TestSessionTXTOfADomainListing(t *testing.T) {
	dbl := rbl.List{Zone: "dbl.test", Type: rbl.DomainList, Weight: 1, Checks: rbl.Checks(rbl.CheckHelo)}
	e := newEnv(t, rbl.Config{Lists: []rbl.List{dbl}}, rbl.Options{})
	e.srv.Set("spam.example.dbl.test", rbltest.A("127.0.1.2"), rbltest.TXT("https://dbl.test/spam.example"))
	s := e.c.Start(ip("192.0.2.71"))
	if err := s.Ask(rbl.CheckHelo, "mail.spam.example"); err != nil {
		t.Fatal(err)
	}
	v := s.Verdict(context.Background(), 0)
	r := &v.Results[0]
	if v.Decision != rbl.Reject || r.Name != "spam.example" {
		t.Fatalf("verdict %s, listed name %q", v.Decision, r.Name)
	}
	if got := s.TXT(context.Background(), r); got != "https://dbl.test/spam.example" {
		t.Errorf("TXT = %q", got)
	}
}

// A text never holds up anything: a silent TXT record gives "" when the
// caller's context ends, and a result that is no listing asks nothing.
func TestSessionTXTWaitsNoLongerThanItsContext(t *testing.T) {
	e := newEnv(t, rbl.Config{Lists: []rbl.List{site(t, "bl.test")}, Timeout: time.Minute}, rbl.Options{})
	listed, clean := ip("192.0.2.72"), ip("192.0.2.73")
	name := rbl.QueryName(listed, "bl.test")
	e.srv.Set(name, rbltest.A("127.0.0.2"))
	e.c.Check(context.Background(), listed)
	// The listing is cached; from now on the server answers nothing.
	e.srv.Set(name, rbltest.Silent())
	s := e.c.Start(listed)
	v := s.Verdict(context.Background(), 0)
	if v.Decision != rbl.Reject {
		t.Fatalf("verdict %s %v: the listing must not wait for its text", v.Decision, outcomes(v))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if got := s.TXT(ctx, &v.Results[0]); got != "" || ctx.Err() == nil {
		t.Errorf("TXT = %q, context error %v: want \"\" once the context ended", got, ctx.Err())
	}

	sc := e.c.Start(clean)
	vc := sc.Verdict(context.Background(), 0)
	before := e.srv.TotalQueries()
	if got := sc.TXT(context.Background(), &vc.Results[0]); got != "" || e.srv.TotalQueries() != before {
		t.Errorf("clean client: TXT %q after %d more queries, want \"\" and none", got, e.srv.TotalQueries()-before)
	}
}
