package rbl_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// The RFC 5782 IPv6 test entries as nibble names, written out by hand so
// that the test does not share the code under test.
const (
	v6TestEntry    = "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	v6NotTestEntry = "1.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
)

// zoneRouter sends each query to the resolver of the zone it ends in, so
// that each zone can have its own fake server (and its own default answer).
type zoneRouter map[string]rbl.Resolver

func (z zoneRouter) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for zone, r := range z {
		if strings.HasSuffix(name, "."+zone) {
			return r.Query(ctx, name, qtype)
		}
	}
	return nil, errors.New("test router: no server for " + name)
}

// serveTestEntries makes srv answer zone's RFC 5782 test entries (IPv4 and
// IPv6) like an honest list.
func serveTestEntries(srv *rbltest.Server, zone string) {
	srv.Set(rbl.QueryName(ip("127.0.0.2"), zone), rbltest.A("127.0.0.2"))
	srv.Set(v6TestEntry+zone, rbltest.A("127.0.0.2"))
}

func dropTestEntries(srv *rbltest.Server, zone string) {
	srv.Delete(rbl.QueryName(ip("127.0.0.2"), zone))
	srv.Delete(v6TestEntry + zone)
}

// healthEnv is a Checker and a Monitor over two fake lists, bad.test and
// good.test, each on its own server.
type healthEnv struct {
	bad, good *rbltest.Server
	clock     *clock
	logs      *testutil.Buffer
	reg       *prometheus.Registry
	mon       *rbl.Monitor
	c         *rbl.Checker
	resolver  rbl.Resolver
}

func newHealthEnv(t *testing.T, lists []rbl.List, opts rbl.MonitorOptions) *healthEnv {
	t.Helper()
	e := &healthEnv{
		bad:   rbltest.NewServer(t),
		good:  rbltest.NewServer(t),
		clock: newClock(),
		logs:  &testutil.Buffer{},
		reg:   prometheus.NewRegistry(),
	}
	serveTestEntries(e.bad, "bad.test")
	serveTestEntries(e.good, "good.test")
	e.resolver = zoneRouter{"bad.test": resolver(t, e.bad.Addr()), "good.test": resolver(t, e.good.Addr())}
	opts.Now = e.clock.Now
	opts.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	cache, err := rbl.NewCache(rbl.CacheConfig{}, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := rbl.NewMetrics(e.reg, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Observer = metrics
	if e.mon, err = rbl.NewMonitor(opts); err != nil {
		t.Fatal(err)
	}
	e.c, err = rbl.NewChecker(rbl.Config{Lists: lists}, rbl.Options{
		Resolver: e.resolver, Cache: cache, Now: e.clock.Now, Observer: metrics, Health: e.mon,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.c.Close)
	if err := e.mon.Configure(rbl.MonitorConfig{Resolver: e.resolver, Lists: e.c.Config().Lists}); err != nil {
		t.Fatal(err)
	}
	return e
}

// twoLists is bad.test and good.test, each enough to reject alone.
func twoLists(t *testing.T) []rbl.List {
	bad, good := site(t, "bad.test"), site(t, "good.test")
	bad.Timeout, good.Timeout = 300*time.Millisecond, 300*time.Millisecond
	return []rbl.List{bad, good}
}

func (e *healthEnv) probe(t *testing.T) {
	t.Helper()
	e.mon.Probe(t.Context())
}

func (e *healthEnv) state(t *testing.T, name string) rbl.ListHealth {
	t.Helper()
	for _, h := range e.mon.Status() {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no list %q in %+v", name, e.mon.Status())
	return rbl.ListHealth{}
}

// mustAccept checks client and fails unless it is accepted; it returns
// the outcome of each list.
func (e *healthEnv) mustAccept(t *testing.T, client string) []rbl.Outcome {
	t.Helper()
	v := e.c.Check(t.Context(), ip(client))
	if v.Decision != rbl.Accept {
		t.Fatalf("client %s: %s (score %d, %v): a sick list must not refuse mail", client, v.Decision, v.Score, outcomes(v))
	}
	return outcomes(v)
}

// metric returns the value of the series of name with exactly labels
// (counter, gauge or histogram count), and whether it exists.
func metric(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return metricValue(m), true
		}
	}
	return 0, false
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func mustMetric(t *testing.T, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metric(t, reg, name, labels...)
	if !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

func TestMonitorDisablesSickListsAndReenablesThem(t *testing.T) {
	for _, tt := range []struct {
		name string
		// breakList makes bad.test sick.
		breakList func(srv *rbltest.Server)
		// live: live traffic alone disables it, before any probe.
		live   bool
		reason string
		answer string
	}{
		{
			name:      "lists everything",
			breakList: func(srv *rbltest.Server) { srv.SetDefault(rbltest.A("127.0.0.2")) },
			reason:    "lists the world", answer: "→ A 127.0.0.2",
		},
		{
			name: "answers an error code",
			breakList: func(srv *rbltest.Server) {
				dropTestEntries(srv, "bad.test")
				srv.SetDefault(rbltest.A("127.255.255.254"))
			},
			live:   true,
			reason: "error code", answer: "A 127.255.255.254",
		},
		{
			name: "answers outside 127/8",
			breakList: func(srv *rbltest.Server) {
				dropTestEntries(srv, "bad.test")
				srv.SetDefault(rbltest.A("10.1.2.3"))
			},
			live:   true,
			reason: "outside 127.0.0.0/8", answer: "A 10.1.2.3",
		},
		{
			name: "goes silent",
			breakList: func(srv *rbltest.Server) {
				dropTestEntries(srv, "bad.test")
				srv.SetDefault(rbltest.Silent())
			},
			reason: "not answering", answer: "no answer within 300ms",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newHealthEnv(t, twoLists(t), rbl.MonitorOptions{})
			e.probe(t)
			for _, name := range []string{"bad.test", "good.test"} {
				if h := e.state(t, name); h.State != rbl.HealthHealthy {
					t.Fatalf("%s at start: %+v", name, h)
				}
				mustMetric(t, e.reg, 1, "rblmilter_list_health_state", "list", name, "state", "healthy")
			}
			if got := e.mustAccept(t, "10.0.0.1"); got[0] != rbl.NotListed {
				t.Fatalf("healthy bad.test: %v", got)
			}

			tt.breakList(e.bad)
			if tt.live {
				// A client's answer shows the sickness: disabled at
				// once, without waiting for a probe.
				got := e.mustAccept(t, "10.0.0.2")
				if got[0] != rbl.Refused && got[0] != rbl.Bogus {
					t.Fatalf("live answer: %v", got)
				}
				if e.mon.Enabled(&e.c.Config().Lists[0]) {
					t.Fatal("a live error answer did not disable bad.test")
				}
			}
			// One probe round — one interval — is all it takes.
			e.probe(t)
			h := e.state(t, "bad.test")
			if h.State != rbl.HealthUnhealthy || !strings.Contains(h.Reason, tt.reason) || !strings.Contains(h.Answer, tt.answer) {
				t.Fatalf("bad.test after one round: %+v, want unhealthy, reason with %q, answer with %q", h, tt.reason, tt.answer)
			}
			if g := e.state(t, "good.test"); g.State != rbl.HealthHealthy {
				t.Errorf("good.test caught it: %+v", g)
			}
			for _, client := range []string{"10.0.0.3", "10.0.0.4", "192.0.2.5"} {
				if got := e.mustAccept(t, client); got[0] != rbl.Disabled || got[1] != rbl.NotListed {
					t.Errorf("client %s: %v, want bad.test disabled, good.test asked", client, got)
				}
			}
			// good.test still rejects what it lists.
			e.good.Set(rbl.QueryName(ip("10.0.0.9"), "good.test"), rbltest.A("127.0.0.2"))
			if v := e.c.Check(t.Context(), ip("10.0.0.9")); v.Decision != rbl.Reject {
				t.Errorf("good.test listing: %s %v", v.Decision, outcomes(v))
			}
			// Still sick in the next round: no new log line.
			e.probe(t)
			if n := e.logs.Count("list unhealthy", "list=bad.test", "reason="); n != 1 {
				t.Errorf("%d transition lines for bad.test, want 1:\n%s", n, e.logs)
			}
			if n := e.logs.Count("level=ERROR"); n != 1 {
				t.Errorf("%d error lines, want 1:\n%s", n, e.logs)
			}
			mustMetric(t, e.reg, 1, "rblmilter_list_health_state", "list", "bad.test", "state", "unhealthy")
			mustMetric(t, e.reg, 0, "rblmilter_list_health_state", "list", "bad.test", "state", "healthy")
			mustMetric(t, e.reg, 1, "rblmilter_list_health_transitions_total", "list", "bad.test", "state", "unhealthy")
			mustMetric(t, e.reg, 4, "rblmilter_lookups_total", "list", "bad.test", "check", "ip", "outcome", "disabled")
			mustMetric(t, e.reg, 1, "rblmilter_list_health_state", "list", "good.test", "state", "healthy")

			// The list recovers: the next round counts it again.
			e.bad.SetDefault()
			serveTestEntries(e.bad, "bad.test")
			e.probe(t)
			if h := e.state(t, "bad.test"); h.State != rbl.HealthHealthy || h.Reason != "" {
				t.Fatalf("bad.test after recovery: %+v", h)
			}
			if got := e.mustAccept(t, "10.0.0.6"); got[0] != rbl.NotListed {
				t.Errorf("recovered bad.test: %v", got)
			}
			e.bad.Set(rbl.QueryName(ip("10.0.0.7"), "bad.test"), rbltest.A("127.0.0.2"))
			if v := e.c.Check(t.Context(), ip("10.0.0.7")); v.Decision != rbl.Reject {
				t.Errorf("recovered bad.test listing: %s %v", v.Decision, outcomes(v))
			}
			if n := e.logs.Count("list healthy again", "list=bad.test", "level=WARN"); n != 1 {
				t.Errorf("%d recovery lines, want 1:\n%s", n, e.logs)
			}
			mustMetric(t, e.reg, 1, "rblmilter_list_health_state", "list", "bad.test", "state", "healthy")
			mustMetric(t, e.reg, 0, "rblmilter_list_health_state", "list", "bad.test", "state", "unhealthy")
		})
	}
}

// constSource always draws 0: each canary is the first address of its
// range (192.0.2.0, 198.51.100.0, ..., 2001:db8::, ...).
type constSource struct{}

func (constSource) Uint64() uint64 { return 0 }

func TestMonitorProbesIPv6TestEntryAsNibbles(t *testing.T) {
	v6only := site(t, "bad.test")
	v6only.IPv4 = false
	e := newHealthEnv(t, []rbl.List{v6only}, rbl.MonitorOptions{})
	e.probe(t)
	if n := e.bad.Queries(v6TestEntry + "bad.test"); n != 1 {
		t.Errorf("::ffff:7f00:2 asked %d times as nibbles, want 1", n)
	}
	if n := e.bad.Queries(v6NotTestEntry + "bad.test"); n != 1 {
		t.Errorf("::ffff:7f00:1 asked %d times as nibbles, want 1", n)
	}
	if n := e.bad.Queries("2.0.0.127.bad.test"); n != 0 {
		t.Errorf("an IPv6-only list was asked the IPv4 test entry %d times", n)
	}
	if h := e.state(t, "bad.test"); h.State != rbl.HealthHealthy {
		t.Errorf("%+v", h)
	}
	// Listing ::ffff:7f00:1 is listing the world.
	e.bad.Set(v6NotTestEntry+"bad.test", rbltest.A("127.0.0.2"))
	e.probe(t)
	if h := e.state(t, "bad.test"); h.State != rbl.HealthUnhealthy || !strings.Contains(h.Answer, "::ffff:127.0.0.1 → A 127.0.0.2") {
		t.Errorf("%+v", h)
	}
}

func TestMonitorMissingTestEntryDegrades(t *testing.T) {
	e := newHealthEnv(t, twoLists(t), rbl.MonitorOptions{})
	dropTestEntries(e.bad, "bad.test")
	e.bad.Set(rbl.QueryName(ip("127.0.0.2"), "bad.test"), rbltest.A("127.0.0.2"))
	e.good.Delete(rbl.QueryName(ip("127.0.0.2"), "good.test"))
	e.probe(t)
	e.probe(t)
	bad, good := e.state(t, "bad.test"), e.state(t, "good.test")
	if bad.State != rbl.HealthDegraded || !strings.Contains(bad.Reason, "ipv6 = false") {
		t.Errorf("list without IPv6 test entry: %+v", bad)
	}
	if good.State != rbl.HealthDegraded || !strings.Contains(good.Reason, "test entry 127.0.0.2 is not listed") || good.Answer != "127.0.0.2 → NXDOMAIN" {
		t.Errorf("list without test entry: %+v", good)
	}
	// Degraded lists still count: nothing they answer can refuse mail
	// wrongly.
	e.good.Set(rbl.QueryName(ip("10.0.0.1"), "good.test"), rbltest.A("127.0.0.2"))
	if v := e.c.Check(t.Context(), ip("10.0.0.1")); v.Decision != rbl.Reject {
		t.Errorf("degraded list not counted: %s %v", v.Decision, outcomes(v))
	}
	if n := e.logs.Count("list degraded", "level=WARN"); n != 2 {
		t.Errorf("%d degraded lines, want 2 (one per list):\n%s", n, e.logs)
	}
}

func TestMonitorSharedZoneSharesHealth(t *testing.T) {
	a, b := site(t, "bad.test=127.0.0.2"), site(t, "bad.test=127.0.0.4*2")
	a.Name, b.Name = "Bad A", "Bad B"
	e := newHealthEnv(t, []rbl.List{a, b}, rbl.MonitorOptions{})
	e.probe(t)
	e.bad.SetDefault(rbltest.A("127.0.0.4"))
	e.probe(t)
	for _, name := range []string{"Bad A", "Bad B"} {
		if h := e.state(t, name); h.State != rbl.HealthUnhealthy {
			t.Errorf("%s: %+v", name, h)
		}
		mustMetric(t, e.reg, 1, "rblmilter_list_health_state", "list", name, "state", "unhealthy")
	}
	if got := e.mustAccept(t, "10.0.0.1"); got[0] != rbl.Disabled || got[1] != rbl.Disabled {
		t.Errorf("%v", got)
	}
	if n := e.logs.Count("list unhealthy", `list="Bad A, Bad B"`); n != 1 {
		t.Errorf("%d lines, want one for the shared zone:\n%s", n, e.logs)
	}
}

func TestMonitorUnmonitoredList(t *testing.T) {
	off := site(t, "bad.test")
	off.Monitor = false
	e := newHealthEnv(t, []rbl.List{off}, rbl.MonitorOptions{})
	e.bad.SetDefault(rbltest.A("127.255.255.254"))
	e.probe(t)
	if n := e.bad.TotalQueries(); n != 0 {
		t.Errorf("an unmonitored list got %d probes", n)
	}
	e.mustAccept(t, "10.0.0.1")
	if h := e.state(t, "bad.test"); h.State != rbl.HealthUnmonitored || !e.mon.Enabled(&e.c.Config().Lists[0]) {
		t.Errorf("%+v", h)
	}
	mustMetric(t, e.reg, 1, "rblmilter_list_health_state", "list", "bad.test", "state", "unmonitored")
	if e.logs.String() != "" {
		t.Errorf("logged about an unmonitored list:\n%s", e.logs)
	}
}

func TestMonitorLiveErrorsLogOnce(t *testing.T) {
	e := newHealthEnv(t, twoLists(t), rbl.MonitorOptions{})
	e.probe(t)
	e.bad.SetDefault(rbltest.A("127.255.255.254"))
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			v := e.c.Check(t.Context(), netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}))
			if v.Decision != rbl.Accept {
				t.Errorf("client %d: %s", i, v.Decision)
			}
		})
	}
	wg.Wait()
	if n := e.logs.Count("list unhealthy"); n != 1 {
		t.Errorf("%d transition lines, want 1:\n%s", n, e.logs)
	}
	if h := e.state(t, "bad.test"); h.State != rbl.HealthUnhealthy || !strings.Contains(h.Reason, "in a client lookup") || h.Answer != "client → A 127.255.255.254" {
		t.Errorf("%+v", h)
	}
}

func TestMonitorSingleTimeoutIsNotEnough(t *testing.T) {
	e := newHealthEnv(t, twoLists(t), rbl.MonitorOptions{Rand: constSource{}})
	e.probe(t)
	// One lost answer per round, rounds apart: never three in a row.
	e.bad.Set(rbl.QueryName(ip("192.0.2.0"), "bad.test"), rbltest.Silent())
	for range 3 {
		e.probe(t)
	}
	if h := e.state(t, "bad.test"); h.State != rbl.HealthHealthy {
		t.Errorf("one timeout per round: %+v", h)
	}
}

func TestMonitorRun(t *testing.T) {
	asked := make(chan time.Duration)
	tick := make(chan time.Time)
	e := newHealthEnv(t, twoLists(t)[:1], rbl.MonitorOptions{
		After: func(d time.Duration) <-chan time.Time {
			asked <- d
			return tick
		},
	})
	if err := e.mon.Configure(rbl.MonitorConfig{Resolver: e.resolver, Lists: e.c.Config().Lists, Interval: 7 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		e.mon.Run(ctx)
		close(done)
	}()
	// Run probes at once, then waits one interval.
	if d := <-asked; d != 7*time.Minute {
		t.Errorf("waits %v between rounds, want 7m", d)
	}
	if h := e.state(t, "bad.test"); h.State != rbl.HealthHealthy || h.Checked.IsZero() {
		t.Fatalf("after the first round: %+v", h)
	}
	e.bad.SetDefault(rbltest.A("127.0.0.2"))
	tick <- time.Time{}
	<-asked
	if h := e.state(t, "bad.test"); h.State != rbl.HealthUnhealthy {
		t.Fatalf("after a tick: %+v", h)
	}
	// A reload adding a list probes it without waiting for the interval.
	if err := e.mon.Configure(rbl.MonitorConfig{Resolver: e.resolver, Lists: twoLists(t), Interval: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if d := <-asked; d != time.Minute {
		t.Errorf("after reload waits %v, want 1m", d)
	}
	if h := e.state(t, "good.test"); h.State != rbl.HealthHealthy {
		t.Errorf("added list after its round: %+v", h)
	}
	if h := e.state(t, "bad.test"); h.State != rbl.HealthUnhealthy {
		t.Errorf("a reload forgot bad.test's health: %+v", h)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

func TestMonitorReconfigureDropsRemovedLists(t *testing.T) {
	e := newHealthEnv(t, twoLists(t), rbl.MonitorOptions{})
	e.probe(t)
	if err := e.mon.Configure(rbl.MonitorConfig{Resolver: e.resolver, Lists: twoLists(t)[1:]}); err != nil {
		t.Fatal(err)
	}
	if _, ok := metric(t, e.reg, "rblmilter_list_health_state", "list", "bad.test", "state", "healthy"); ok {
		t.Error("a removed list keeps its health series")
	}
	if st := e.mon.Status(); len(st) != 1 || st[0].Name != "good.test" || st[0].State != rbl.HealthHealthy {
		t.Errorf("%+v", st)
	}
	// The old Checker's lists are unknown now: counted.
	if !e.mon.Enabled(&e.c.Config().Lists[0]) {
		t.Error("a list the monitor no longer watches is disabled")
	}
}

func TestMonitorKeyNeverShown(t *testing.T) {
	const key = "s3cr3tkey"
	keyed := site(t, "bad.test")
	keyed.Key, keyed.Name = key, "Keyed"
	keyed.Timeout = 300 * time.Millisecond
	e := newHealthEnv(t, []rbl.List{keyed}, rbl.MonitorOptions{})
	e.bad.SetDefault(rbltest.Rcode(dns.RcodeServerFailure))
	e.probe(t)
	if e.bad.Queries(key+".bad.test") != 0 || e.bad.TotalQueries() == 0 {
		t.Fatal("probes did not reach the keyed zone")
	}
	if n := e.bad.Queries(rbl.QueryName(ip("127.0.0.2"), key+".bad.test")); n != 1 {
		t.Errorf("keyed test entry asked %d times", n)
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %s", mfs, e.mon.Status(), e.logs)
	if strings.Contains(strings.ToLower(out), key) {
		t.Errorf("the key shows:\n%s", out)
	}
	if h := e.state(t, "Keyed"); h.State != rbl.HealthUnhealthy || !strings.Contains(h.Answer, "SERVFAIL") {
		t.Errorf("%+v", h)
	}
}

func TestWarnPublicResolvers(t *testing.T) {
	zen, dqs, other := site(t, "zen.spamhaus.org=127.0.0.[2..11]"), site(t, "zen.dq.spamhaus.net"), site(t, "bl.example")
	dqs.Key = "abc"
	for _, tt := range []struct {
		servers []string
		lists   []rbl.List
		warn    bool
	}{
		{[]string{"8.8.8.8:53"}, []rbl.List{zen}, true},
		{[]string{"127.0.0.1:53", "[2606:4700:4700::1111]:53"}, []rbl.List{other, zen}, true},
		{[]string{"9.9.9.9"}, []rbl.List{zen}, true},
		{[]string{"127.0.0.1:53"}, []rbl.List{zen}, false},
		{[]string{"8.8.8.8:53"}, []rbl.List{dqs, other}, false},
	} {
		var logs testutil.Buffer
		got := rbl.WarnPublicResolvers(slog.New(slog.NewTextHandler(&logs, nil)), tt.servers, tt.lists)
		if got != tt.warn || (logs.Count("level=WARN", "public DNS resolver", "lists=zen.spamhaus.org") == 1) != tt.warn {
			t.Errorf("%v %v: warned %v, want %v:\n%s", tt.servers, tt.lists, got, tt.warn, logs.String())
		}
	}
}

func TestMonitorConcurrentReconfigure(t *testing.T) {
	e := newHealthEnv(t, twoLists(t), rbl.MonitorOptions{})
	e.bad.SetDefault(rbltest.A("127.255.255.254"))
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 20 {
			e.probe(t)
		}
	})
	wg.Go(func() {
		for i := range 200 {
			lists := twoLists(t)
			lists[i%2].Timeout = time.Duration(100+i) * time.Millisecond
			lists[1].Name = fmt.Sprintf("good %d", i%3)
			if err := e.mon.Configure(rbl.MonitorConfig{Resolver: e.resolver, Lists: lists[i%2:]}); err != nil {
				t.Error(err)
			}
			e.mon.Status()
		}
	})
	wg.Go(func() {
		for i := range 200 {
			e.c.Check(t.Context(), netip.AddrFrom4([4]byte{10, 8, byte(i >> 8), byte(i)}))
		}
	})
	wg.Wait()
	if _, err := e.reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
