package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
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
	Decision  string  `json:"decision"`
	Network   string  `json:"network,omitempty"`
	Score     int     `json:"score"`
	Threshold int     `json:"threshold"`
	Early     bool    `json:"early"`
	Duration  float64 `json:"duration_ms"`
	// Names are the names given (-client-name, -helo, -sender) that some
	// domain list checks, and why any of them was not asked.
	Names []nameReport `json:"names,omitempty"`
	Lists []listReport `json:"lists"`
	// result is the decision as the milter session takes it; whether it
	// refuses is the session's rule (milter.Result.Refuses).
	result milter.Result
}

// nameReport is a name given to check.
type nameReport struct {
	Check string `json:"check"`
	Given string `json:"given"`
	// NotAsked says why the name was not asked, when it was not.
	NotAsked string `json:"not_asked,omitempty"`
}

type listReport struct {
	Name string `json:"name"`
	// Type is "ip" or "domain".
	Type     string   `json:"type"`
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
	// Lookups are a domain list's lookups, one per check and name asked;
	// Weight is what each alone would add.
	Lookups []lookupReport `json:"lookups,omitempty"`
}

// lookupReport is one name lookup of a domain list.
type lookupReport struct {
	Check    string   `json:"check"`
	Name     string   `json:"name"`
	Outcome  string   `json:"outcome"`
	Codes    []string `json:"codes"`
	TXT      string   `json:"txt,omitempty"`
	Weight   int      `json:"weight"`
	Duration float64  `json:"duration_ms"`
	Cached   bool     `json:"cached"`
	Error    string   `json:"error,omitempty"`
}

// sessionNames are the names check gives the session: what the MTA
// would have said at connect, HELO and MAIL.
type sessionNames struct {
	client, helo, sender string
	// given are the flags set.
	given map[rbl.Check]bool
}

// runCheck is `rblmilter check [-config FILE] [-json] [-client-name NAME]
// [-helo NAME] [-sender ADDRESS] IP...`: it looks the addresses up with
// the daemon's engine and policy networks, as a session showing those
// names. Exit 0 when every address would be accepted, 1 when any would be
// refused, 2 on bad input.
func runCheck(ctx context.Context, args []string, configPath string, env environment) int {
	fs := flag.NewFlagSet("rblmilter check", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.StringVar(&configPath, "config", configPath, "config `FILE` (TOML)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var names sessionNames
	fs.StringVar(&names.client, "client-name", "", "the client's verified host `NAME`, as the MTA found it (asked of client and reverse_client lists)")
	fs.StringVar(&names.helo, "helo", "", "the HELO/EHLO `NAME` the client gave (helo lists)")
	fs.StringVar(&names.sender, "sender", "", "the MAIL FROM `ADDRESS`, e.g. user@example.com or \"<>\" (sender lists)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rblmilter check [-config FILE] [-json] [-client-name NAME] [-helo NAME] [-sender ADDRESS] IP...\n\n"+
			"Looks each address up as the daemon would, for a session showing those names\n"+
			"to the domain lists, and prints every list's answer (and each name a domain list\n"+
			"was asked), the score and the decision. Exit 0: all accepted, 1: any refused,\n"+
			"2: bad input.\n\nFlags:\n")
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
	names.given = map[rbl.Check]bool{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "client-name":
			names.given[rbl.CheckClient] = true
		case "helo":
			names.given[rbl.CheckHelo] = true
		case "sender":
			names.given[rbl.CheckSender] = true
		}
	})
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
	budget := rbl.NewBudget(rbl.BudgetOptions{Logger: logger})
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
		r := checkOne(ctx, checker, late, &cfg.Policy, engine.Threshold, ip, &names)
		if r.result.Refuses() {
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
// lists, each given its names as the MTA would give them, within the
// whole-connection budget.
func checkOne(ctx context.Context, checker *rbl.Checker, late *lateResults, pol *milter.Policy, threshold int, ip netip.Addr, names *sessionNames) checkReport {
	r := checkReport{IP: ip.String(), Threshold: threshold, Lists: []listReport{}}
	if class, network, ok := pol.Classify(ip); ok {
		r.result = class
		r.Decision = networkWord(class)
		r.Network = network.String()
		return r
	}
	late.reset()
	ctx, cancel := context.WithTimeout(ctx, pol.Timeout)
	defer cancel()
	s := checker.Start(ip)
	checks := checker.Checks()
	for _, n := range []struct {
		check rbl.Check
		name  string
	}{
		// A verified name is also the client's PTR name: the MTA gives it
		// as both when it gives no other.
		{rbl.CheckClient, names.client}, {rbl.CheckReverseClient, names.client},
		{rbl.CheckHelo, names.helo}, {rbl.CheckSender, names.sender},
	} {
		flag := n.check
		if flag == rbl.CheckReverseClient {
			flag = rbl.CheckClient
		}
		if !names.given[flag] {
			continue
		}
		err := s.Ask(n.check, n.name)
		if !checks.Has(n.check) || n.check == rbl.CheckReverseClient && checks.Has(rbl.CheckClient) {
			continue
		}
		nr := nameReport{Check: n.check.String(), Given: n.name}
		if err != nil {
			nr.NotAsked = err.Error()
		}
		r.Names = append(r.Names, nr)
	}
	v := s.Verdict(ctx, 0)
	r.result = milter.ResultOf(v.Decision)
	r.Decision = r.result.String()
	r.Score = v.Score
	r.Early = v.Early
	r.Duration = ms(v.Duration)
	pending := make([]bool, len(v.Results))
	for i := range v.Results {
		pending[i] = v.Results[i].Outcome == rbl.Pending
	}
	// An early decision leaves lists Pending, but their lookups go on;
	// the admin wants to see every answer, so wait for them (each is
	// bounded by its list's timeout, which is at most pol.Timeout).
	all := late.settle(s, v, time.Now().Add(pol.Timeout+time.Second))
	for i, res := range all.Results {
		lr := listReport{
			Name:     res.List.String(),
			Type:     res.List.Type.String(),
			Outcome:  res.Outcome.String(),
			Codes:    codeStrings(res.Codes),
			TXT:      res.TXT,
			Weight:   res.Weight,
			Shadow:   res.List.Shadow,
			Duration: ms(res.Duration),
			Cached:   res.Cached,
			Late:     pending[i] && res.Outcome != rbl.Pending,
		}
		if res.Err != nil {
			lr.Error = res.Err.Error()
		}
		for _, l := range late.lookups(res.List) {
			lk := lookupReport{
				Check: l.Check.String(), Name: l.Name, Outcome: l.Outcome.String(), Codes: codeStrings(l.Codes),
				TXT: l.TXT, Weight: l.Matched, Duration: ms(l.Duration), Cached: l.Cached,
			}
			if l.Err != nil {
				lk.Error = l.Err.Error()
			}
			lr.Lookups = append(lr.Lookups, lk)
		}
		r.Lists = append(r.Lists, lr)
	}
	return r
}

// networkWord is check's word for a client in the policy's networks
// (docs/rblmilter.8.md): it was not looked up.
func networkWord(class milter.Result) string {
	switch class {
	case milter.ResultSkip:
		return "skipped"
	case milter.ResultAllow:
		return "allowed"
	}
	return "blocked"
}

func codeStrings(codes []netip.Addr) []string {
	out := []string{}
	for _, c := range codes {
		out = append(out, c.String())
	}
	return out
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
		for _, n := range r.Names {
			if n.NotAsked != "" {
				fmt.Fprintf(w, "  %s not asked: %s\n", n.Check, n.NotAsked)
			}
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  LIST\tHEALTH\tOUTCOME\tCODES\tWEIGHT\tTIME\tTXT")
		for _, l := range r.Lists {
			codes := dashIfEmpty(strings.Join(l.Codes, ","))
			t := fmtTime(l.Duration, l.Cached)
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
			for _, lk := range l.Lookups {
				txt := lk.TXT
				if lk.Error != "" {
					txt = lk.Error
				}
				fmt.Fprintf(tw, "    %s=%s\t\t%s\t%s\t%d\t%s\t%s\n", lk.Check, lk.Name, lk.Outcome, dashIfEmpty(strings.Join(lk.Codes, ",")), lk.Weight, fmtTime(lk.Duration, lk.Cached), txt)
			}
		}
		tw.Flush()
	}
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTime(v float64, cached bool) string {
	if cached {
		return "cached"
	}
	return fmtMS(v)
}

func fmtMS(v float64) string {
	return time.Duration(v * float64(time.Millisecond)).Round(100 * time.Microsecond).String()
}

// lateResults is an rbl.Observer that keeps every lookup result, so that
// `check` can show each name a domain list was asked and wait for the
// lookups that end after an early decision.
type lateResults struct {
	mu sync.Mutex
	// byList are the results heard, by list: the one of an IP list, one
	// per check and name of a domain list.
	byList  map[*rbl.List][]rbl.Result
	changed chan struct{}
}

func newLateResults() *lateResults {
	return &lateResults{byList: map[*rbl.List][]rbl.Result{}, changed: make(chan struct{})}
}

func (l *lateResults) QuerySent(string, uint16) {}
func (l *lateResults) VerdictDone(rbl.Verdict)  {}

func (l *lateResults) LookupDone(r rbl.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byList[r.List] = append(l.byList[r.List], r)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *lateResults) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.byList)
}

// lookups returns a domain list's name lookups, in the order of the checks
// and, within a check, the name before its registered domain (the order
// they are asked in; they end in any order); nil for an IP list.
func (l *lateResults) lookups(list *rbl.List) []rbl.Result {
	if list.Type != rbl.DomainList {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.byList[list])
	slices.SortStableFunc(out, func(a, b rbl.Result) int {
		if a.Check != b.Check {
			return int(a.Check) - int(b.Check)
		}
		// A registered domain is a suffix of the name it came from.
		return len(b.Name) - len(a.Name)
	})
	return out
}

// settle returns s's verdict once no lookup is pending, or at deadline:
// the lookups an early decision (v) left behind report here when they
// end.
func (l *lateResults) settle(s *rbl.Session, v rbl.Verdict, deadline time.Time) rbl.Verdict {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for v.Early {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		// Taken after changed: a lookup that ends in between closes it.
		if v = s.Peek(0); !v.Early {
			break
		}
		select {
		case <-changed:
		case <-timer.C:
			return s.Peek(0)
		}
	}
	return v
}
