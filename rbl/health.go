package rbl

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultHealthInterval is how often a Monitor probes its lists when
// MonitorConfig.Interval is 0.
const DefaultHealthInterval = 5 * time.Minute

// DefaultFailureThreshold is how many probes in a row must fail (time out
// or get SERVFAIL and the like) before a list is called unhealthy.
const DefaultFailureThreshold = 3

// HealthState is what a Monitor knows about a list.
type HealthState uint8

const (
	// HealthUnknown: not probed yet. The list is counted.
	HealthUnknown HealthState = iota
	// HealthHealthy: the last probe round found nothing wrong.
	HealthHealthy
	// HealthDegraded: the list answers sanely but lists some canaries (a
	// bogon or lab list), or its RFC 5782 test entry is missing, so it
	// cannot be shown to work. It is still counted, since nothing it
	// answers can wrongly refuse mail.
	HealthDegraded
	// HealthUnhealthy: the list lists the world (127.0.0.1, or every
	// canary of a family), answers error codes or records outside
	// 127.0.0.0/8, or does not answer. It is not counted (Outcome
	// Disabled) until a probe round finds it healthy or degraded again.
	HealthUnhealthy
	// HealthUnmonitored: the list opted out (Monitor false). It is always
	// counted and never probed.
	HealthUnmonitored
)

var healthStateNames = [...]string{
	HealthUnknown:     "unknown",
	HealthHealthy:     "healthy",
	HealthDegraded:    "degraded",
	HealthUnhealthy:   "unhealthy",
	HealthUnmonitored: "unmonitored",
}

// String returns "unknown", "healthy", "degraded", "unhealthy" or
// "unmonitored", as used in logs and metric labels.
func (s HealthState) String() string {
	if int(s) < len(healthStateNames) {
		return healthStateNames[s]
	}
	return "invalid"
}

// MarshalText makes JSON show the state's name.
func (s HealthState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Counted reports whether a list in this state takes part in verdicts.
func (s HealthState) Counted() bool { return s != HealthUnhealthy }

// ListHealth is one configured list's health, for status pages.
type ListHealth struct {
	// Name is the list's display name.
	Name  string      `json:"name"`
	State HealthState `json:"state"`
	// Reason says why the list is not healthy; empty when it is.
	Reason string `json:"reason,omitempty"`
	// Answer is the answer that led to the state, e.g. "127.0.0.1 → A
	// 127.0.0.2" or "127.0.0.2 → timeout".
	Answer string `json:"answer,omitempty"`
	// Since is when the list entered its state; zero when unknown.
	Since time.Time `json:"since,omitzero"`
	// Checked is when the list was last probed; zero when never.
	Checked time.Time `json:"checked,omitzero"`
	// Rounds is how many probe rounds have judged the list.
	Rounds int `json:"rounds"`
	// Evidence sums up the last probe round's answers, e.g. "127.0.0.2
	// listed, 127.0.0.1 not listed; canaries: 0 of 15 listed". Unlike
	// Reason it is renewed every round.
	Evidence string `json:"evidence,omitempty"`
	// Queries is how many DNS queries the list's zone sent in the last 24
	// hours, and DailyQueries its limit (0: none); both 0 without a
	// Budget.
	Queries      int `json:"queries_24h"`
	DailyQueries int `json:"daily_queries,omitempty"`
}

// MonitorOptions are a Monitor's injected dependencies; all are optional.
type MonitorOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// After waits between probe rounds; nil means time.After. Tests
	// inject a channel they control.
	After func(time.Duration) <-chan time.Time
	// Rand picks the canary addresses; nil means math/rand/v2's
	// auto-seeded source.
	Rand rand.Source
	// Logger gets one line per health transition; nil discards them.
	Logger *slog.Logger
	// Observer, if set, is told the lists' states, their changes and
	// every probe (for metrics; Metrics is one).
	Observer HealthObserver
	// FailureThreshold is how many probes in a row must fail before a
	// list is unhealthy; 0 means DefaultFailureThreshold.
	FailureThreshold int
	// Budget, if set, counts the probes against each list's DailyQueries
	// (a zone at its limit is not probed) and gives Status the counts.
	Budget *Budget
}

// MonitorConfig is what a Monitor watches; it may change on every config
// reload (Configure).
type MonitorConfig struct {
	// Resolver sends the probes; it should be the one the Checker uses,
	// so that a resolver the list operator refuses is noticed.
	Resolver Resolver
	// Lists are the lists to watch, normally Checker.Config().Lists.
	// Entries sharing a query zone (zone and key) share one health.
	Lists []List
	// Interval between probe rounds; 0 means DefaultHealthInterval.
	Interval time.Duration
}

// Monitor watches list health (RFC 5782 §5 test entries, canary addresses
// and live answers) and switches unhealthy lists off. It is an rbl.Health:
// pass it as Options.Health to every Checker. It is safe for concurrent
// use.
//
// A probe round asks each monitored query zone, in parallel and each
// bounded by the zone's list timeout:
//   - 127.0.0.2, which must be listed, and 127.0.0.1, which must not be
//     (IPv4 lists); ::ffff:7f00:2 and ::ffff:7f00:1 likewise (IPv6 lists);
//   - "test", which must be listed, and "invalid", which must not
//     (domain lists, RFC 5782 §5);
//   - the canaries (IP lists only): a fresh random address in each of many
//     unrelated reserved ranges of each family, and one in public unicast
//     space (see canary.go).
//
// A zone is unhealthy when it lists the world — 127.0.0.1 or ::ffff:7f00:1
// is listed, or every canary of a family is —, when any answer is an
// operator error code or a record outside 127.0.0.0/8, or when
// FailureThreshold probes in a row fail. Live answers with error codes or
// records outside 127.0.0.0/8 (Observe) make it unhealthy at once. Some
// canaries listed (a bogon or lab list) or a missing test entry only
// degrade it: it stays counted. Every change of state is logged once.
type Monitor struct {
	now       func() time.Time
	after     func(time.Duration) <-chan time.Time
	log       *slog.Logger
	threshold int
	obs       HealthObserver
	budget    *Budget

	// kick asks Run for a round now: Configure added zones.
	kick chan struct{}
	// roundMu lets one probe round run at a time.
	roundMu sync.Mutex

	// byList maps a list's (key, zone) to its zone's state, both as
	// configured and in lower case. It is replaced, never changed, so
	// Enabled reads it without locking.
	byList atomic.Pointer[map[zoneKey]*zoneHealth]

	mu       sync.Mutex // guards everything below and zoneHealth's guarded fields
	rnd      *rand.Rand
	resolver Resolver
	interval time.Duration
	zones    []*zoneHealth
	// lists are the configured entries: display name and zone state.
	lists []listRef
}

type listRef struct {
	name string
	zone *zoneHealth
}

// zoneKey is a list's key and zone: as configured, so that Enabled finds
// the usual spelling without allocating, or normalized (normalizedZoneKey).
type zoneKey struct{ key, zone string }

// normalizedZoneKey is l's zoneKey spelt as its queryZoneKey is.
func normalizedZoneKey(l *List) zoneKey { return zoneKey{strings.ToLower(l.Key), l.normalizedZone()} }

// zoneHealth is the shared health of every list entry with one query zone.
type zoneHealth struct {
	// qzone is the query zone, key included: a secret, never shown.
	qzone string
	key   string
	// names are the display names of the entries, for logs and metrics.
	names     []string
	v4, v6    bool
	monitored bool
	timeout   time.Duration
	// domain: some entry is a domain list (RFC 5782 §2.3).
	domain bool
	// enabled is !unhealthy, read lock-free on every Check.
	enabled atomic.Bool

	// Guarded by Monitor.mu.
	state          HealthState
	reason, answer string
	since, checked time.Time
	failures       int
	removed        bool
	rounds         int
	evidence       string
}

// NewMonitor returns a Monitor watching nothing yet; Configure gives it
// lists and Run starts the probe rounds.
func NewMonitor(opts MonitorOptions) (*Monitor, error) {
	m := &Monitor{
		now:       opts.Now,
		after:     opts.After,
		log:       opts.Logger,
		threshold: opts.FailureThreshold,
		budget:    opts.Budget,
		kick:      make(chan struct{}, 1),
		interval:  DefaultHealthInterval,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.after == nil {
		m.after = time.After
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.threshold < 0 {
		return nil, fmt.Errorf("rbl: negative health failure threshold %d", m.threshold)
	}
	if m.threshold == 0 {
		m.threshold = DefaultFailureThreshold
	}
	src := opts.Rand
	if src == nil {
		src = autoSeeded{}
	}
	m.rnd = rand.New(src)
	m.obs = opts.Observer
	empty := map[zoneKey]*zoneHealth{}
	m.byList.Store(&empty)
	return m, nil
}

// autoSeeded draws from math/rand/v2's top-level, randomly seeded source.
type autoSeeded struct{}

func (autoSeeded) Uint64() uint64 { return rand.Uint64() }

// Configure sets the resolver, lists and interval. Zones that stay keep
// their health; new zones start unknown (counted) and Run probes them at
// once.
func (m *Monitor) Configure(cfg MonitorConfig) error {
	if cfg.Resolver == nil {
		return fmt.Errorf("rbl: health monitor: no resolver")
	}
	if cfg.Interval < 0 {
		return fmt.Errorf("rbl: health monitor: negative interval %s", cfg.Interval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultHealthInterval
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := make(map[string]*zoneHealth, len(m.zones))
	for _, z := range m.zones {
		old[z.qzone] = z
	}
	byList := map[zoneKey]*zoneHealth{}
	var zones []*zoneHealth
	var lists []listRef
	byZone := map[string]*zoneHealth{}
	added := false
	for i := range cfg.Lists {
		l := &cfg.Lists[i]
		qzone := l.queryZoneKey()
		z, ok := byZone[qzone]
		if !ok {
			z = old[qzone]
			if z == nil {
				z = &zoneHealth{qzone: qzone}
				z.enabled.Store(true)
				added = true
			}
			// Rebuilt from this config's entries; state and counters stay.
			z.key, z.names, z.v4, z.v6, z.domain, z.monitored, z.timeout = strings.ToLower(l.Key), nil, false, false, false, true, 0
			byZone[qzone] = z
			zones = append(zones, z)
		}
		name := l.String()
		if !slices.Contains(z.names, name) {
			z.names = append(z.names, name)
		}
		if l.Type == DomainList {
			z.domain = true
		} else {
			v4, v6 := l.families()
			z.v4, z.v6 = z.v4 || v4, z.v6 || v6
		}
		// One entry opting out opts the zone out: they share one health,
		// and an opt-out means the zone has no test entries.
		z.monitored = z.monitored && l.Monitor
		z.timeout = max(z.timeout, l.timeoutOr(DefaultTimeout))
		byList[zoneKey{l.Key, l.Zone}] = z
		byList[normalizedZoneKey(l)] = z
		lists = append(lists, listRef{name: name, zone: z})
	}
	for _, z := range old {
		if byZone[z.qzone] == nil {
			z.removed = true
		}
	}
	for _, z := range zones {
		if !z.monitored {
			z.state, z.reason, z.answer, z.failures = HealthUnmonitored, "", "", 0
			z.enabled.Store(true)
		} else if z.state == HealthUnmonitored {
			z.state, z.since = HealthUnknown, time.Time{}
			added = true
		}
	}
	if m.obs != nil {
		states := map[string]HealthState{}
		for _, z := range zones {
			for _, name := range z.names {
				states[name] = z.state
			}
		}
		m.obs.HealthConfigured(states)
	}
	m.resolver, m.interval, m.zones, m.lists = cfg.Resolver, cfg.Interval, zones, lists
	m.byList.Store(&byList)
	if added {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Enabled reports whether the list may be asked and counted: false only
// while its zone is unhealthy. Lists the Monitor does not know are enabled.
func (m *Monitor) Enabled(l *List) bool {
	z := m.zoneOf(l)
	return z == nil || z.enabled.Load()
}

// zoneOf finds the zone state of l, or nil.
func (m *Monitor) zoneOf(l *List) *zoneHealth {
	byList := *m.byList.Load()
	if z, ok := byList[zoneKey{l.Key, l.Zone}]; ok {
		return z
	}
	// Not the exact spelling configured: a different case costs an
	// allocation, but only then.
	return byList[normalizedZoneKey(l)]
}

// Observe hears a fresh live answer: an operator error code or a record
// outside 127.0.0.0/8 makes the list's zone unhealthy at once. It does
// nothing for other outcomes: one client's timeout says little, and probes
// count failures.
func (m *Monitor) Observe(l *List, r Result) {
	if r.Outcome != Refused && r.Outcome != Bogus {
		return
	}
	z := m.zoneOf(l)
	if z == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if z.removed || !z.monitored || z.state == HealthUnhealthy {
		return
	}
	reason := reasonRefused
	if r.Outcome == Bogus {
		reason = reasonBogus
	}
	m.transition(z, HealthUnhealthy, reason+" (in a client lookup)", "client → "+describeCodes(r.Codes))
}

// Status returns each configured list's health, in configuration order.
func (m *Monitor) Status() []ListHealth {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ListHealth, 0, len(m.lists))
	for _, ref := range m.lists {
		z := ref.zone
		h := ListHealth{Name: ref.name, State: z.state, Reason: z.reason, Answer: z.answer, Since: z.since, Checked: z.checked,
			Rounds: z.rounds, Evidence: z.evidence}
		if u, ok := m.budget.usage(z.qzone); ok {
			h.Queries, h.DailyQueries = u.Sent, u.Limit
		}
		out = append(out, h)
	}
	return out
}

// Run probes every monitored list now, then every interval and whenever
// Configure adds lists, until ctx ends. Each round's probes are bounded by
// the lists' timeouts and by ctx.
func (m *Monitor) Run(ctx context.Context) {
	for {
		// This round covers any pending request for one.
		select {
		case <-m.kick:
		default:
		}
		m.Probe(ctx)
		m.mu.Lock()
		interval := m.interval
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-m.after(interval):
		case <-m.kick:
		}
	}
}

// transition moves z to state, logging the change once; m.mu must be held.
func (m *Monitor) transition(z *zoneHealth, state HealthState, reason, answer string) {
	if z.state == state {
		// Same state: keep the first reason, so Status shows what
		// caused it.
		return
	}
	from := z.state
	z.state, z.reason, z.answer, z.since = state, reason, answer, m.now()
	z.enabled.Store(state.Counted())
	if m.obs != nil {
		for _, name := range z.names {
			m.obs.HealthChanged(name, state)
		}
	}
	attrs := []any{"list", strings.Join(z.names, ", "), "from", from.String(), "to", state.String()}
	if reason != "" {
		attrs = append(attrs, "reason", reason, "answer", answer)
	}
	switch {
	case state == HealthUnhealthy:
		m.log.Error("list unhealthy, not counted until it recovers", attrs...)
	case from == HealthUnhealthy && state == HealthDegraded:
		m.log.Warn("list counted again, but degraded", attrs...)
	case from == HealthUnhealthy:
		m.log.Warn("list healthy again, counted", attrs...)
	case state == HealthDegraded:
		m.log.Warn("list degraded, still counted", attrs...)
	case from == HealthDegraded:
		m.log.Warn("list healthy", attrs...)
	default:
		m.log.Info("list healthy", attrs...)
	}
}
