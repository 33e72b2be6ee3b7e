package rbl_test

import (
	"testing"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// Domain lists are probed at their RFC 5782 §5 test points: "test" must be
// listed and "invalid" must not; IP test points are not asked of them.
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
	if h := e.state(t, "good.test"); h.State != rbl.HealthHealthy {
		t.Errorf("good.test: %+v", h)
	}
	if n := e.bad.Queries(rbl.QueryName(ip("127.0.0.2"), "bad.test")); n != 0 {
		t.Errorf("a domain list was asked its IP test entry %d times", n)
	}

	// Listing everything ("invalid" too): unhealthy, and its listings do
	// not count.
	e.bad.SetDefault(rbltest.A("127.0.1.2"))
	e.probe(t)
	if h := e.state(t, "bad.test"); h.State != rbl.HealthUnhealthy || h.Answer != "invalid → A 127.0.1.2" {
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
