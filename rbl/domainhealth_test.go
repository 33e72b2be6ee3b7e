package rbl_test

import (
	"testing"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// Domain lists are probed at their RFC 5782 §5 test points: "test" must be
// listed and "invalid" must not; neither the IP test points nor the
// canaries (addresses) are asked of them, and the evidence says what the
// two names got.
func TestMonitorProbesDomainLists(t *testing.T) {
	lists := []rbl.List{
		{Zone: "bad.test", Type: rbl.DomainList, Weight: 1, Monitor: true},
		{Zone: "good.test", Type: rbl.DomainList, Weight: 1, Monitor: true, Checks: rbl.Checks(rbl.CheckSender)},
	}
	e := newHealthEnv(t, lists, rbl.MonitorOptions{})
	e.good.Set("test.good.test", rbltest.A("127.0.1.2"))

	// No test entry: degraded, still counted.
	e.probe(t)
	if h := e.state(t, "bad.test"); h.State != rbl.HealthDegraded || h.Answer != "test → NXDOMAIN" {
		t.Errorf("bad.test without its test entry: %+v", h)
	}
	if h := e.state(t, "good.test"); h.State != rbl.HealthHealthy || h.Evidence != "test listed, invalid not listed" {
		t.Errorf("good.test: %+v", h)
	}
	if h := e.state(t, "bad.test"); h.Evidence != "test not listed, invalid not listed" {
		t.Errorf("bad.test's evidence: %q", h.Evidence)
	}
	// test and invalid, nothing else: no canary.
	if n, want := e.bad.TotalQueries(), e.bad.Queries("test.bad.test")+e.bad.Queries("invalid.bad.test"); n != 2 || want != 2 {
		t.Errorf("a domain list's probe round sent %d queries, %d of them test and invalid; want those 2 only", n, want)
	}

	// Listing everything ("invalid" too): unhealthy, and its listings do
	// not count.
	e.bad.SetDefault(rbltest.A("127.0.1.2"))
	e.probe(t)
	if h := e.state(t, "bad.test"); h.State != rbl.HealthUnhealthy || h.Answer != "invalid → A 127.0.1.2" ||
		h.Evidence != "test listed, invalid listed" {
		t.Errorf("bad.test listing the world: %+v", h)
	}
	s := e.c.Start(ip("198.51.100.1"))
	s.Ask(rbl.CheckHelo, "mx.example.org")
	if v := s.Verdict(t.Context(), 0); v.Decision != rbl.Accept || v.Results[0].Outcome != rbl.Disabled {
		t.Errorf("HELO on the sick list: %s %v", v.Decision, outcomes(v))
	}

	// Honest again: healthy, counted.
	e.bad.SetDefault()
	e.bad.Set("test.bad.test", rbltest.A("127.0.1.2"))
	e.bad.Set("spam.example.bad.test", rbltest.A("127.0.1.2"))
	e.probe(t)
	if h := e.state(t, "bad.test"); h.State != rbl.HealthHealthy {
		t.Errorf("bad.test honest again: %+v", h)
	}
	s = e.c.Start(ip("198.51.100.1"))
	s.Ask(rbl.CheckHelo, "spam.example")
	if v := s.Verdict(t.Context(), 0); v.Decision != rbl.Reject {
		t.Errorf("HELO on the healthy list: %s %v", v.Decision, outcomes(v))
	}
}
