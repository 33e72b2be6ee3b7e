package rbl_test

import (
	"testing"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// Lists for authenticated sessions: an AuthBL-like list is asked only once
// the client has authenticated and counts only then; the ordinary lists
// stop counting for it (their answers stay in the verdict, weightless),
// and a list for all sessions counts either way.
func TestSessionAuthenticatedLists(t *testing.T) {
	zen := site(t, "zen.test*3")
	authbl := site(t, "authbl.test*3")
	authbl.Sessions = rbl.SessionsAuthenticated
	all := site(t, "all.test*1")
	all.Sessions = rbl.SessionsAll
	// The same zone as zen, for authenticated sessions only: its own
	// query group, sharing zen's cache entry.
	zenAuth := site(t, "zen.test=127.0.0.9*3")
	zenAuth.Sessions = rbl.SessionsAuthenticated
	e := newEnv(t, rbl.Config{Lists: []rbl.List{zen, authbl, all, zenAuth}, Threshold: 3}, rbl.Options{})
	bot, spammer, both := ip("192.0.2.10"), ip("192.0.2.20"), ip("192.0.2.30")
	e.srv.Set(rbl.QueryName(bot, "authbl.test"), rbltest.A("127.0.0.2"))
	e.srv.Set(rbl.QueryName(spammer, "zen.test"), rbltest.A("127.0.0.2"))
	e.srv.Set(rbl.QueryName(both, "all.test"), rbltest.A("127.0.0.2"))
	e.srv.Set(rbl.QueryName(both, "zen.test"), rbltest.A("127.0.0.9"))

	// Not authenticated: AuthBL is not asked at all.
	s := e.c.Start(bot)
	v := s.Verdict(t.Context(), 0)
	if v.Decision != rbl.Accept || !v.Settled || v.Results[1].Outcome != rbl.NotAuthenticated || v.Results[3].Outcome != rbl.NotAuthenticated {
		t.Errorf("unauthenticated bot: %s settled %v, results %v", v.Decision, v.Settled, outcomes(v))
	}
	if n := e.srv.Queries(rbl.QueryName(bot, "authbl.test")); n != 0 {
		t.Errorf("AuthBL asked %d times before the client authenticated", n)
	}
	// Authenticated: asked, and it counts.
	s.Authenticated(true)
	v = s.Verdict(t.Context(), 0)
	if v.Decision != rbl.Reject || !v.Settled || v.Score != 3 || v.Results[1].Outcome != rbl.Listed || v.Results[1].Weight != 3 {
		t.Errorf("authenticated bot: %s settled %v score %d, results %+v", v.Decision, v.Settled, v.Score, v.Results[1])
	}
	s.Authenticated(true)
	if n := e.srv.Queries(rbl.QueryName(bot, "authbl.test")); n != 1 {
		t.Errorf("AuthBL asked %d times, want once", n)
	}

	// A spammer that authenticates (a stolen password, but not in AuthBL)
	// is not refused by the ordinary list; its answer stays in view.
	s = e.c.Start(spammer)
	if v := s.Verdict(t.Context(), 0); v.Decision != rbl.Reject {
		t.Errorf("unauthenticated spammer: %s, want reject", v.Decision)
	}
	s.Authenticated(true)
	v = s.Verdict(t.Context(), 0)
	if r := v.Results[0]; v.Decision != rbl.Accept || v.Score != 0 || r.Outcome != rbl.Listed || r.Weight != 0 || r.Matched != 3 {
		t.Errorf("authenticated spammer: %s score %d, zen %+v; want accepted, zen listed but weightless", v.Decision, v.Score, r)
	}

	// A list for all sessions counts either way; the authenticated-only
	// entry of zen's zone is answered from the query zen's entry made.
	s = e.c.Start(both)
	if v := s.Verdict(t.Context(), 0); v.Decision != rbl.Reject || v.Results[0].Weight != 3 {
		t.Errorf("unauthenticated: %s, zen %+v; want zen's reject", v.Decision, v.Results[0])
	}
	s.Authenticated(true)
	v = s.Verdict(t.Context(), 0)
	if r := v.Results[3]; v.Decision != rbl.Reject || r.Outcome != rbl.Listed || r.Weight != 3 || !r.Cached || v.Results[0].Weight != 0 {
		t.Errorf("authenticated: %s, zen %+v, zen for authenticated %+v; want the cached answer counted by the second entry only", v.Decision, v.Results[0], r)
	}
	if n := e.srv.Queries(rbl.QueryName(both, "zen.test")); n != 1 {
		t.Errorf("zen.test asked %d times for one client, want once", n)
	}
}
