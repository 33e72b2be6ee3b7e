package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/rblmilter/rblmilter/rbl"
)

// startEngineObservers creates the engine's metrics, the list health
// monitor and the query budget. They live as long as the process: every
// Checker, before and after a reload, reports to them.
func (d *daemon) startEngineObservers() error {
	budget := rbl.NewBudget(rbl.BudgetOptions{Logger: d.logger})
	metrics, err := rbl.NewMetrics(d.registry, d.cache, budget)
	if err != nil {
		return err
	}
	monitor, err := rbl.NewMonitor(rbl.MonitorOptions{Logger: d.logger, Observer: metrics, Budget: budget})
	if err != nil {
		return err
	}
	d.engineMetrics, d.monitor, d.budget = metrics, monitor, budget
	return nil
}

// configureHealth points the monitor and the budget at checker's lists
// and warns about a public resolver asked for Spamhaus's public mirrors.
// The monitor gets its own resolver for the same servers, so the probes
// travel the path the lookups do.
func (d *daemon) configureHealth(cfg *daemonConfig, checker *rbl.Checker) {
	lists := checker.Config().Lists
	rbl.WarnPublicResolvers(d.logger, cfg.Resolvers, lists)
	err := d.budget.Configure(lists)
	var resolver rbl.Resolver
	if err == nil {
		resolver, err = rbl.NewResolver(rbl.ResolverConfig{Servers: cfg.Resolvers})
	}
	if err == nil {
		err = d.monitor.Configure(rbl.MonitorConfig{Resolver: resolver, Lists: lists, Interval: cfg.HealthInterval})
	}
	if err != nil {
		// newChecker accepted the same servers and lists, so this
		// cannot happen; the old lists stay monitored if it does.
		d.logger.Error("list health monitor not updated", "error", err)
	}
}

// runHealth starts the probe rounds and returns a function that stops
// them and waits until they have.
func (d *daemon) runHealth(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.monitor.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// listHealth is the monitor's view, for /readyz.
func (d *daemon) listHealth() []rbl.ListHealth { return d.monitor.Status() }

// writeListHealth writes healthLine for each list.
func writeListHealth(w io.Writer, lists []rbl.ListHealth) {
	for _, h := range lists {
		fmt.Fprintln(w, healthLine(h))
	}
}

// healthLine is one list's health in one line, as /readyz and `check`
// show it: its state, why it is not healthy and the answer that showed
// it, whether it is counted, the last probe round's evidence, and its
// queries in the last 24 hours against its daily_queries.
func healthLine(h rbl.ListHealth) string {
	var b strings.Builder
	fmt.Fprintf(&b, "list %q: %s", h.Name, h.State)
	if h.Reason != "" {
		fmt.Fprintf(&b, " (%s; answer: %s)", h.Reason, h.Answer)
	}
	if !h.State.Counted() {
		b.WriteString(", not counted")
	}
	switch {
	case h.State == rbl.HealthUnmonitored:
		b.WriteString("; not probed (monitor = false)")
	case h.Evidence == "":
		b.WriteString("; not probed yet")
	default:
		fmt.Fprintf(&b, "; probe rounds: %d, last: %s", h.Rounds, h.Evidence)
	}
	b.WriteString("; " + budgetText(h))
	return strings.ReplaceAll(b.String(), "\n", " ")
}

// budgetText says how much of its daily query budget a list has used.
func budgetText(h rbl.ListHealth) string {
	if h.DailyQueries == 0 {
		noun := "queries"
		if h.Queries == 1 {
			noun = "query"
		}
		return fmt.Sprintf("%d %s in 24h (no daily_queries limit)", h.Queries, noun)
	}
	s := fmt.Sprintf("%d of daily_queries %d in 24h (%d%%)", h.Queries, h.DailyQueries, h.Queries*100/h.DailyQueries)
	switch {
	case h.Queries >= h.DailyQueries:
		s += ", at the limit: not asked until older queries leave the 24h window (clients are not refused for it)"
	case h.Queries*100 >= h.DailyQueries*rbl.BudgetWarnPercent:
		s += ", near the limit"
	}
	return s
}
