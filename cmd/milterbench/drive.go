package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// drivePlan is how many sessions a run makes and from which addresses:
// what "run" (milter sessions) and "smtp" (SMTP sessions) share.
type drivePlan struct {
	Sessions    uint64        // stop after this many sessions (0: no limit)
	Duration    time.Duration // stop starting sessions after this (0: no limit)
	Concurrency int
	Mix         *mix
	// Warmup sends every pooled address once before the measured run, so
	// that a cache-hit workload measures cache hits only.
	Warmup bool
	// Now is the clock for latencies; nil means time.Now.
	Now func() time.Time
	// OnStart, if set, runs when the measured part begins (after warm-up);
	// the CLI takes its "before" readings of the target there.
	OnStart func()
}

func (p *drivePlan) check() error {
	if p.Concurrency < 1 {
		return fmt.Errorf("-c %d: need at least 1 concurrent session", p.Concurrency)
	}
	if p.Sessions == 0 && p.Duration <= 0 {
		return errors.New("give -n (sessions) or -duration, or both")
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return nil
}

// drive runs warm-up sessions (every pooled address once, if asked) and
// then the measured ones, Concurrency at a time. ctx cancels the run: no
// new sessions start. It returns how long the measured part took.
func drive(ctx context.Context, p drivePlan, warm func(p uint64, pk pick), measured func(i uint64, pk pick)) time.Duration {
	if p.Warmup && p.Mix.pool > 0 {
		var k atomic.Uint64
		runWorkers(p.Concurrency, func() bool {
			i := k.Add(1) - 1
			if i >= p.Mix.pool || ctx.Err() != nil {
				return false
			}
			warm(i, p.Mix.pooled(i))
			return true
		})
	}
	stop := ctx
	if p.OnStart != nil {
		p.OnStart()
	}
	start := p.Now()
	if p.Duration > 0 {
		var cancel context.CancelFunc
		stop, cancel = context.WithDeadline(ctx, start.Add(p.Duration))
		defer cancel()
	}
	var next atomic.Uint64
	runWorkers(p.Concurrency, func() bool {
		if stop.Err() != nil {
			return false
		}
		i := next.Add(1) - 1
		if p.Sessions > 0 && i >= p.Sessions {
			return false
		}
		measured(i, p.Mix.session(i))
		return true
	})
	return p.Now().Sub(start)
}

// runWorkers runs step on n goroutines until it returns false.
func runWorkers(n int, step func() bool) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for step() {
			}
		})
	}
	wg.Wait()
}
