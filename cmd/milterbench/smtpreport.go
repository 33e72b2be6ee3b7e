package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// smtpResult accumulates an "smtp" run, split by what the zones say about
// each client, because the figures that matter differ: how soon a listed
// client is refused, what a clean one pays, and whether either got the
// wrong treatment.
type smtpResult struct {
	Servers     string
	Concurrency int

	class [2]smtpClass // [0] clean, [1] listed

	mu           sync.Mutex
	Sessions     uint64 // sessions that ran to an outcome
	Errors       uint64
	Aborted      uint64
	IPv4, IPv6   uint64
	Repeated     uint64
	Fresh        uint64
	Reused       uint64
	ErrorKinds   map[string]uint64
	ErrorSamples []string

	WarmupSessions uint64
	WarmupErrors   uint64
	Elapsed        time.Duration
	Interrupted    bool
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
		ErrorKinds:  map[string]uint64{},
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
	if pk.Addr.Is6() {
		r.IPv6++
	} else {
		r.IPv4++
	}
	if pk.Repeated {
		r.Repeated++
	} else {
		r.Fresh++
	}
	if pk.Reused {
		r.Reused++
	}
	switch {
	case o.Err != nil && o.Aborted:
		r.Aborted++
	case o.Err != nil:
		r.Errors++
		c.errors++
		r.ErrorKinds[errKindOf(o.ErrKind, o.Err)]++
		if msg := o.ErrKind + ": " + o.Err.Error(); len(r.ErrorSamples) < maxErrorSamples && !slices.Contains(r.ErrorSamples, msg) {
			r.ErrorSamples = append(r.ErrorSamples, msg)
		}
	default:
		r.Sessions++
		c.outcomes[o.key()]++
	}
}

// smtpReport is the output of "smtp", also its -json form.
type smtpReport struct {
	Servers        string          `json:"servers"`
	Concurrency    int             `json:"concurrency"`
	ElapsedSeconds float64         `json:"elapsed_s"`
	Interrupted    bool            `json:"interrupted,omitempty"`
	Sessions       uint64          `json:"sessions"`
	Rate           float64         `json:"sessions_per_s"`
	Listed         smtpClassReport `json:"listed"`
	Clean          smtpClassReport `json:"clean"`
	// ListedAccepted and CleanRefused are the wrong outcomes: spam let
	// in, mail lost (or delayed, for a 4xx).
	ListedAccepted uint64            `json:"listed_accepted"`
	CleanRefused   uint64            `json:"clean_refused"`
	Mix            mixReport         `json:"mix"`
	Errors         uint64            `json:"errors"`
	Aborted        uint64            `json:"aborted,omitempty"`
	ErrorKinds     map[string]uint64 `json:"error_kinds,omitempty"`
	ErrorSamples   []string          `json:"error_samples,omitempty"`
	Warmup         *warmupReport     `json:"warmup,omitempty"`
	Client         cpuReport         `json:"client"`
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
		Servers:        r.Servers,
		Concurrency:    r.Concurrency,
		ElapsedSeconds: r.Elapsed.Seconds(),
		Interrupted:    r.Interrupted,
		Sessions:       r.Sessions,
		Clean:          r.class[0].report(),
		Listed:         r.class[1].report(),
		Mix:            mixReport{IPv4: r.IPv4, IPv6: r.IPv6, Repeated: r.Repeated, Fresh: r.Fresh, Reused: r.Reused},
		Errors:         r.Errors,
		Aborted:        r.Aborted,
		ErrorKinds:     r.ErrorKinds,
		ErrorSamples:   r.ErrorSamples,
	}
	rep.ListedAccepted, rep.CleanRefused = rep.Listed.Accepted, rep.Clean.Refused
	if r.Elapsed > 0 {
		rep.Rate = float64(r.Sessions) / r.Elapsed.Seconds()
	}
	if r.WarmupSessions > 0 {
		rep.Warmup = &warmupReport{Sessions: r.WarmupSessions, Errors: r.WarmupErrors}
	}
	return rep
}

// writeText prints the report for a terminal.
func (rep *smtpReport) writeText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("servers      %s  concurrency %d\n", rep.Servers, rep.Concurrency)
	state := ""
	if rep.Interrupted {
		state = "  (interrupted)"
	}
	p("sessions     %d in %.3fs%s\n", rep.Sessions, rep.ElapsedSeconds, state)
	p("throughput   %.1f sessions/s\n", rep.Rate)
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
	p("mix          ipv4 %d, ipv6 %d; repeated %d, fresh %d\n", rep.Mix.IPv4, rep.Mix.IPv6, rep.Mix.Repeated, rep.Mix.Fresh)
	if rep.Mix.Reused > 0 {
		p("warning      %d fresh sessions reused an address: the fresh networks are exhausted\n", rep.Mix.Reused)
	}
	if rep.Warmup != nil {
		p("warm-up      %d sessions, %d errors (not counted above)\n", rep.Warmup.Sessions, rep.Warmup.Errors)
	}
	p("errors       %d", rep.Errors)
	if len(rep.ErrorKinds) > 0 {
		p(" (%s)", counts(rep.ErrorKinds))
	}
	p("\n")
	for _, s := range rep.ErrorSamples {
		p("  e.g. %s\n", s)
	}
	if rep.Aborted > 0 {
		p("aborted      %d sessions cut by the interrupt\n", rep.Aborted)
	}
	p("client cpu   %.2fs (%.1fµs/session)\n", rep.Client.CPUSeconds, rep.Client.CPUPerSession)
	for _, name := range slices.Sorted(maps.Keys(rep.CPU)) {
		t := rep.CPU[name]
		p("cpu          %s (pid %d): %.3fs, %.3fs per 1000 sessions\n", name, t.PID, t.CPUSeconds, t.PerThousand)
	}
}
