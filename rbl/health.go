package rbl

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
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
	// Registerer, if set, gets the health metrics.
	Registerer prometheus.Registerer
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
	metrics   *healthMetrics
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

type zoneKey struct{ key, zone string }

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
	metrics, err := newHealthMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	m.metrics = metrics
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
			v4, v6 := l.IPv4, l.IPv6
			if !v4 && !v6 {
				v4, v6 = true, true
			}
			z.v4, z.v6 = z.v4 || v4, z.v6 || v6
		}
		// One entry opting out opts the zone out: they share one health,
		// and an opt-out means the zone has no test entries.
		z.monitored = z.monitored && l.Monitor
		timeout := l.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		z.timeout = max(z.timeout, timeout)
		byList[zoneKey{l.Key, l.Zone}] = z
		byList[zoneKey{strings.ToLower(l.Key), qzoneOnly(qzone, l.Key)}] = z
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
	m.metrics.sync(zones)
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

// qzoneOnly returns the zone part of a lower-case query zone.
func qzoneOnly(qzone, key string) string {
	if key == "" {
		return qzone
	}
	return qzone[len(key)+1:]
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
	return byList[zoneKey{strings.ToLower(l.Key), strings.ToLower(strings.TrimSuffix(l.Zone, "."))}]
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

// Probe runs one probe round over every monitored zone and returns when
// every probe has answered or timed out.
func (m *Monitor) Probe(ctx context.Context) {
	m.roundMu.Lock()
	defer m.roundMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	// Everything the probes need is copied under the lock: Configure may
	// change a zone's settings while the round runs.
	type round struct {
		z       *zoneHealth
		probes  []probe
		timeout time.Duration
		key     string
	}
	m.mu.Lock()
	resolver := m.resolver
	var rounds []round
	for _, z := range m.zones {
		switch {
		case !z.monitored:
		case m.budget.full(z.qzone):
			// Probes would only spend queries the lookups need; the
			// state stays as the last round left it.
			z.evidence = reasonOverBudget
		default:
			rounds = append(rounds, round{z: z, probes: m.plan(z), timeout: z.timeout, key: z.key})
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rounds {
		wg.Go(func() {
			results := runProbes(ctx, resolver, m.budget, r.z.qzone, r.probes, r.timeout, r.key)
			if ctx.Err() != nil {
				// Stopping: a cut-off probe says nothing about the list.
				return
			}
			m.judge(r.z, results)
		})
	}
	wg.Wait()
}

// probe is one question of a round.
type probe struct {
	// ip is the address asked, and addr that address as shown in logs.
	ip   netip.Addr
	addr string
	// name is the query name; it holds the key, so it is never shown.
	name string
	// listed is true for the test entry, which must be listed; every
	// other probe must not be.
	listed bool
	// required: a missing test entry degrades the list (the test entry of
	// the list's main family).
	required bool
	// canary: a random address of a reserved or public range, what.
	canary bool
	what   string
}

// The RFC 5782 §5 test points.
var (
	testPointV4    = netip.AddrFrom4([4]byte{127, 0, 0, 2})
	notTestPointV4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	testPointV6    = netip.MustParseAddr("::ffff:7f00:2")
	notTestPointV6 = netip.MustParseAddr("::ffff:7f00:1")
)

// plan picks the probes of one round for z; m.mu must be held (m.rnd).
func (m *Monitor) plan(z *zoneHealth) []probe {
	var ps []probe
	add := func(a netip.Addr, listed, required bool) *probe {
		// RFC 5782 §5: IPv6 lists list ::FFFF:7F00:2 as 32 nibbles,
		// not as the IPv4 address QueryName would make of it.
		name := nibbleName(a.As16(), z.qzone)
		if a.Is4() {
			name = QueryName(a, z.qzone)
		}
		ps = append(ps, probe{ip: a, addr: a.String(), name: name, listed: listed, required: required})
		return &ps[len(ps)-1]
	}
	if z.v4 {
		add(testPointV4, true, true)
		add(notTestPointV4, false, false)
	}
	if z.v6 {
		add(testPointV6, true, !z.v4)
		add(notTestPointV6, false, false)
	}
	for _, c := range drawCanaries(m.rnd, z.v4, z.v6) {
		p := add(c.addr, false, false)
		p.canary, p.what = true, c.what
	}
	if z.domain {
		// RFC 5782 §5: a domain list lists "test" and not "invalid".
		ps = append(ps,
			probe{addr: "test", name: "test." + z.qzone, listed: true, required: true},
			probe{addr: "invalid", name: "invalid." + z.qzone})
	}
	return ps
}

// nibbleName is the RFC 5782 IPv6 query name of a, even for an
// IPv4-mapped address.
func nibbleName(a [16]byte, zone string) string {
	return string(append(appendNibbles(make([]byte, 0, 64+len(zone)), a), zone...))
}

// probeResult is what one probe got.
type probeResult struct {
	probe
	outcome Outcome
	// answer describes the answer, e.g. "A 127.0.0.2" or "NXDOMAIN".
	answer string
}

// runProbes asks every probe in parallel, within timeout and qzone's
// budget; key is scrubbed from error messages.
func runProbes(ctx context.Context, resolver Resolver, budget *Budget, qzone string, ps []probe, timeout time.Duration, key string) []probeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	results := make([]probeResult, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		if !budget.take(qzone) {
			results[i] = probeResult{probe: p, outcome: OverBudget, answer: "not sent: daily query budget spent"}
			continue
		}
		wg.Go(func() {
			m, err := resolver.Query(ctx, p.name, dns.TypeA)
			a := newAnswer(m, err)
			r := probeResult{probe: p}
			switch a.kind {
			case answerError:
				r.outcome, r.answer = Error, scrubKey(a.err.Error(), key)
			case answerTimeout:
				r.outcome, r.answer = Timeout, fmt.Sprintf("no answer within %s", timeout)
			case answerNegative:
				r.outcome, r.answer = NotListed, "NXDOMAIN"
				if m != nil && m.Rcode == dns.RcodeSuccess {
					r.answer = "NOERROR without A records"
				}
			default:
				// Raw classification: no filters, so any sane code is
				// a listing.
				var raw List
				r.outcome, _ = raw.classify(a.codes)
				r.answer = describeCodes(a.codes.addrs())
			}
			results[i] = r
		})
	}
	wg.Wait()
	return results
}

func describeCodes(codes []netip.Addr) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = c.String()
	}
	return "A " + strings.Join(s, ", ")
}

const (
	reasonRefused    = "answers an operator error code (refused: public or unregistered resolver, or over quota)"
	reasonBogus      = "answers records outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN?)"
	reasonWorld      = "lists the world"
	reasonOverBudget = "not probed: the daily query budget is spent"
)

// judge turns a round's answers into z's new state.
func (m *Monitor) judge(z *zoneHealth, results []probeResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if z.removed || !z.monitored {
		return
	}
	z.checked = m.now()
	z.rounds++
	canaries := judgeCanaries(results)
	z.evidence = roundEvidence(results, canaries)
	for _, r := range results {
		m.metrics.probed(z, r.outcome)
	}
	seen := func(r probeResult) string { return r.addr + " → " + r.answer }
	// Worst first: each of these alone makes the zone unhealthy.
	for _, r := range results {
		if r.outcome == Bogus {
			m.transition(z, HealthUnhealthy, reasonBogus, seen(r))
			return
		}
	}
	for _, r := range results {
		if r.outcome == Refused {
			m.transition(z, HealthUnhealthy, reasonRefused, seen(r))
			return
		}
	}
	// Proof of listing the world: 127.0.0.1 (or ::ffff:7f00:1) listed, or
	// every canary of a family. Some canaries listed are not (below).
	for _, r := range results {
		if !r.listed && !r.canary && r.outcome == Listed {
			m.transition(z, HealthUnhealthy, reasonWorld+": "+r.addr+" is listed, which RFC 5782 §5 forbids every list", seen(r))
			return
		}
	}
	if canaries.world != "" {
		m.transition(z, HealthUnhealthy, reasonWorld+": "+canaries.world, seen(*canaries.first))
		return
	}
	for _, r := range results {
		if r.outcome == OverBudget {
			// The budget ran out during the round: it proves nothing.
			return
		}
	}
	tooMany, answered := false, false
	var lastFailure probeResult
	for _, r := range results {
		if r.outcome.Failed() {
			z.failures++
			lastFailure = r
			tooMany = tooMany || z.failures >= m.threshold
		} else {
			z.failures = 0
			answered = true
		}
	}
	if tooMany {
		m.transition(z, HealthUnhealthy, fmt.Sprintf("not answering: %d or more probes in a row failed", m.threshold), seen(lastFailure))
		return
	}
	var degraded []string
	answer := ""
	degrade := func(reason, ans string) {
		degraded = append(degraded, reason)
		if answer == "" {
			answer = ans
		}
	}
	for _, r := range results {
		if !r.required {
			continue
		}
		switch {
		case r.outcome.Failed():
			// Inconclusive: keep the state until a round says more.
			return
		case r.outcome != Listed:
			degrade("test entry "+r.addr+" is not listed (RFC 5782 §5): the list may not work; still counted (a list of your own should list it)", seen(r))
		}
	}
	for _, r := range results {
		if r.listed && !r.required && r.outcome == NotListed {
			degrade("IPv6 test entry "+r.addr+" is not listed: set ipv6 = false if the list has no IPv6 data", seen(r))
		}
	}
	if canaries.some != "" {
		degrade(canaries.some, seen(*canaries.first))
	}
	if len(degraded) > 0 {
		m.transition(z, HealthDegraded, strings.Join(degraded, "; "), answer)
		return
	}
	if answered {
		m.transition(z, HealthHealthy, "", "")
	}
}

// roundEvidence sums a round up in one line: each test point's answer,
// then how many canaries were listed, and which.
func roundEvidence(results []probeResult, canaries canaryFinding) string {
	var parts []string
	for _, r := range results {
		if !r.canary {
			parts = append(parts, r.addr+" "+evidenceWord(r))
		}
	}
	line := strings.Join(parts, ", ")
	if canaries.asked > 0 {
		line += fmt.Sprintf("; canaries: %d of %d listed", canaries.listed, canaries.asked)
		if len(canaries.listedAddrs) > 0 {
			line += " (" + strings.Join(canaries.listedAddrs, ", ") + ")"
		}
		if canaries.unanswered > 0 {
			line += fmt.Sprintf(", %d unanswered", canaries.unanswered)
		}
		if canaries.notSent > 0 {
			line += fmt.Sprintf(", %d not sent (budget)", canaries.notSent)
		}
	}
	return line
}

// evidenceWord says in a word or two what a probe got.
func evidenceWord(r probeResult) string {
	switch r.outcome {
	case Listed:
		return "listed"
	case NotListed:
		return "not listed"
	case Timeout:
		return "unanswered"
	case OverBudget:
		return "not sent (budget)"
	default:
		return r.answer
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
	m.metrics.set(z)
	m.metrics.transitioned(z)
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

// healthMetrics are the Monitor's Prometheus metrics; nil-safe.
type healthMetrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	probes      *prometheus.CounterVec
	// shown are the list names the state gauge has series for.
	shown map[string]bool
}

func newHealthMetrics(reg prometheus.Registerer) (*healthMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	h := &healthMetrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rblmilter_list_health_state",
			Help: "List health: 1 for the list's current state (unknown, healthy, degraded, unhealthy, unmonitored), 0 for the others. Unhealthy lists are not counted.",
		}, []string{"list", "state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_list_health_transitions_total",
			Help: "List health changes, by list and the state entered.",
		}, []string{"list", "state"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_health_probes_total",
			Help: "Health probe queries (RFC 5782 test entries and canary addresses), by list and raw outcome.",
		}, []string{"list", "outcome"}),
		shown: map[string]bool{},
	}
	for _, c := range []prometheus.Collector{h.state, h.transitions, h.probes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("rbl: health metrics: %w", err)
		}
	}
	return h, nil
}

// sync makes the state gauge show exactly the lists of zones.
func (h *healthMetrics) sync(zones []*zoneHealth) {
	if h == nil {
		return
	}
	now := map[string]bool{}
	for _, z := range zones {
		for _, name := range z.names {
			now[name] = true
		}
	}
	for name := range h.shown {
		if !now[name] {
			h.state.DeletePartialMatch(prometheus.Labels{"list": name})
		}
	}
	h.shown = now
	for _, z := range zones {
		h.set(z)
	}
}

func (h *healthMetrics) set(z *zoneHealth) {
	if h == nil {
		return
	}
	for _, name := range z.names {
		for s, label := range healthStateNames {
			v := 0.0
			if HealthState(s) == z.state {
				v = 1
			}
			h.state.WithLabelValues(name, label).Set(v)
		}
	}
}

func (h *healthMetrics) transitioned(z *zoneHealth) {
	if h == nil {
		return
	}
	for _, name := range z.names {
		h.transitions.WithLabelValues(name, z.state.String()).Inc()
	}
}

func (h *healthMetrics) probed(z *zoneHealth, o Outcome) {
	if h == nil {
		return
	}
	for _, name := range z.names {
		h.probes.WithLabelValues(name, o.String()).Inc()
	}
}
