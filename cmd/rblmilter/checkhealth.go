package main

import (
	"context"

	"github.com/rblmilter/rblmilter/rbl"
)

// probeOnce runs one health probe round over checker's lists before
// `rblmilter check` looks anything up, so that the check counts the lists
// the daemon would.
func probeOnce(ctx context.Context, monitor *rbl.Monitor, resolver rbl.Resolver, checker *rbl.Checker) {
	if err := monitor.Configure(rbl.MonitorConfig{Resolver: resolver, Lists: checker.Config().Lists}); err != nil {
		return
	}
	monitor.Probe(ctx)
}

// addHealth fills in each list's health and query count; health is in
// configuration order, as r.Lists is.
func addHealth(r *checkReport, health []rbl.ListHealth) {
	if len(health) != len(r.Lists) {
		// An address decided by the policy's networks has no lists.
		return
	}
	for i := range r.Lists {
		h := health[i]
		l := &r.Lists[i]
		l.Health = h.State.String()
		l.HealthEvidence = h.Evidence
		l.Queries, l.DailyQueries = h.Queries, h.DailyQueries
		switch {
		case h.State == rbl.HealthUnmonitored:
			l.HealthReason = "not probed (monitor = false)"
		case h.Reason != "":
			l.HealthReason = h.Reason + "; answer: " + h.Answer
		}
	}
}
