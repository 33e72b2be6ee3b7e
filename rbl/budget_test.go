package rbl_test

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// budgetEnv is a Checker on bl.test with a Budget on an injected clock.
type budgetEnv struct {
	*env
	budget *rbl.Budget
	logs   *testutil.Buffer
	reg    *prometheus.Registry
	next   byte
}

func newBudgetEnv(t *testing.T, lists []rbl.List) *budgetEnv {
	t.Helper()
	clk := newClock()
	e := &budgetEnv{logs: &testutil.Buffer{}, reg: prometheus.NewRegistry()}
	e.budget = rbl.NewBudget(rbl.BudgetOptions{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	metrics, err := rbl.NewMetrics(e.reg, nil, e.budget)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := rbl.NewCache(rbl.CacheConfig{}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	e.env = newEnv(t, rbl.Config{Lists: lists}, rbl.Options{Budget: e.budget, Observer: metrics, Cache: cache, Now: clk.Now})
	e.env.clock = clk
	if err := e.budget.Configure(e.c.Config().Lists); err != nil {
		t.Fatal(err)
	}
	return e
}

// check looks up a client never seen before (so never cached).
func (e *budgetEnv) check(t *testing.T) rbl.Verdict {
	t.Helper()
	e.next++
	return e.c.Check(t.Context(), netip.AddrFrom4([4]byte{192, 0, 2, e.next}))
}

func (e *budgetEnv) sent(t *testing.T, list string) float64 {
	t.Helper()
	v, ok := metric(t, e.reg, "rblmilter_list_daily_queries", "list", list)
	if !ok {
		t.Fatalf("no rblmilter_list_daily_queries for %s", list)
	}
	return v
}

func limited(t *testing.T, zone string, limit int) rbl.List {
	l := site(t, zone)
	l.DailyQueries = limit
	return l
}

func TestBudgetStopsAskingAtTheLimitAndFailsOpen(t *testing.T) {
	e := newBudgetEnv(t, []rbl.List{limited(t, "bl.test", 10)})
	// Every client is listed: a list asked would refuse them all.
	e.srv.SetDefault(rbltest.A("127.0.0.2"))
	for i := 1; i <= 10; i++ {
		if v := e.check(t); v.Decision != rbl.Reject {
			t.Fatalf("query %d: %s %v", i, v.Decision, outcomes(v))
		}
		if i == 7 && e.logs.Count("near its daily query budget") != 0 {
			t.Fatalf("warned at 7 of 10:\n%s", e.logs)
		}
	}
	if n := e.logs.Count("level=WARN", "list near its daily query budget (80%)", "list=bl.test", "daily_queries=10"); n != 1 {
		t.Errorf("%d warnings at 80%%, want 1:\n%s", n, e.logs)
	}
	for range 3 {
		v := e.check(t)
		if v.Decision != rbl.Accept || v.Results[0].Outcome != rbl.OverBudget {
			t.Fatalf("over budget: %s %v, want accept (not asked)", v.Decision, outcomes(v))
		}
	}
	if n := e.srv.TotalQueries(); n != 10 {
		t.Errorf("%d queries sent, want the limit 10", n)
	}
	if n := e.logs.Count("level=ERROR", "at its daily query budget", "list=bl.test"); n != 1 {
		t.Errorf("%d lines for reaching the limit, want 1:\n%s", n, e.logs)
	}
	mustMetric(t, e.reg, 10, "rblmilter_list_daily_queries", "list", "bl.test")
	mustMetric(t, e.reg, 10, "rblmilter_list_daily_queries_limit", "list", "bl.test")
	mustMetric(t, e.reg, 3, "rblmilter_lookups_total", "list", "bl.test", "check", "ip", "outcome", "over_budget")

	// A day later the window is empty again.
	e.clock.Advance(rbl.BudgetWindow + time.Minute)
	if v := e.check(t); v.Decision != rbl.Reject {
		t.Errorf("after the window: %s %v", v.Decision, outcomes(v))
	}
	mustMetric(t, e.reg, 1, "rblmilter_list_daily_queries", "list", "bl.test")
	if n := e.logs.Count("level=WARN", "below 80% of its daily query budget again", "list=bl.test"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, e.logs)
	}
}

// A domain list's name queries count against its daily_queries like an IP
// list's, and a name not sent for the budget counts as not asked: the
// client is not refused, nor tempfailed by on_error = "tempfail".
func TestBudgetCountsDomainListNamesAndFailsOpen(t *testing.T) {
	l := rbl.List{Zone: "dbl.test", Type: rbl.DomainList, Checks: rbl.Checks(rbl.CheckHelo), Weight: 3,
		OnError: rbl.FailTempfail, DailyQueries: 5}
	e := newBudgetEnv(t, []rbl.List{l})
	// Every name is listed: a list asked would refuse every client.
	e.srv.SetDefault(rbltest.A("127.0.1.2"))
	helo := func(name string) rbl.Verdict {
		t.Helper()
		s := e.c.Start(cleanClient)
		if err := s.Ask(rbl.CheckHelo, name); err != nil {
			t.Fatal(err)
		}
		return settle(t, s)
	}
	for i := 1; i <= 4; i++ {
		// One name each: h1.example is its own registered domain.
		if v := helo(fmt.Sprintf("h%d.example", i)); v.Decision != rbl.Reject {
			t.Fatalf("name %d: %s %v", i, v.Decision, outcomes(v))
		}
	}
	// Two names, one query left: the one asked is listed.
	if v := helo("mail.h5.example"); v.Decision != rbl.Reject || v.Results[0].Outcome != rbl.Listed {
		t.Fatalf("a name and its registered domain with one query left: %s %v", v.Decision, outcomes(v))
	}
	v := helo("h6.example")
	r := v.Results[0]
	if v.Decision != rbl.Accept || r.Outcome != rbl.OverBudget || r.Weight != 0 || r.Check != rbl.CheckHelo || r.Name != "h6.example" {
		t.Fatalf("over budget: %s, result %+v; want accept, over_budget for helo=h6.example", v.Decision, r)
	}
	if n := e.srv.TotalQueries(); n != 5 {
		t.Errorf("%d queries sent, want the limit 5", n)
	}
	mustMetric(t, e.reg, 5, "rblmilter_list_daily_queries", "list", "dbl.test")
	mustMetric(t, e.reg, 2, "rblmilter_lookups_total", "list", "dbl.test", "check", "helo", "outcome", "over_budget")

	e.clock.Advance(rbl.BudgetWindow + time.Minute)
	if v := helo("h7.example"); v.Decision != rbl.Reject {
		t.Errorf("after the window: %s %v", v.Decision, outcomes(v))
	}
}

func TestBudgetWindowRollsOver(t *testing.T) {
	e := newBudgetEnv(t, []rbl.List{limited(t, "bl.test", 10)})
	t0 := e.clock.Now()
	for range 5 {
		e.check(t)
	}
	e.clock.Advance(12 * time.Hour)
	for range 5 {
		e.check(t)
	}
	if v := e.check(t); v.Results[0].Outcome != rbl.OverBudget {
		t.Fatalf("11th query in 24h: %v", outcomes(v))
	}
	// Just short of a day after the first five they still count.
	e.clock.Advance(t0.Add(rbl.BudgetWindow - time.Second).Sub(e.clock.Now()))
	if v := e.check(t); v.Results[0].Outcome != rbl.OverBudget {
		t.Fatalf("23:59:59 after: %v", outcomes(v))
	}
	if got := e.sent(t, "bl.test"); got != 10 {
		t.Errorf("in the window just short of a day: %v, want 10", got)
	}
	// A minute past a day they have left; the noon five stay.
	e.clock.Advance(time.Minute + time.Second)
	if got := e.sent(t, "bl.test"); got != 5 {
		t.Errorf("in the window a day later: %v, want 5", got)
	}
	for i := range 5 {
		if v := e.check(t); v.Results[0].Outcome != rbl.NotListed {
			t.Fatalf("freed query %d: %v", i+1, outcomes(v))
		}
	}
	if v := e.check(t); v.Results[0].Outcome != rbl.OverBudget {
		t.Errorf("past the freed five: %v", outcomes(v))
	}
	// Half a day on, the noon five leave too.
	e.clock.Advance(12 * time.Hour)
	if got := e.sent(t, "bl.test"); got != 5 {
		t.Errorf("after the noon five left: %v, want 5", got)
	}
	if n := e.srv.TotalQueries(); n != 15 {
		t.Errorf("%d queries sent, want 15", n)
	}
}

// A reload builds a new Checker; the Budget, which outlives it, keeps the
// counts of the zones that stay and applies the new limits at once.
func TestBudgetReloadKeepsCounts(t *testing.T) {
	e := newBudgetEnv(t, []rbl.List{limited(t, "bl.test", 4), site(t, "other.test")})
	for range 4 {
		e.check(t)
	}
	reload := func(lists ...rbl.List) *rbl.Checker {
		t.Helper()
		c, err := rbl.NewChecker(rbl.Config{Lists: lists}, rbl.Options{Resolver: resolver(t, e.srv.Addr()), Budget: e.budget})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if err := e.budget.Configure(c.Config().Lists); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The same query zone, however it is spelled.
	same := limited(t, "BL.Test", 4)
	same.Name = "bl.test"
	c := reload(same)
	if got := e.sent(t, "bl.test"); got != 4 {
		t.Errorf("count after reload: %v, want 4", got)
	}
	if v := c.Check(t.Context(), ip("192.0.2.200")); v.Results[0].Outcome != rbl.OverBudget {
		t.Errorf("after reload, still at the limit: %v", outcomes(v))
	}
	if _, ok := metric(t, e.reg, "rblmilter_list_daily_queries", "list", "other.test"); ok {
		t.Error("a list removed by the reload keeps its series")
	}
	// A higher limit applies at once.
	c = reload(limited(t, "bl.test", 6))
	if v := c.Check(t.Context(), ip("192.0.2.201")); v.Results[0].Outcome != rbl.NotListed {
		t.Errorf("after raising the limit: %v", outcomes(v))
	}
	mustMetric(t, e.reg, 5, "rblmilter_list_daily_queries", "list", "bl.test")
	mustMetric(t, e.reg, 6, "rblmilter_list_daily_queries_limit", "list", "bl.test")
}

// Only queries really sent count: cache hits and checks sharing a query
// cost nothing; TXT queries and health probes cost one each.
func TestBudgetCountsQueriesReallySent(t *testing.T) {
	bl := limited(t, "bl.test", 1000)
	e := newBudgetEnv(t, []rbl.List{bl})
	e.check(t)
	for range 3 {
		e.c.Check(t.Context(), netip.AddrFrom4([4]byte{192, 0, 2, e.next}))
	}
	if got := e.sent(t, "bl.test"); got != 1 {
		t.Errorf("one client checked four times (cache): %v queries counted, want 1", got)
	}
	release := make(chan struct{})
	e.srv.Set(rbl.QueryName(ip("198.51.100.1"), "bl.test"), rbltest.Hold(release))
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { e.c.Check(t.Context(), ip("198.51.100.1")) })
	}
	e.srv.WaitQueries(t, rbl.QueryName(ip("198.51.100.1"), "bl.test"), 1)
	close(release)
	wg.Wait()
	if got := e.sent(t, "bl.test"); got != 2 {
		t.Errorf("five concurrent checks of one client: %v counted, want 2", got)
	}

	// A listing whose TXT record is fetched costs two queries.
	txt, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{bl}, FetchTXT: true}, rbl.Options{Resolver: resolver(t, e.srv.Addr()), Budget: e.budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(txt.Close)
	e.srv.Set(rbl.QueryName(ip("203.0.113.1"), "bl.test"), rbltest.A("127.0.0.2"), rbltest.TXT("listed"))
	if v := txt.Check(t.Context(), ip("203.0.113.1")); v.Results[0].TXT != "listed" {
		t.Fatalf("%+v", v.Results[0])
	}
	if got := e.sent(t, "bl.test"); got != 4 {
		t.Errorf("after a listing with TXT: %v, want 4", got)
	}

	// A probe round costs what it asks.
	mon, err := rbl.NewMonitor(rbl.MonitorOptions{Budget: e.budget, Rand: constSource{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Configure(rbl.MonitorConfig{Resolver: resolver(t, e.srv.Addr()), Lists: e.c.Config().Lists}); err != nil {
		t.Fatal(err)
	}
	before := e.srv.TotalQueries()
	mon.Probe(t.Context())
	probes := e.srv.TotalQueries() - before
	if probes < 15 {
		t.Fatalf("a probe round sent %d queries", probes)
	}
	if got := e.sent(t, "bl.test"); got != float64(4+probes) {
		t.Errorf("after a probe round of %d queries: %v, want %d", probes, got, 4+probes)
	}
	if h := mon.Status()[0]; h.Queries != 4+probes || h.DailyQueries != 1000 {
		t.Errorf("status: %+v", h)
	}
}

// A zone with its budget spent is not probed either: the probes would
// take queries the lookups need. Its health stays as it was.
func TestBudgetSpentSkipsProbes(t *testing.T) {
	e := newBudgetEnv(t, []rbl.List{limited(t, "bl.test", 25)})
	serveTestEntries(e.srv, "bl.test")
	mon, err := rbl.NewMonitor(rbl.MonitorOptions{Budget: e.budget, Rand: constSource{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Configure(rbl.MonitorConfig{Resolver: resolver(t, e.srv.Addr()), Lists: e.c.Config().Lists}); err != nil {
		t.Fatal(err)
	}
	mon.Probe(t.Context())
	h := mon.Status()[0]
	if h.State != rbl.HealthHealthy || h.Rounds != 1 {
		t.Fatalf("first round: %+v", h)
	}
	// The second round runs out of budget part way: it proves nothing.
	mon.Probe(t.Context())
	if h := mon.Status()[0]; h.State != rbl.HealthHealthy || !strings.Contains(h.Evidence, "13 not sent (budget)") || h.Queries != 25 {
		t.Errorf("round cut short by the budget: %+v", h)
	}
	before := e.srv.TotalQueries()
	mon.Probe(t.Context())
	if n := e.srv.TotalQueries() - before; n != 0 {
		t.Errorf("a zone over budget got %d probes", n)
	}
	if h := mon.Status()[0]; h.State != rbl.HealthHealthy || h.Evidence != "not probed: the daily query budget is spent" {
		t.Errorf("third round: %+v", h)
	}
}

func TestBudgetSharedZoneAndBadLimits(t *testing.T) {
	a, b := limited(t, "bl.test=127.0.0.2", 0), limited(t, "bl.test=127.0.0.4", 3)
	a.Name, b.Name = "A", "B"
	e := newBudgetEnv(t, []rbl.List{a, b})
	for range 3 {
		e.check(t)
	}
	if v := e.check(t); v.Results[0].Outcome != rbl.OverBudget || v.Results[1].Outcome != rbl.OverBudget {
		t.Errorf("entries sharing a zone share its strictest limit: %v", outcomes(v))
	}
	for _, name := range []string{"A", "B"} {
		mustMetric(t, e.reg, 3, "rblmilter_list_daily_queries", "list", name)
		mustMetric(t, e.reg, 3, "rblmilter_list_daily_queries_limit", "list", name)
	}
	bad := limited(t, "bl.test", -1)
	if err := e.budget.Configure([]rbl.List{bad}); err == nil || !strings.Contains(err.Error(), "negative daily query limit -1") {
		t.Errorf("Configure: %v", err)
	}
	if _, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{bad}}, rbl.Options{Resolver: resolver(t, e.srv.Addr())}); err == nil || !strings.Contains(err.Error(), "negative daily query limit -1") {
		t.Errorf("NewChecker: %v", err)
	}
}

func TestBudgetConcurrentUse(t *testing.T) {
	e := newBudgetEnv(t, []rbl.List{limited(t, "bl.test", 50)})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				e.c.Check(t.Context(), netip.AddrFrom4([4]byte{10, byte(g), 0, byte(i)}))
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			if err := e.budget.Configure([]rbl.List{limited(t, "bl.test", 50+i%2)}); err != nil {
				t.Error(err)
			}
			if _, err := e.reg.Gather(); err != nil {
				t.Error(err)
			}
			e.clock.Advance(time.Minute)
		}
	})
	wg.Wait()
	if n := e.srv.TotalQueries(); n > 51 {
		t.Errorf("%d queries sent under a limit of 50 or 51", n)
	}
}
