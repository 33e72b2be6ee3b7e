package rbl_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	clock := newClock()
	cache, err := rbl.NewCache(rbl.CacheConfig{Size: 1000}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rbl.NewMetrics(reg, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	zen := site(t, "zen.test=127.0.0.[2..11]*2")
	zen.Name = "ZEN"
	wl := site(t, "wl.test*-1")
	e := newEnv(t, rbl.Config{Lists: []rbl.List{zen, wl}, FetchTXT: true}, rbl.Options{Observer: m, Cache: cache, Now: clock.Now})
	listed := ip("192.0.2.10")
	e.srv.Set(rbl.QueryName(listed, "zen.test"), rbltest.A("127.0.0.2", "127.0.0.4"), rbltest.TXT("listed"))
	e.srv.Set(rbl.QueryName(listed, "wl.test"), rbltest.Hold(make(chan struct{})))
	refused := ip("192.0.2.11")
	e.srv.Set(rbl.QueryName(refused, "zen.test"), rbltest.A("127.255.255.254"))

	// Listed on ZEN (weight 2) is a reject whatever wl.test says: early.
	for range 2 {
		if v := e.c.Check(context.Background(), listed); v.Decision != rbl.Reject || !v.Early {
			t.Fatalf("%s early=%v %v", v.Decision, v.Early, outcomes(v))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v := e.c.Check(ctx, refused); v.Decision != rbl.Accept {
		t.Fatalf("%s %v", v.Decision, outcomes(v))
	}

	mustMetric(t, reg, 2, "rblmilter_lookups_total", "list", "ZEN", "check", "ip", "outcome", "listed")
	mustMetric(t, reg, 1, "rblmilter_lookups_total", "list", "ZEN", "check", "ip", "outcome", "refused")
	mustMetric(t, reg, 2, "rblmilter_listed_total", "list", "ZEN", "check", "ip", "code", "127.0.0.2")
	mustMetric(t, reg, 2, "rblmilter_listed_total", "list", "ZEN", "check", "ip", "code", "127.0.0.4")
	if _, ok := metric(t, reg, "rblmilter_listed_total", "list", "ZEN", "check", "ip", "code", "127.255.255.254"); ok {
		t.Error("an error code is counted as a listing code")
	}
	mustMetric(t, reg, 1, "rblmilter_dns_queries_total", "list", "ZEN", "type", "TXT")
	mustMetric(t, reg, 2, "rblmilter_dns_queries_total", "list", "ZEN", "type", "A")
	mustMetric(t, reg, 2, "rblmilter_early_decisions_total", "decision", "reject")
	mustMetric(t, reg, 2, "rblmilter_list_decisions_total", "list", "ZEN", "decision", "reject")
	mustMetric(t, reg, 3, "rblmilter_verdict_duration_seconds")
	// Two fresh ZEN lookups were timed; the cached one was not.
	mustMetric(t, reg, 2, "rblmilter_lookup_duration_seconds", "list", "ZEN")
	mustMetric(t, reg, 1, "rblmilter_cache_hits_total")
	mustMetric(t, reg, 5, "rblmilter_cache_misses_total")
	mustMetric(t, reg, 1000, "rblmilter_cache_capacity")
	// Every label value is bounded: no client address anywhere.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if strings.HasPrefix(l.GetValue(), "192.0.2.") {
					t.Errorf("%s has a client address label %s=%s", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestMetricsCodeLabelIsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := rbl.NewMetrics(reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := site(t, "wl.test")
	for i := range 40 {
		code := netip.AddrFrom4([4]byte{127, 0, byte(i), 2})
		m.LookupDone(rbl.Result{List: &l, Outcome: rbl.Listed, Codes: []netip.Addr{code}})
		m.LookupDone(rbl.Result{List: &l, Outcome: rbl.Listed, Codes: []netip.Addr{code}})
	}
	// A code outside 127.0.0.0/8 never becomes a label, even if a caller
	// passes one.
	m.LookupDone(rbl.Result{List: &l, Outcome: rbl.Listed, Codes: []netip.Addr{ip("10.0.0.1")}})
	if n := testutil.CollectAndCount(reg, "rblmilter_listed_total"); n != 33 {
		t.Errorf("%d code series, want 32 and other", n)
	}
	mustMetric(t, reg, 2, "rblmilter_listed_total", "list", "wl.test", "check", "ip", "code", "127.0.31.2")
	mustMetric(t, reg, 2*8+1, "rblmilter_listed_total", "list", "wl.test", "check", "ip", "code", "other")
}

// The lists' series are made on first use by whichever lookup comes
// first: concurrent first uses of several lists and checks lose no count.
func TestMetricsCountConcurrentFirstLookups(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := rbl.NewMetrics(reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lists := []rbl.List{site(t, "a.test"), site(t, "b.test"), site(t, "c.test")}
	checks := []rbl.Check{rbl.CheckIP, rbl.CheckHelo, rbl.CheckSender}
	const rounds = 50
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range rounds {
				l := &lists[(w+i)%len(lists)]
				for _, chk := range checks {
					m.LookupDone(rbl.Result{List: l, Check: chk, Outcome: rbl.NotListed, Cached: true})
				}
			}
		})
	}
	wg.Wait()
	total := 0.0
	for i := range lists {
		for _, chk := range checks {
			got, _ := metric(t, reg, "rblmilter_lookups_total", "list", lists[i].String(), "check", chk.String(), "outcome", "not_listed")
			total += got
		}
	}
	if want := float64(8 * rounds * len(checks)); total != want {
		t.Errorf("%v lookups counted, want %v", total, want)
	}
}

func TestNewMetricsNeedsRegisterer(t *testing.T) {
	if _, err := rbl.NewMetrics(nil, nil, nil); err == nil {
		t.Error("no error without a registerer")
	}
	reg := prometheus.NewRegistry()
	if _, err := rbl.NewMetrics(reg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := rbl.NewMetrics(reg, nil, nil); err == nil || !strings.Contains(err.Error(), "rbl: metrics") {
		t.Errorf("registering twice: %v", err)
	}
}

// BenchmarkCheckCacheHitObserved is a cache-hit Check with what the daemon
// adds to every one: the metrics Observer and the health monitor.
func BenchmarkCheckCacheHitObserved(b *testing.B) {
	srv := rbltest.NewServer(b)
	listed := ip("10.0.0.1")
	srv.Set(rbl.QueryName(listed, "zen.test"), rbltest.A("127.0.0.2"))
	r := resolver(b, srv.Addr())
	cache, err := rbl.NewCache(rbl.CacheConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	lists := []rbl.List{site(b, "zen.test=127.0.0.[2..11]*3"), site(b, "wl.test=127.0.[0..255].[1..3]*-2"), site(b, "bl.test")}
	for _, observed := range []bool{false, true} {
		opts := rbl.Options{Resolver: r, Cache: cache}
		if observed {
			reg := prometheus.NewRegistry()
			m, err := rbl.NewMetrics(reg, cache, nil)
			if err != nil {
				b.Fatal(err)
			}
			mon, err := rbl.NewMonitor(rbl.MonitorOptions{Observer: m})
			if err != nil {
				b.Fatal(err)
			}
			opts.Observer, opts.Health = m, mon
		}
		c, err := rbl.NewChecker(rbl.Config{Lists: lists, AllowlistThreshold: -1}, opts)
		if err != nil {
			b.Fatal(err)
		}
		if observed {
			if err := opts.Health.(*rbl.Monitor).Configure(rbl.MonitorConfig{Resolver: r, Lists: c.Config().Lists}); err != nil {
				b.Fatal(err)
			}
		}
		ctx := context.Background()
		for _, client := range []netip.Addr{listed, ip("10.0.0.2")} {
			c.Check(ctx, client)
			if v := c.Check(ctx, client); !v.Results[0].Cached {
				b.Fatalf("not warm: %+v", v)
			}
		}
		name := map[bool]string{false: "plain", true: "observed"}[observed]
		for _, client := range []netip.Addr{listed, ip("10.0.0.2")} {
			b.Run(name+"/"+client.String(), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c.Check(ctx, client)
				}
			})
		}
		c.Close()
	}
}
