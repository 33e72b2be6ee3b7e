package rbl

import (
	"fmt"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// maxCodesPerList bounds the distinct values of the code label of
// rblmilter_listed_total per list; further codes are counted as "other".
// A filter like 127.0.[0..255].[1..3] would otherwise allow 768 series.
const maxCodesPerList = 32

// Metrics exports the engine's work as Prometheus metrics; it is the one
// place where rbl meets Prometheus. It is the Observer of every Checker of
// a process (pass it as Options.Observer across reloads) and the
// HealthObserver of its Monitor (MonitorOptions.Observer), and reads the
// Cache's and the Budget's counts at scrape time. Labels are bounded: list
// display names (never a key), check, outcome, decision and health state
// names, and listing codes inside 127.0.0.0/8; never a client address or
// name.
type Metrics struct {
	queries     *prometheus.CounterVec
	lookups     *prometheus.CounterVec
	listed      *prometheus.CounterVec
	lookupTime  *prometheus.HistogramVec
	verdictTime prometheus.Histogram
	early       *prometheus.CounterVec
	byList      *prometheus.CounterVec

	codesMu sync.Mutex
	// codes are the code label values used so far, per list.
	codes map[string]map[netip.Addr]string

	// perList caches each list's children of the vectors: LookupDone runs
	// for every list on every Check, and WithLabelValues hashes its
	// labels each time. The map and its listMetrics are never changed
	// once stored, only replaced (under perListMu), so that readers take
	// no lock: every session's every lookup reads it.
	perListMu sync.Mutex
	perList   atomic.Pointer[map[string]*listMetrics]

	health healthMetrics
}

// listMetrics are one list's series.
type listMetrics struct {
	// lookups are by check and outcome, made on a check's first use: a
	// list is asked about one check (IP lists) or a few.
	lookups    [numChecks]*[NoName + 1]prometheus.Counter
	lookupTime prometheus.Observer
}

// lookupBuckets span DNS lookups from a local caching resolver's answer
// to a remote list's and to a failing one's timeout.
var lookupBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// verdictBuckets add finer low buckets: a verdict from the cache asks no
// DNS at all.
var verdictBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics registers the engine's and the health monitor's metrics with
// reg, the cache's when cache is not nil, and the query budget's when
// budget is not nil.
func NewMetrics(reg prometheus.Registerer, cache *Cache, budget *Budget) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("rbl: metrics: no registerer")
	}
	m := &Metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_dns_queries_total",
			Help: "DNS queries sent for client lookups (after the cache and de-duplication), by list and query type (A, TXT). Health probes are counted in rblmilter_health_probes_total, and both together in rblmilter_list_daily_queries.",
		}, []string{"list", "type"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_lookups_total",
			Help: "List lookups for clients, cached or not, by list, check (ip, or the name asked: client, reverse_client, helo, sender) and outcome (listed, not_listed, refused, bogus, error, timeout, disabled, over_budget). A domain list counts one lookup per name asked.",
		}, []string{"list", "check", "outcome"}),
		listed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_listed_total",
			Help: fmt.Sprintf("Listed answers by list, check and A record (127.0.0.0/8 code; at most %d codes per list, then \"other\").", maxCodesPerList),
		}, []string{"list", "check", "code"}),
		lookupTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rblmilter_lookup_duration_seconds",
			Help:    "Duration of list lookups that asked DNS (cache hits are not observed), by list.",
			Buckets: lookupBuckets,
		}, []string{"list"}),
		verdictTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rblmilter_verdict_duration_seconds",
			Help:    "Time from the start of a client's check to its verdict (the whole-connection lookup).",
			Buckets: verdictBuckets,
		}),
		early: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_early_decisions_total",
			Help: "Verdicts decided before every list answered, by decision.",
		}, []string{"decision"}),
		byList: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_list_decisions_total",
			Help: "Verdicts a list's counted listing took part in, by list and decision (reject, allowlisted, ...): rejects per list.",
		}, []string{"list", "decision"}),
		codes:  map[string]map[netip.Addr]string{},
		health: newHealthMetrics(),
	}
	m.perList.Store(&map[string]*listMetrics{})
	collectors := []prometheus.Collector{m.queries, m.lookups, m.listed, m.lookupTime, m.verdictTime, m.early, m.byList,
		m.health.state, m.health.transitions, m.health.probes}
	if cache != nil {
		collectors = append(collectors, newCacheCollector(cache))
	}
	if budget != nil {
		collectors = append(collectors, newBudgetCollector(budget))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("rbl: metrics: %w", err)
		}
	}
	return m, nil
}

// QuerySent counts a DNS query.
func (m *Metrics) QuerySent(list string, qtype uint16) {
	m.queries.WithLabelValues(list, dns.TypeToString[qtype]).Inc()
}

// LookupDone counts a lookup, its listing codes and its duration.
func (m *Metrics) LookupDone(r Result) {
	if r.Outcome == Pending {
		// Not an end: LookupDone is called again with the real one.
		return
	}
	name := r.List.display()
	lm, byOutcome := m.list(name, r.Check)
	if int(r.Outcome) < len(byOutcome) && byOutcome[r.Outcome] != nil {
		byOutcome[r.Outcome].Inc()
	}
	if r.Outcome == Listed {
		for _, c := range r.Codes {
			m.listed.WithLabelValues(name, r.Check.String(), m.codeLabel(name, c)).Inc()
		}
	}
	// Cached answers and lists not asked took no DNS time.
	if !r.Cached && r.Outcome != Disabled && r.Outcome != OverBudget {
		lm.lookupTime.Observe(r.Duration.Seconds())
	}
}

// list returns the series of the list named name, and its lookup counters
// for check, creating them on first use. Names come from the
// configuration, so the map stays small.
func (m *Metrics) list(name string, check Check) (*listMetrics, *[NoName + 1]prometheus.Counter) {
	if check >= numChecks {
		check = CheckIP
	}
	if lm := (*m.perList.Load())[name]; lm != nil && lm.lookups[check] != nil {
		return lm, lm.lookups[check]
	}
	m.perListMu.Lock()
	defer m.perListMu.Unlock()
	old := *m.perList.Load()
	if lm := old[name]; lm != nil && lm.lookups[check] != nil {
		return lm, lm.lookups[check]
	}
	lm := &listMetrics{}
	if prev := old[name]; prev != nil {
		*lm = *prev
	} else {
		lm.lookupTime = m.lookupTime.WithLabelValues(name)
	}
	byOutcome := new([NoName + 1]prometheus.Counter)
	for o := range byOutcome {
		// Pending is never an end, and NoName is never a lookup.
		if Outcome(o) != Pending && Outcome(o) != NoName {
			byOutcome[o] = m.lookups.WithLabelValues(name, check.String(), Outcome(o).String())
		}
	}
	lm.lookups[check] = byOutcome
	next := make(map[string]*listMetrics, len(old)+1)
	maps.Copy(next, old)
	next[name] = lm
	m.perList.Store(&next)
	return lm, byOutcome
}

// codeLabel bounds the code label: only codes inside 127.0.0.0/8 (Listed
// answers have no others), and at most maxCodesPerList per list.
func (m *Metrics) codeLabel(list string, code netip.Addr) string {
	if !code.Is4() || code.As4()[0] != 127 {
		return "other"
	}
	m.codesMu.Lock()
	defer m.codesMu.Unlock()
	seen := m.codes[list]
	if seen == nil {
		seen = map[netip.Addr]string{}
		m.codes[list] = seen
	}
	label, ok := seen[code]
	if !ok {
		if len(seen) >= maxCodesPerList {
			return "other"
		}
		label = code.String()
		seen[code] = label
	}
	return label
}

// VerdictDone observes the verdict's duration, early decisions and the
// lists that counted towards it.
func (m *Metrics) VerdictDone(v Verdict) {
	m.verdictTime.Observe(v.Duration.Seconds())
	decision := v.Decision.String()
	if v.Early {
		m.early.WithLabelValues(decision).Inc()
	}
	for i := range v.Results {
		r := &v.Results[i]
		if r.Outcome == Listed && r.Weight != 0 {
			m.byList.WithLabelValues(r.List.display(), decision).Inc()
		}
	}
}

// cacheCollector reads the cache's counters at scrape time.
type cacheCollector struct {
	cache                                   *Cache
	hits, misses, evictions, size, capacity *prometheus.Desc
}

func newCacheCollector(c *Cache) *cacheCollector {
	return &cacheCollector{
		cache:     c,
		hits:      prometheus.NewDesc("rblmilter_cache_hits_total", "Cache lookups answered from the cache (per query zone and client).", nil, nil),
		misses:    prometheus.NewDesc("rblmilter_cache_misses_total", "Cache lookups not found or expired.", nil, nil),
		evictions: prometheus.NewDesc("rblmilter_cache_evictions_total", "Cached answers dropped to make room (the cache is full).", nil, nil),
		size:      prometheus.NewDesc("rblmilter_cache_entries", "Answers in the cache now (IPv4, IPv6 and names).", nil, nil),
		capacity:  prometheus.NewDesc("rblmilter_cache_capacity", "Answers the cache holds at most of each kind: IPv4, IPv6, names (cache.size).", nil, nil),
	}
}

// Describe sends the descriptors.
func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
	ch <- c.evictions
	ch <- c.size
	ch <- c.capacity
}

// Collect sends the cache's current numbers.
func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.cache.Stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(c.cache.Config().Size))
}

// healthMetrics are the health monitor's series.
type healthMetrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	probes      *prometheus.CounterVec

	// shownMu guards shown: the list names the state gauge has series for.
	shownMu sync.Mutex
	shown   map[string]bool
}

func newHealthMetrics() healthMetrics {
	return healthMetrics{
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
}

// HealthConfigured makes the state gauge show exactly the lists of states.
func (m *Metrics) HealthConfigured(states map[string]HealthState) {
	h := &m.health
	h.shownMu.Lock()
	defer h.shownMu.Unlock()
	for name := range h.shown {
		if _, ok := states[name]; !ok {
			h.state.DeletePartialMatch(prometheus.Labels{"list": name})
		}
	}
	h.shown = make(map[string]bool, len(states))
	for name, state := range states {
		h.shown[name] = true
		h.setState(name, state)
	}
}

// HealthChanged sets the list's state and counts the transition.
func (m *Metrics) HealthChanged(list string, state HealthState) {
	m.health.setState(list, state)
	m.health.transitions.WithLabelValues(list, state.String()).Inc()
}

// ProbeDone counts a probe by its raw outcome.
func (m *Metrics) ProbeDone(list string, o Outcome) {
	m.health.probes.WithLabelValues(list, o.String()).Inc()
}

// setState sets 1 for the list's state and 0 for the others.
func (h *healthMetrics) setState(list string, state HealthState) {
	for s, label := range healthStateNames {
		v := 0.0
		if HealthState(s) == state {
			v = 1
		}
		h.state.WithLabelValues(list, label).Set(v)
	}
}

// budgetCollector reads a Budget's counts at scrape time, so that sending
// a query costs no metric update.
type budgetCollector struct {
	b           *Budget
	sent, limit *prometheus.Desc
}

func newBudgetCollector(b *Budget) *budgetCollector {
	return &budgetCollector{
		b: b,
		sent: prometheus.NewDesc("rblmilter_list_daily_queries",
			"DNS queries the list's query zone sent in the last 24 hours (client lookups after the cache and de-duplication, TXT queries and health probes), the count daily_queries limits.",
			[]string{"list"}, nil),
		limit: prometheus.NewDesc("rblmilter_list_daily_queries_limit",
			"The list's daily_queries: queries its zone may send in any 24 hours (0: no limit). At the limit the list is not asked (lookup outcome over_budget).",
			[]string{"list"}, nil),
	}
}

// Describe sends the descriptors.
func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sent
	ch <- c.limit
}

// Collect sends each configured list's count and limit; entries sharing a
// query zone show the zone's numbers.
func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.b.now()
	for _, z := range *c.b.zones.Load() {
		names, u := c.b.snapshot(z, now)
		for _, name := range names {
			ch <- prometheus.MustNewConstMetric(c.sent, prometheus.GaugeValue, float64(u.Sent), name)
			ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(u.Limit), name)
		}
	}
}
