package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/rblmilter/rblmilter/milter"
	"github.com/rblmilter/rblmilter/rbl"
)

// checkReport is one address's result, as printed by `rblmilter check`.
type checkReport struct {
	IP string `json:"ip"`
	// Decision is accept, reject, tempfail or allowlisted from the
	// engine, or skipped, allowed or blocked from the policy's networks.
	Decision  string       `json:"decision"`
	Network   string       `json:"network,omitempty"`
	Score     int          `json:"score"`
	Threshold int          `json:"threshold"`
	Early     bool         `json:"early"`
	Duration  float64      `json:"duration_ms"`
	Lists     []listReport `json:"lists"`
}

type listReport struct {
	Name     string   `json:"name"`
	Outcome  string   `json:"outcome"`
	Codes    []string `json:"codes"`
	TXT      string   `json:"txt,omitempty"`
	Weight   int      `json:"weight"`
	Shadow   bool     `json:"shadow,omitempty"`
	Duration float64  `json:"duration_ms"`
	Cached   bool     `json:"cached"`
	Error    string   `json:"error,omitempty"`
	// Late is true for an answer that came after the decision was
	// already taken (an early decision): shown, but not in the score.
	Late bool `json:"after_decision,omitempty"`
	// Health is the list's state after one probe round (an unhealthy
	// list is not asked: outcome disabled); HealthReason says why, and
	// HealthEvidence what the round's probes got.
	Health         string `json:"health"`
	HealthReason   string `json:"health_reason,omitempty"`
	HealthEvidence string `json:"health_evidence,omitempty"`
	// Queries is what this check sent to the list's zone (probes and
	// lookups; the daemon's own count is in its /readyz), against its
	// daily_queries.
	Queries      int `json:"queries_24h"`
	DailyQueries int `json:"daily_queries,omitempty"`
}

// refuses reports whether the daemon would not accept the client.
func (r *checkReport) refuses() bool {
	switch r.Decision {
	case "reject", "tempfail", "blocked":
		return true
	}
	return false
}

// runCheck is `rblmilter check [-config FILE] [-json] IP...`: it looks the
// addresses up with the daemon's engine and policy networks. Exit 0 when
// every address would be accepted, 1 when any would be refused, 2 on bad
// input.
func runCheck(ctx context.Context, args []string, configPath string, env environment) int {
	fs := flag.NewFlagSet("rblmilter check", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.StringVar(&configPath, "config", configPath, "config `FILE` (TOML)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rblmilter check [-config FILE] [-json] IP...\n\n"+
			"Looks each address up as the daemon would and prints every list's answer,\n"+
			"the score and the decision. Exit 0: all accepted, 1: any refused, 2: bad input.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	// Flags may also follow the addresses: `check 192.0.2.1 -json`.
	var ipArgs []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		ipArgs = append(ipArgs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(ipArgs) == 0 {
		fmt.Fprintln(env.stderr, "rblmilter check: no IP address given")
		fs.Usage()
		return exitUsage
	}
	var ips []netip.Addr
	for _, a := range ipArgs {
		ip, err := netip.ParseAddr(strings.TrimPrefix(a, "IPv6:"))
		if err != nil || ip.Zone() != "" {
			fmt.Fprintf(env.stderr, "rblmilter check: %q is not an IP address\n", a)
			return exitUsage
		}
		ips = append(ips, ip.Unmap())
	}

	cfg, err := loadConfig(configPath, env.defaultConfig, env.parseEnv(""))
	if err != nil {
		printConfigError(env.stderr, configPath, env.defaultConfig, err)
		return exitUsage
	}
	logger := newLogger(env.stderr, cfg.Log, nil)
	resolver, err := rbl.NewResolver(rbl.ResolverConfig{Servers: cfg.Resolvers})
	if err != nil {
		fmt.Fprintf(env.stderr, "rblmilter check: resolvers: %v\n", err)
		return exitUsage
	}
	engine := cfg.Engine
	engine.FetchTXT = true
	late := newLateResults()
	// The table shows each list's health; the monitor's own log lines
	// would only repeat it. The budget counts this check's queries: a
	// daily_queries limit holds here too.
	budget, err := rbl.NewBudget(rbl.BudgetOptions{Logger: logger})
	if err != nil {
		fmt.Fprintf(env.stderr, "rblmilter check: %v\n", err)
		return exitError
	}
	monitor, err := rbl.NewMonitor(rbl.MonitorOptions{Budget: budget})
	if err != nil {
		fmt.Fprintf(env.stderr, "rblmilter check: %v\n", err)
		return exitError
	}
	checker, err := rbl.NewChecker(engine, rbl.Options{Resolver: resolver, Logger: logger, Observer: late, Health: monitor, Budget: budget})
	if err != nil {
		fmt.Fprintf(env.stderr, "rblmilter check: %s: %v\n", cfg.Source, err)
		return exitUsage
	}
	defer checker.Close()
	if err := budget.Configure(checker.Config().Lists); err != nil {
		fmt.Fprintf(env.stderr, "rblmilter check: %s: %v\n", cfg.Source, err)
		return exitUsage
	}

	probeOnce(ctx, monitor, resolver, checker)

	reports := make([]checkReport, 0, len(ips))
	code := exitOK
	for _, ip := range ips {
		r := checkOne(ctx, checker, late, &cfg.Policy, engine.Threshold, ip)
		if r.refuses() {
			code = exitError
		}
		reports = append(reports, r)
	}
	// After the lookups, so that the counts include them.
	health := monitor.Status()
	for i := range reports {
		addHealth(&reports[i], health)
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			fmt.Fprintf(env.stderr, "rblmilter check: %v\n", err)
			return exitError
		}
	} else {
		printReports(env.stdout, reports)
		fmt.Fprintln(env.stdout, "\nList health (one probe round before the lookups; the daemon's own view is in its /readyz):")
		for _, h := range health {
			fmt.Fprintln(env.stdout, "  "+healthLine(h))
		}
	}
	return code
}

// checkOne decides for ip the way a milter session does: the policy's
// networks first (in the milter's order: skip, allow, block), then the
// lists within the whole-connection budget.
func checkOne(ctx context.Context, checker *rbl.Checker, late *lateResults, pol *milter.Policy, threshold int, ip netip.Addr) checkReport {
	r := checkReport{IP: ip.String(), Threshold: threshold, Lists: []listReport{}}
	if class, network := pol.Classify(ip); class != "" {
		r.Decision = map[string]string{"skip": "skipped", "allow": "allowed", "block": "blocked"}[class]
		r.Network = network.String()
		return r
	}
	late.reset()
	ctx, cancel := context.WithTimeout(ctx, pol.Timeout)
	defer cancel()
	v := checker.Check(ctx, ip)
	// An early decision leaves lists Pending, but their lookups go on;
	// the admin wants to see every answer, so wait for them (each is
	// bounded by its list's timeout, which is at most pol.Timeout).
	late.wait(v.Results, time.Now().Add(pol.Timeout+time.Second))
	r.Decision = v.Decision.String()
	r.Score = v.Score
	r.Early = v.Early
	r.Duration = ms(v.Duration)
	for _, res := range v.Results {
		afterDecision := false
		if res.Outcome == rbl.Pending {
			if lr, ok := late.get(res.List); ok {
				res, afterDecision = lr, true
			}
		}
		lr := listReport{
			Name:     res.List.String(),
			Outcome:  res.Outcome.String(),
			Codes:    []string{},
			TXT:      res.TXT,
			Weight:   res.Weight,
			Shadow:   res.List.Shadow,
			Duration: ms(res.Duration),
			Cached:   res.Cached,
			Late:     afterDecision,
		}
		for _, c := range res.Codes {
			lr.Codes = append(lr.Codes, c.String())
		}
		if res.Err != nil {
			lr.Error = res.Err.Error()
		}
		r.Lists = append(r.Lists, lr)
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printReports(w io.Writer, reports []checkReport) {
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if r.Network != "" {
			fmt.Fprintf(w, "%s: %s (in %s; no lookup)\n", r.IP, r.Decision, r.Network)
			continue
		}
		early := ""
		if r.Early {
			early = ", decided early"
		}
		fmt.Fprintf(w, "%s: %s (score %d, threshold %d, %s%s)\n", r.IP, r.Decision, r.Score, r.Threshold, fmtMS(r.Duration), early)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  LIST\tHEALTH\tOUTCOME\tCODES\tWEIGHT\tTIME\tTXT")
		for _, l := range r.Lists {
			codes := strings.Join(l.Codes, ",")
			if codes == "" {
				codes = "-"
			}
			t := fmtMS(l.Duration)
			if l.Cached {
				t = "cached"
			}
			name := l.Name
			if l.Shadow {
				name += " (shadow)"
			}
			outcome := l.Outcome
			if l.Late {
				outcome += " (after decision)"
			}
			txt := l.TXT
			if l.Error != "" {
				txt = l.Error
			}
			if l.HealthReason != "" {
				txt = strings.TrimPrefix(txt+"; ", "; ") + "health: " + l.HealthReason
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\t%s\n", name, l.Health, outcome, codes, l.Weight, t, txt)
		}
		tw.Flush()
	}
}

func fmtMS(v float64) string {
	return time.Duration(v * float64(time.Millisecond)).Round(100 * time.Microsecond).String()
}

// lateResults is an rbl.Observer that keeps the results of lookups that
// end after Check has returned, so that `check` can show every list.
type lateResults struct {
	mu      sync.Mutex
	results map[*rbl.List]rbl.Result
	changed chan struct{}
}

func newLateResults() *lateResults {
	return &lateResults{results: map[*rbl.List]rbl.Result{}, changed: make(chan struct{})}
}

func (l *lateResults) QuerySent(string, uint16) {}
func (l *lateResults) VerdictDone(rbl.Verdict)  {}

func (l *lateResults) LookupDone(r rbl.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results[r.List] = r
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *lateResults) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.results)
}

func (l *lateResults) get(list *rbl.List) (rbl.Result, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.results[list]
	return r, ok && r.Outcome != rbl.Pending
}

// wait returns once every Pending result has been reported, or at
// deadline.
func (l *lateResults) wait(results []rbl.Result, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		l.mu.Lock()
		missing := false
		for _, r := range results {
			if r.Outcome != rbl.Pending {
				continue
			}
			if got, ok := l.results[r.List]; !ok || got.Outcome == rbl.Pending {
				missing = true
			}
		}
		changed := l.changed
		l.mu.Unlock()
		if !missing {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		}
	}
}
