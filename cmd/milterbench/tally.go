package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// maxErrorSamples bounds the distinct error messages kept for the report.
const maxErrorSamples = 5

// runTally is what "run" and "smtp" count alike about a run: sessions,
// the client address mix, the failures, the warm-up and the time taken.
// Its owner's mutex guards it.
type runTally struct {
	Sessions     uint64 // sessions that ran to a verdict or outcome
	Errors       uint64
	Aborted      uint64
	IPv4, IPv6   uint64
	Repeated     uint64
	Fresh        uint64
	Reused       uint64 // fresh sessions whose address space wrapped
	ErrorKinds   map[string]uint64
	ErrorSamples []string

	WarmupSessions uint64
	WarmupErrors   uint64
	Elapsed        time.Duration
	Interrupted    bool
}

func newRunTally() runTally { return runTally{ErrorKinds: map[string]uint64{}} }

// countClient counts pk in the address mix.
func (t *runTally) countClient(pk pick) {
	if pk.Addr.Is6() {
		t.IPv6++
	} else {
		t.IPv4++
	}
	if pk.Repeated {
		t.Repeated++
	} else {
		t.Fresh++
	}
	if pk.Reused {
		t.Reused++
	}
}

// countFailure counts a session that ended in err at step kind: aborted
// when the run was cut, else an error, kept by kind with a few samples.
// It reports whether it was an error (the caller's class counts it too).
func (t *runTally) countFailure(kind string, err error, aborted bool) bool {
	if aborted {
		t.Aborted++
		return false
	}
	t.Errors++
	t.ErrorKinds[errKindOf(kind, err)]++
	if msg := kind + ": " + err.Error(); len(t.ErrorSamples) < maxErrorSamples && !slices.Contains(t.ErrorSamples, msg) {
		t.ErrorSamples = append(t.ErrorSamples, msg)
	}
	return true
}

// tallied is a run's result: it adds each session's outcome O and holds
// the runTally.
type tallied[O any] interface {
	add(pk pick, o O)
	tally() *runTally
}

func (t *runTally) tally() *runTally { return t }

// measure drives plan's sessions, the warm-up into a result of its own
// and the measured run into the one it returns.
func measure[O any, R tallied[O]](ctx context.Context, plan drivePlan, newResult func() R, session func(i uint64, pk pick) O) R {
	res, warm := newResult(), newResult()
	elapsed := drive(ctx, plan,
		func(p uint64, pk pick) { warm.add(pk, session(p, pk)) },
		func(i uint64, pk pick) { res.add(pk, session(i, pk)) })
	res.tally().finish(ctx, elapsed, warm.tally())
	return res
}

// finish records the end of the measured run: how long it took, what the
// warm-up (tallied apart) did, and whether ctx cut it.
func (t *runTally) finish(ctx context.Context, elapsed time.Duration, warm *runTally) {
	t.Elapsed = elapsed
	t.WarmupSessions = warm.Sessions + warm.Errors
	t.WarmupErrors = warm.Errors
	t.Interrupted = ctx.Err() != nil
}

// runTotals are the run's head figures in both reports.
type runTotals struct {
	ElapsedSeconds float64 `json:"elapsed_s"`
	Interrupted    bool    `json:"interrupted,omitempty"`
	Sessions       uint64  `json:"sessions"`
	Rate           float64 `json:"sessions_per_s"`
}

// runCounts are the figures both reports end with: the mix, the failures,
// the warm-up and the generator's own CPU (filled in by the command).
type runCounts struct {
	Mix          mixReport         `json:"mix"`
	Errors       uint64            `json:"errors"`
	Aborted      uint64            `json:"aborted,omitempty"`
	ErrorKinds   map[string]uint64 `json:"error_kinds,omitempty"`
	ErrorSamples []string          `json:"error_samples,omitempty"`
	Warmup       *warmupReport     `json:"warmup,omitempty"`
	Client       cpuReport         `json:"client"`
}

type mixReport struct {
	IPv4     uint64 `json:"ipv4"`
	IPv6     uint64 `json:"ipv6"`
	Repeated uint64 `json:"repeated"`
	Fresh    uint64 `json:"fresh"`
	Reused   uint64 `json:"fresh_reused,omitempty"`
}

type warmupReport struct {
	Sessions uint64 `json:"sessions"`
	Errors   uint64 `json:"errors"`
}

// cpuReport is the generator's own CPU use: on a small machine it competes
// with the target, and the reader must know by how much.
type cpuReport struct {
	CPUSeconds    float64 `json:"cpu_s"`
	CPUPerSession float64 `json:"cpu_us_per_session"`
}

// clientCPU is the generator's CPU since start, over sessions.
func clientCPU(start time.Duration, sessions uint64) cpuReport {
	c := cpuReport{CPUSeconds: (selfCPU() - start).Seconds()}
	if sessions > 0 {
		c.CPUPerSession = c.CPUSeconds * 1e6 / float64(sessions)
	}
	return c
}

// rate is completed sessions per second of the measured run.
func (t *runTally) rate() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Sessions) / t.Elapsed.Seconds()
}

func (t *runTally) totals() runTotals {
	return runTotals{ElapsedSeconds: t.Elapsed.Seconds(), Interrupted: t.Interrupted, Sessions: t.Sessions, Rate: t.rate()}
}

func (t *runTally) counts() runCounts {
	c := runCounts{
		Mix:    mixReport{IPv4: t.IPv4, IPv6: t.IPv6, Repeated: t.Repeated, Fresh: t.Fresh, Reused: t.Reused},
		Errors: t.Errors, Aborted: t.Aborted, ErrorKinds: t.ErrorKinds, ErrorSamples: t.ErrorSamples,
	}
	if t.WarmupSessions > 0 {
		c.Warmup = &warmupReport{Sessions: t.WarmupSessions, Errors: t.WarmupErrors}
	}
	return c
}

// writeText prints the shared tail of both reports; exhausted says what
// a wrapped fresh address space means for this kind of run.
func (c *runCounts) writeText(w io.Writer, exhausted string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("mix          ipv4 %d, ipv6 %d; repeated %d, fresh %d\n", c.Mix.IPv4, c.Mix.IPv6, c.Mix.Repeated, c.Mix.Fresh)
	if c.Mix.Reused > 0 {
		p("warning      %d fresh sessions reused an address: %s\n", c.Mix.Reused, exhausted)
	}
	if c.Warmup != nil {
		p("warm-up      %d sessions, %d errors (not counted above)\n", c.Warmup.Sessions, c.Warmup.Errors)
	}
	p("errors       %d", c.Errors)
	if len(c.ErrorKinds) > 0 {
		p(" (%s)", counts(c.ErrorKinds))
	}
	p("\n")
	for _, s := range c.ErrorSamples {
		p("  e.g. %s\n", s)
	}
	if c.Aborted > 0 {
		p("aborted      %d sessions cut by the interrupt\n", c.Aborted)
	}
	p("client cpu   %.2fs (%.1fµs/session)\n", c.Client.CPUSeconds, c.Client.CPUPerSession)
}

// writeText prints the totals, below the report's first line.
func (t *runTotals) writeText(w io.Writer) {
	state := ""
	if t.Interrupted {
		state = "  (interrupted)"
	}
	fmt.Fprintf(w, "sessions     %d in %.3fs%s\n", t.Sessions, t.ElapsedSeconds, state)
	fmt.Fprintf(w, "throughput   %.1f sessions/s\n", t.Rate)
}
