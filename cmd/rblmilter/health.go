package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/rblmilter/rblmilter/rbl"
)

// startEngineObservers creates the engine's metrics and the list health
// monitor. Both live as long as the process: every Checker, before and
// after a reload, reports to them.
func (d *daemon) startEngineObservers() error {
	metrics, err := rbl.NewMetrics(d.registry, d.cache)
	if err != nil {
		return err
	}
	monitor, err := rbl.NewMonitor(rbl.MonitorOptions{Logger: d.logger, Registerer: d.registry})
	if err != nil {
		return err
	}
	d.engineMetrics, d.monitor = metrics, monitor
	return nil
}

// configureHealth points the monitor at checker's lists and warns about a
// public resolver asked for Spamhaus's public mirrors. The monitor gets
// its own resolver for the same servers, so the probes travel the path
// the lookups do.
func (d *daemon) configureHealth(cfg *daemonConfig, checker *rbl.Checker) {
	lists := checker.Config().Lists
	rbl.WarnPublicResolvers(d.logger, cfg.Resolvers, lists)
	resolver, err := rbl.NewResolver(rbl.ResolverConfig{Servers: cfg.Resolvers})
	if err == nil {
		err = d.monitor.Configure(rbl.MonitorConfig{Resolver: resolver, Lists: lists, Interval: cfg.HealthInterval})
	}
	if err != nil {
		// newChecker accepted the same servers, so this cannot happen;
		// the old lists stay monitored if it does.
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

// writeListHealth writes one line per list: its name, health state and,
// when it is not healthy, why and the answer seen.
func writeListHealth(w io.Writer, lists []rbl.ListHealth) {
	for _, h := range lists {
		line := fmt.Sprintf("list %q: %s", h.Name, h.State)
		if h.Reason != "" {
			line += fmt.Sprintf(" (%s; answer: %s)", h.Reason, h.Answer)
		}
		if h.State == rbl.HealthUnhealthy {
			line += ", not counted"
		}
		fmt.Fprintln(w, strings.ReplaceAll(line, "\n", " "))
	}
}

// probeOnce runs one health probe round over checker's lists before
// `rblmilter check` looks anything up, so that the check counts the lists
// the daemon would, and returns each list's health in configuration order.
func probeOnce(ctx context.Context, monitor *rbl.Monitor, resolver rbl.Resolver, checker *rbl.Checker) []rbl.ListHealth {
	if err := monitor.Configure(rbl.MonitorConfig{Resolver: resolver, Lists: checker.Config().Lists}); err != nil {
		return nil
	}
	monitor.Probe(ctx)
	return monitor.Status()
}

// addHealth fills in each list's health; health is in configuration
// order, as r.Lists is.
func addHealth(r *checkReport, health []rbl.ListHealth) {
	if len(health) != len(r.Lists) {
		// An address decided by the policy's networks has no lists.
		return
	}
	for i := range r.Lists {
		h := health[i]
		l := &r.Lists[i]
		l.Health = h.State.String()
		switch {
		case h.State == rbl.HealthUnmonitored:
			l.HealthReason = "not probed (monitor = false)"
		case h.Reason != "":
			l.HealthReason = h.Reason + "; answer: " + h.Answer
		}
	}
}
