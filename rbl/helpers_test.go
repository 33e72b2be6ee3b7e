package rbl_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// clock is an injected clock that only moves when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func site(t testing.TB, entry string) rbl.List {
	t.Helper()
	l, err := rbl.ParseSite(entry)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func filters(t testing.TB, s ...string) []rbl.Filter {
	t.Helper()
	var out []rbl.Filter
	for _, f := range s {
		pf, err := rbl.ParseFilter(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pf)
	}
	return out
}

func resolver(t testing.TB, servers ...string) *rbl.DNSResolver {
	t.Helper()
	r, err := rbl.NewResolver(rbl.ResolverConfig{Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// env is a Checker wired to a fake DNSBL server, a cache and a clock.
type env struct {
	srv   *rbltest.Server
	clock *clock
	cache *rbl.Cache
	c     *rbl.Checker
}

func newEnv(t testing.TB, cfg rbl.Config, opts rbl.Options) *env {
	t.Helper()
	e := &env{srv: rbltest.NewServer(t), clock: newClock()}
	var err error
	if opts.Cache == nil {
		e.cache, err = rbl.NewCache(rbl.CacheConfig{}, e.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		opts.Cache = e.cache
	} else {
		e.cache = opts.Cache
	}
	if opts.Resolver == nil {
		opts.Resolver = resolver(t, e.srv.Addr())
	}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	e.c, err = rbl.NewChecker(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.c.Close)
	return e
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func outcomes(v rbl.Verdict) []rbl.Outcome {
	out := make([]rbl.Outcome, len(v.Results))
	for i, r := range v.Results {
		out[i] = r.Outcome
	}
	return out
}
