package rbl

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BudgetWindow is the rolling window a list's DailyQueries are counted in.
const BudgetWindow = 24 * time.Hour

// budgetSlot is the window's resolution: queries are counted per minute.
// The window holds the current minute and the 24 hours before it, so a
// query leaves it between 24 hours and 24 hours and a minute after it
// was sent, never sooner: no 24 hours ever hold more than the limit.
const budgetSlot = time.Minute

const budgetSlots = int64(BudgetWindow/budgetSlot) + 1

// BudgetWarnPercent is the share of DailyQueries at which a Budget warns,
// once; the warning (and the one for reaching the limit) is armed again
// when the count falls back below it.
const BudgetWarnPercent = 80

// BudgetOptions are a Budget's injected dependencies; all are optional.
type BudgetOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets one line when a list nears its limit, reaches it, and
	// falls back below the warning mark; nil discards them.
	Logger *slog.Logger
}

// Budget counts the DNS queries each query zone really sends (client
// lookups after cache and de-duplication, TXT queries and health probes)
// over a rolling BudgetWindow, and holds each zone to its lists'
// DailyQueries: at the limit a query is not sent, and the list counts as
// not asked (OverBudget) — the client is never refused for it. Queries
// go out again as older ones leave the window, so a zone never sends more
// than its limit in any 24 hours.
//
// One Budget serves every Checker (Options.Budget) and the Monitor
// (MonitorOptions.Budget) of a process and outlives configuration
// reloads, so that a reload keeps the counts; a restart starts from zero.
// It is safe for concurrent use; a nil *Budget counts nothing and limits
// nothing.
type Budget struct {
	now func() time.Time
	log *slog.Logger

	// mu serializes Configure.
	mu sync.Mutex
	// zones maps a query zone (lower case, key included) to its count. It
	// is replaced, never changed, so that queries read it without locking.
	zones atomic.Pointer[map[string]*zoneBudget]
}

// zoneBudget is one query zone's count.
type zoneBudget struct {
	mu sync.Mutex
	// names are the display names of the zone's entries, for logs and
	// metrics.
	names []string
	limit int
	// slots count the queries of each minute of the window; newest is the
	// slot number (minutes since the Unix epoch) of the latest one.
	slots  [budgetSlots]uint32
	newest int64
	sent   int
	// warned and over remember that the warnings were logged.
	warned, over bool
}

// NewBudget returns a Budget that knows no zones yet; Configure gives it
// the lists.
func NewBudget(opts BudgetOptions) *Budget {
	b := &Budget{now: opts.Now, log: opts.Logger}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	empty := map[string]*zoneBudget{}
	b.zones.Store(&empty)
	return b
}

// Configure sets the zones counted and their limits from lists (normally
// Checker.Config().Lists). Zones that stay keep their counts; zones no
// longer configured are forgotten.
func (b *Budget) Configure(lists []List) error {
	type zoneConfig struct {
		names []string
		limit int
	}
	var order []string
	configs := map[string]*zoneConfig{}
	for i := range lists {
		l := &lists[i]
		if l.DailyQueries < 0 {
			return fmt.Errorf("rbl: list %d (%s): negative daily query limit %d", i+1, l, l.DailyQueries)
		}
		q := l.queryZoneKey()
		c := configs[q]
		if c == nil {
			c = &zoneConfig{}
			configs[q] = c
			order = append(order, q)
		}
		if name := l.String(); !slices.Contains(c.names, name) {
			c.names = append(c.names, name)
		}
		// Shared queries, so the strictest limit holds for all.
		if l.DailyQueries > 0 && (c.limit == 0 || l.DailyQueries < c.limit) {
			c.limit = l.DailyQueries
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.zones.Load()
	next := make(map[string]*zoneBudget, len(configs))
	now := slotOf(b.now())
	for _, q := range order {
		z := old[q]
		if z == nil {
			z = &zoneBudget{newest: now}
		}
		c := configs[q]
		z.mu.Lock()
		if z.limit != c.limit {
			// A new limit: its warnings are new too.
			z.warned, z.over = false, false
		}
		z.names, z.limit = c.names, c.limit
		z.mu.Unlock()
		next[q] = z
	}
	b.zones.Store(&next)
	return nil
}

func slotOf(t time.Time) int64 { return t.UnixNano() / int64(budgetSlot) }

// zone returns qzone's count, or nil for a zone not configured (counted
// nowhere, never limited).
func (b *Budget) zone(qzone string) *zoneBudget {
	if b == nil {
		return nil
	}
	return (*b.zones.Load())[qzone]
}

// take counts one query about to be sent to qzone and reports whether it
// may be sent: false when the zone has sent its limit in the window.
func (b *Budget) take(qzone string) bool {
	z := b.zone(qzone)
	if z == nil {
		return true
	}
	z.mu.Lock()
	event := z.advance(slotOf(b.now()))
	ok := z.limit == 0 || z.sent < z.limit
	if ok {
		z.slots[z.newest%budgetSlots]++
		z.sent++
		if z.limit > 0 && !z.warned && z.sent*100 >= z.limit*BudgetWarnPercent {
			z.warned = true
			event = budgetNear
		}
	} else if !z.over {
		z.over = true
		event = budgetReached
	}
	names, sent, limit := z.names, z.sent, z.limit
	z.mu.Unlock()
	b.logEvent(event, names, sent, limit)
	return ok
}

// full reports whether qzone has no query left in the window now.
func (b *Budget) full(qzone string) bool {
	u, ok := b.usage(qzone)
	return ok && u.Limit > 0 && u.Sent >= u.Limit
}

// budgetUsage is a zone's count now.
type budgetUsage struct {
	Sent, Limit int
}

// usage returns qzone's count now, and whether the zone is counted.
func (b *Budget) usage(qzone string) (budgetUsage, bool) {
	z := b.zone(qzone)
	if z == nil {
		return budgetUsage{}, false
	}
	_, u := b.snapshot(z, b.now())
	return u, true
}

// snapshot moves z's window to now and returns its names and count.
func (b *Budget) snapshot(z *zoneBudget, now time.Time) ([]string, budgetUsage) {
	z.mu.Lock()
	event := z.advance(slotOf(now))
	names, u := z.names, budgetUsage{Sent: z.sent, Limit: z.limit}
	z.mu.Unlock()
	b.logEvent(event, names, u.Sent, u.Limit)
	return names, u
}

type budgetEvent uint8

const (
	budgetNone budgetEvent = iota
	// budgetNear: the count reached BudgetWarnPercent of the limit.
	budgetNear
	// budgetReached: a query was not sent.
	budgetReached
	// budgetRecovered: after budgetReached, the count fell below
	// BudgetWarnPercent again.
	budgetRecovered
)

// advance moves the window to slot, dropping the minutes that left it;
// z.mu must be held. A clock that went back counts into the newest slot.
func (z *zoneBudget) advance(slot int64) budgetEvent {
	if slot <= z.newest {
		return budgetNone
	}
	if slot-z.newest >= budgetSlots {
		clear(z.slots[:])
		z.sent = 0
	} else {
		for s := z.newest + 1; s <= slot; s++ {
			i := s % budgetSlots
			z.sent -= int(z.slots[i])
			z.slots[i] = 0
		}
	}
	z.newest = slot
	if (z.warned || z.over) && z.sent*100 < z.limit*BudgetWarnPercent {
		recovered := z.over
		z.warned, z.over = false, false
		if recovered {
			return budgetRecovered
		}
	}
	return budgetNone
}

// logEvent logs a budget event once, outside the zone's lock.
func (b *Budget) logEvent(e budgetEvent, names []string, sent, limit int) {
	if e == budgetNone {
		return
	}
	attrs := []any{"list", strings.Join(names, ", "), "queries", sent, "daily_queries", limit, "window", "24h"}
	switch e {
	case budgetNear:
		b.log.Warn(fmt.Sprintf("list near its daily query budget (%d%%)", BudgetWarnPercent), attrs...)
	case budgetReached:
		b.log.Error("list at its daily query budget: not asked until older queries leave the 24h window; clients are not refused for it", attrs...)
	case budgetRecovered:
		b.log.Warn(fmt.Sprintf("list below %d%% of its daily query budget again", BudgetWarnPercent), attrs...)
	}
}
