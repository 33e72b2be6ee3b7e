package milter

import (
	"context"
	"sync"
	"time"
)

// budget is a lookup's whole-connection deadline as a context whose clock
// is read and whose timer starts only when someone asks: Deadline reads
// the clock, Done and Err start the timer too. The engine asks only when
// it has to wait for DNS, right after the stage began; a decision
// served from the cache never does, and context.WithTimeout would cost
// every such decision a clock reading, a timer, its allocations and a
// turn on the Server-wide parent's lock. BenchmarkConnectCacheHit shows
// the difference; docs/performance.md records it, with the command to
// measure it again.
type budget struct {
	parent  context.Context
	timeout time.Duration

	clock    sync.Once
	deadline time.Time

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

func newBudget(parent context.Context, timeout time.Duration) *budget {
	return &budget{parent: parent, timeout: timeout}
}

// fix sets the deadline, timeout from the first time it is asked for.
func (b *budget) fix() {
	b.clock.Do(func() { b.deadline = time.Now().Add(b.timeout) })
}

func (b *budget) start() {
	b.once.Do(func() {
		b.fix()
		b.ctx, b.cancel = context.WithDeadline(b.parent, b.deadline)
	})
}

// Deadline reports the deadline without starting the timer.
func (b *budget) Deadline() (time.Time, bool) {
	b.fix()
	return b.deadline, true
}

// Done starts the timer.
func (b *budget) Done() <-chan struct{} {
	b.start()
	return b.ctx.Done()
}

// Err starts the timer, so that a deadline already past reads as one.
func (b *budget) Err() error {
	b.start()
	return b.ctx.Err()
}

// Value asks the parent; the budget itself carries no values.
func (b *budget) Value(key any) any { return b.parent.Value(key) }

// release stops the timer if it was started. A budget released before
// it started becomes its parent, still without a timer: the lookup it
// bounded is over.
func (b *budget) release() {
	b.once.Do(func() { b.ctx = b.parent })
	if b.cancel != nil {
		b.cancel()
	}
}
