package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadResult accumulates a run. Latencies go to lock-free histograms; the
// counters share one mutex, which costs far less than a milter round trip.
type loadResult struct {
	Target      string
	Concurrency int
	Stage       stage

	sessionLat  histogram
	decisionLat histogram

	mu sync.Mutex
	runTally
	Verdicts map[string]uint64
	At       map[string]uint64 // stage that gave the final verdict
	Mods     map[string]uint64 // modifications asked for at end of message
	Class    [2]classTally     // [0] clean, [1] listed
}

// classTally splits outcomes by what the DNS zones say about the address,
// so a wrong verdict (a listed client passed, a clean one rejected) shows.
type classTally struct {
	Sent     uint64            `json:"sent"`
	Errors   uint64            `json:"errors"`
	Verdicts map[string]uint64 `json:"verdicts"`
}

func newLoadResult(cfg loadConfig) *loadResult {
	return &loadResult{
		Target:      cfg.Target.String(),
		Concurrency: cfg.Concurrency,
		Stage:       cfg.Stage,
		runTally:    newRunTally(),
		Verdicts:    map[string]uint64{},
		At:          map[string]uint64{},
		Mods:        map[string]uint64{},
		Class:       [2]classTally{{Verdicts: map[string]uint64{}}, {Verdicts: map[string]uint64{}}},
	}
}

func (r *loadResult) add(pk pick, o outcome) {
	if o.Err == nil {
		r.sessionLat.Record(o.Total)
		r.decisionLat.Record(o.Decision)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.Class[0]
	if pk.Listed {
		c = &r.Class[1]
	}
	c.Sent++
	r.countClient(pk)
	switch {
	case o.Err != nil:
		if r.countFailure(o.ErrKind, o.Err, o.Aborted) {
			c.Errors++
		}
	default:
		r.Sessions++
		r.Verdicts[o.Verdict]++
		c.Verdicts[o.Verdict]++
		r.At[o.At.String()]++
		for k, n := range o.Mods {
			r.Mods[k] += n
		}
	}
}

// latencySummary is a histogram reduced to the figures the report prints.
type latencySummary struct {
	P50  time.Duration
	P90  time.Duration
	P99  time.Duration
	P999 time.Duration
	Max  time.Duration
	Mean time.Duration
}

func summarize(h *histogram) latencySummary {
	return latencySummary{
		P50: h.Percentile(50), P90: h.Percentile(90), P99: h.Percentile(99), P999: h.Percentile(99.9),
		Max: h.Max(), Mean: h.Mean(),
	}
}

// MarshalJSON writes milliseconds, the unit admins read latencies in.
func (l latencySummary) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
	return json.Marshal(map[string]float64{
		"p50_ms": ms(l.P50), "p90_ms": ms(l.P90), "p99_ms": ms(l.P99), "p99.9_ms": ms(l.P999),
		"max_ms": ms(l.Max), "mean_ms": ms(l.Mean),
	})
}

// runReport is the whole output of "run", also its -json form.
type runReport struct {
	Target      string `json:"target"`
	Concurrency int    `json:"concurrency"`
	Stage       string `json:"stage"`
	runTotals
	SessionLatency latencySummary    `json:"session_latency"`
	Decision       latencySummary    `json:"decision_latency"`
	Verdicts       map[string]uint64 `json:"verdicts"`
	At             map[string]uint64 `json:"verdict_stage"`
	Mods           map[string]uint64 `json:"modifications,omitempty"`
	Listed         classTally        `json:"listed"`
	Clean          classTally        `json:"clean"`
	runCounts
	TargetProcess *processReport `json:"target_process,omitempty"`
	Profile       *profileReport `json:"profile,omitempty"`
	Metrics       *metricsReport `json:"target_metrics,omitempty"`
}

func (r *loadResult) report() *runReport {
	return &runReport{
		Target:         r.Target,
		Concurrency:    r.Concurrency,
		Stage:          r.Stage.String(),
		runTotals:      r.totals(),
		SessionLatency: summarize(&r.sessionLat),
		Decision:       summarize(&r.decisionLat),
		Verdicts:       r.Verdicts,
		At:             r.At,
		Mods:           r.Mods,
		Clean:          r.Class[0],
		Listed:         r.Class[1],
		runCounts:      r.counts(),
	}
}

// writeText prints the report for a terminal.
func (rep *runReport) writeText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("target       %s  concurrency %d  stage %s\n", rep.Target, rep.Concurrency, rep.Stage)
	rep.runTotals.writeText(w)
	p("session      %s\n", rep.SessionLatency)
	p("decision     %s\n", rep.Decision)
	p("verdicts     %s\n", counts(rep.Verdicts))
	if rep.Stage != stageConnect.String() {
		p("decided at   %s\n", counts(rep.At))
	}
	if rep.Stage == stageEOM.String() {
		p("modified     %s\n", counts(rep.Mods))
	}
	p("  listed IPs %d sent: %s%s\n", rep.Listed.Sent, counts(rep.Listed.Verdicts), errSuffix(rep.Listed.Errors))
	p("  clean IPs  %d sent: %s%s\n", rep.Clean.Sent, counts(rep.Clean.Verdicts), errSuffix(rep.Clean.Errors))
	rep.runCounts.writeText(w, "the fresh networks are exhausted, so some were cache hits")
	if t := rep.TargetProcess; t != nil {
		p("target pid   %d: cpu %.2fs (%.1fµs/session), rss %s -> %s, threads %d -> %d\n",
			t.PID, t.CPUSeconds, t.CPUPerSession, kib(t.RSSBeforeKiB), kib(t.RSSAfterKiB), t.ThreadsBefore, t.ThreadsAfter)
	}
	if m := rep.Metrics; m != nil {
		m.writeText(w)
	}
	if pr := rep.Profile; pr != nil {
		if pr.Error != "" {
			p("profile      %s: %s\n", pr.URL, pr.Error)
		} else {
			p("profile      %s (%d bytes; go tool pprof -top %s)\n", pr.File, pr.Bytes, pr.File)
		}
	}
}

func (l latencySummary) String() string {
	f := func(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d.Nanoseconds())/1e6) }
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s",
		f(l.P50), f(l.P90), f(l.P99), f(l.P999), f(l.Max), f(l.Mean))
}

// counts prints a map as "a 3, b 1", largest first, ties by name.
func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func errSuffix(n uint64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", errors %d", n)
}

func kib(v uint64) string { return fmt.Sprintf("%.1fMiB", float64(v)/1024) }

func (m *metricsReport) writeText(w io.Writer) {
	if m.Error != "" {
		fmt.Fprintf(w, "metrics      %s: %s\n", m.URL, m.Error)
		return
	}
	keys := slices.Sorted(maps.Keys(m.Before))
	for _, k := range keys {
		line := fmt.Sprintf("metrics      %s %s -> %s", k, metricValue(k, m.Before[k]), metricValue(k, m.After[k]))
		if v, ok := m.Settled[k]; ok {
			line += " -> " + metricValue(k, v)
		}
		if k == "go_goroutines" {
			if m.SettleSeconds != nil {
				line += fmt.Sprintf(" (back to baseline after %.1fs)", *m.SettleSeconds)
			} else if m.Settled != nil {
				line += " (NOT back to baseline)"
			}
		}
		fmt.Fprintln(w, line)
	}
}

func metricValue(name string, v float64) string {
	if strings.HasSuffix(name, "_bytes") {
		return fmt.Sprintf("%.1fMiB", v/(1<<20))
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
