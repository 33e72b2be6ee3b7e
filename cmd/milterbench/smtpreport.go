package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
)

// smtpResult accumulates an "smtp" run, split by what the zones say about
// each client, because the figures that matter differ: how soon a listed
// client is refused, what a clean one pays, and whether either got the
// wrong treatment.
type smtpResult struct {
	Servers     string
	Concurrency int

	class [2]smtpClass // [0] clean, [1] listed

	mu sync.Mutex
	runTally
}

// smtpClass is the tally of one client class.
type smtpClass struct {
	greeting, refused, accepted histogram
	// Guarded by smtpResult.mu.
	sent, errors uint64
	outcomes     map[string]uint64
}

func newSMTPResult(cfg smtpConfig) *smtpResult {
	r := &smtpResult{
		Servers:     strings.Trim(cfg.Server4+","+cfg.Server6, ","),
		Concurrency: cfg.Concurrency,
		runTally:    newRunTally(),
	}
	for i := range r.class {
		r.class[i].outcomes = map[string]uint64{}
	}
	return r
}

func (r *smtpResult) add(pk pick, o smtpOutcome) {
	c := &r.class[0]
	if pk.Listed {
		c = &r.class[1]
	}
	if o.Err == nil {
		c.greeting.Record(o.Greeting)
		if o.Accepted {
			c.accepted.Record(o.Final)
		} else {
			c.refused.Record(o.Final)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c.sent++
	r.countClient(pk)
	switch {
	case o.Err != nil:
		if r.countFailure(o.ErrKind, o.Err, o.Aborted) {
			c.errors++
		}
	default:
		r.Sessions++
		c.outcomes[o.key()]++
	}
}

// smtpReport is the output of "smtp", also its -json form.
type smtpReport struct {
	Servers     string `json:"servers"`
	Concurrency int    `json:"concurrency"`
	runTotals
	Listed smtpClassReport `json:"listed"`
	Clean  smtpClassReport `json:"clean"`
	// ListedAccepted and CleanRefused are the wrong outcomes: spam let
	// in, mail lost (or delayed, for a 4xx).
	ListedAccepted uint64 `json:"listed_accepted"`
	CleanRefused   uint64 `json:"clean_refused"`
	runCounts
	// CPU is the watched process trees' CPU over the measured run, by the
	// names given with -cpu.
	CPU map[string]*treeReport `json:"cpu,omitempty"`
}

// smtpClassReport is one class: where its sessions ended and how fast.
type smtpClassReport struct {
	Sent     uint64            `json:"sent"`
	Errors   uint64            `json:"errors"`
	Accepted uint64            `json:"accepted"`
	Refused  uint64            `json:"refused"`
	Outcomes map[string]uint64 `json:"outcomes"`
	// Greeting is dial to complete greeting; RefusedAt dial to the
	// refusing reply; AcceptedAt dial to the 250 for the message.
	Greeting   latencySummary `json:"greeting_latency"`
	RefusedAt  latencySummary `json:"refused_latency"`
	AcceptedAt latencySummary `json:"accepted_latency"`
}

func (c *smtpClass) report() smtpClassReport {
	rep := smtpClassReport{
		Sent: c.sent, Errors: c.errors, Outcomes: c.outcomes,
		Greeting: summarize(&c.greeting), RefusedAt: summarize(&c.refused), AcceptedAt: summarize(&c.accepted),
	}
	for k, n := range c.outcomes {
		if k == "accepted" {
			rep.Accepted += n
		} else {
			rep.Refused += n
		}
	}
	return rep
}

func (r *smtpResult) report() *smtpReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &smtpReport{
		Servers:     r.Servers,
		Concurrency: r.Concurrency,
		runTotals:   r.totals(),
		Clean:       r.class[0].report(),
		Listed:      r.class[1].report(),
		runCounts:   r.counts(),
	}
	rep.ListedAccepted, rep.CleanRefused = rep.Listed.Accepted, rep.Clean.Refused
	return rep
}

// writeText prints the report for a terminal.
func (rep *smtpReport) writeText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("servers      %s  concurrency %d\n", rep.Servers, rep.Concurrency)
	rep.runTotals.writeText(w)
	for _, c := range []struct {
		name string
		r    *smtpClassReport
	}{{"listed", &rep.Listed}, {"clean", &rep.Clean}} {
		p("%-12s %d sent: %s%s\n", c.name, c.r.Sent, counts(c.r.Outcomes), errSuffix(c.r.Errors))
		p("  greeting   %s\n", c.r.Greeting)
		if c.r.Refused > 0 {
			p("  refused    %s\n", c.r.RefusedAt)
		}
		if c.r.Accepted > 0 {
			p("  accepted   %s\n", c.r.AcceptedAt)
		}
	}
	if rep.ListedAccepted > 0 || rep.CleanRefused > 0 {
		p("wrong        %d listed clients accepted, %d clean clients refused\n", rep.ListedAccepted, rep.CleanRefused)
	}
	rep.runCounts.writeText(w, "the fresh networks are exhausted")
	for _, name := range slices.Sorted(maps.Keys(rep.CPU)) {
		t := rep.CPU[name]
		p("cpu          %s (pid %d): %.3fs, %.3fs per 1000 sessions\n", name, t.PID, t.CPUSeconds, t.PerThousand)
	}
}
