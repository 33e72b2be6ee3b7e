package rbl_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

func TestCheckScoresListsInConfigOrder(t *testing.T) {
	cfg := rbl.Config{
		Lists: []rbl.List{
			site(t, "zen.test=127.0.0.[2..11]*3"),
			site(t, "wl.test=127.0.[0..255].[1..3]*-2"),
			site(t, "bl.test"),
		},
		Threshold:          3,
		AllowlistThreshold: -1,
	}
	e := newEnv(t, cfg, rbl.Options{})
	spammer, friend, both, clean := ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"), ip("192.0.2.4")
	e.srv.Set(rbl.QueryName(spammer, "zen.test"), rbltest.A("127.0.0.2", "127.0.0.4"))
	e.srv.Set(rbl.QueryName(friend, "wl.test"), rbltest.A("127.0.10.2"))
	e.srv.Set(rbl.QueryName(both, "zen.test"), rbltest.A("127.0.0.3"))
	e.srv.Set(rbl.QueryName(both, "wl.test"), rbltest.A("127.0.10.1"))
	e.srv.Set(rbl.QueryName(both, "bl.test"), rbltest.A("127.0.0.2"))

	tests := []struct {
		ip       netip.Addr
		decision rbl.Decision
		score    int
		outcomes []rbl.Outcome
	}{
		{spammer, rbl.Reject, 3, []rbl.Outcome{rbl.Listed, rbl.NotListed, rbl.NotListed}},
		{friend, rbl.Allowlisted, -2, []rbl.Outcome{rbl.NotListed, rbl.Listed, rbl.NotListed}},
		{both, rbl.Accept, 2, []rbl.Outcome{rbl.Listed, rbl.Listed, rbl.Listed}},
		{clean, rbl.Accept, 0, []rbl.Outcome{rbl.NotListed, rbl.NotListed, rbl.NotListed}},
	}
	// The first round may decide early (a pending list that cannot
	// change the decision), but the decision itself never depends on
	// timing.
	for _, tt := range tests {
		if v := e.c.Check(context.Background(), tt.ip); v.Decision != tt.decision || v.IP != tt.ip {
			t.Errorf("Check(%s) = %s, want %s", tt.ip, v.Decision, tt.decision)
		}
	}
	testutil.WaitFor(t, "every answer in the cache", func() bool { return e.cache.Stats().Entries == 12 })
	for _, tt := range tests {
		v := e.c.Check(context.Background(), tt.ip)
		if v.Decision != tt.decision || v.Score != tt.score || !slices.Equal(outcomes(v), tt.outcomes) || v.Early {
			t.Errorf("cached Check(%s) = %s score %d %v early %v", tt.ip, v.Decision, v.Score, outcomes(v), v.Early)
		}
		for i, r := range v.Results {
			if r.List.Zone != cfg.Lists[i].Zone || !r.Cached || r.Duration != 0 {
				t.Errorf("Check(%s): result %d is %s cached %v duration %s", tt.ip, i, r.List, r.Cached, r.Duration)
			}
		}
	}
	v := e.c.Check(context.Background(), spammer)
	if got := fmt.Sprint(v.Results[0].Codes); got != "[127.0.0.2 127.0.0.4]" || v.Results[0].Weight != 3 {
		t.Errorf("spammer result: codes %s weight %d", got, v.Results[0].Weight)
	}
	if n := e.srv.TotalQueries(); n != 12 {
		t.Errorf("%d queries reached the server, want 12 (4 clients x 3 lists, then cache)", n)
	}
}

func TestCheckTXTOnlyForListingsWhenAsked(t *testing.T) {
	listed, clean, refused := ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")
	for _, fetch := range []bool{false, true} {
		e := newEnv(t, rbl.Config{Lists: []rbl.List{site(t, "bl.test")}, FetchTXT: fetch}, rbl.Options{})
		e.srv.Set(rbl.QueryName(listed, "bl.test"), rbltest.A("127.0.0.2"), rbltest.TXT("Listed: see https://bl.test/q?ip=192.0.2.1\r\nX-Evil: 1"))
		e.srv.Set(rbl.QueryName(refused, "bl.test"), rbltest.A("127.255.255.254"), rbltest.TXT("public resolver"))
		for _, addr := range []netip.Addr{listed, clean, refused, listed} {
			e.c.Check(context.Background(), addr)
		}
		v := e.c.Check(context.Background(), listed)
		wantTXT := ""
		if fetch {
			// CR and LF could inject lines into an SMTP reply.
			wantTXT = "Listed: see https://bl.test/q?ip=192.0.2.1??X-Evil: 1"
		}
		if r := v.Results[0]; r.TXT != wantTXT || !r.Cached {
			t.Errorf("FetchTXT %v: TXT %q cached %v, want %q from the cache", fetch, r.TXT, r.Cached, wantTXT)
		}
		wantQueries := 0
		if fetch {
			wantQueries = 1
		}
		// Queries counts A and TXT queries: one A each, and one TXT
		// only for the listed client when asked.
		if n := e.srv.Queries(rbl.QueryName(listed, "bl.test")); n != 1+wantQueries {
			t.Errorf("FetchTXT %v: %d queries for the listed client, want %d", fetch, n, 1+wantQueries)
		}
		for _, addr := range []netip.Addr{clean, refused} {
			if n := e.srv.Queries(rbl.QueryName(addr, "bl.test")); n != 1 {
				t.Errorf("FetchTXT %v: %d queries for %s, want 1 (no TXT)", fetch, n, addr)
			}
		}
	}
}

// FetchAllowlistTXT fetches the TXT record only of answers an entry
// counts with a negative weight: an allowlisted client's, not a
// blocklisted one's, even from one zone with both kinds of entries.
func TestCheckAllowlistTXTOnlyForNegativeWeights(t *testing.T) {
	wl, bl := ip("192.0.2.1"), ip("192.0.2.2")
	allow := site(t, "mixed.test=127.0.10.[0..255]*-5")
	block := site(t, "mixed.test=127.0.0.2*3")
	e := newEnv(t, rbl.Config{Lists: []rbl.List{allow, block}, FetchAllowlistTXT: true, Threshold: 3}, rbl.Options{})
	e.srv.Set(rbl.QueryName(wl, "mixed.test"), rbltest.A("127.0.10.1"), rbltest.TXT("example.com https://wl.test/1"))
	e.srv.Set(rbl.QueryName(bl, "mixed.test"), rbltest.A("127.0.0.2"), rbltest.TXT("spam source"))
	v := e.c.Check(context.Background(), wl)
	if r := v.Results[0]; r.Outcome != rbl.Listed || r.Weight != -5 || r.TXT != "example.com https://wl.test/1" {
		t.Errorf("allowlisted client: %s weight %d TXT %q", r.Outcome, r.Weight, r.TXT)
	}
	v = e.c.Check(context.Background(), bl)
	if r := v.Results[1]; r.Outcome != rbl.Listed || r.TXT != "" {
		t.Errorf("blocklisted client: %s TXT %q, want no TXT", r.Outcome, r.TXT)
	}
	if n := e.srv.Queries(rbl.QueryName(wl, "mixed.test")); n != 2 {
		t.Errorf("%d queries for the allowlisted client, want 2 (A and TXT)", n)
	}
	if n := e.srv.Queries(rbl.QueryName(bl, "mixed.test")); n != 1 {
		t.Errorf("%d queries for the blocklisted client, want 1 (A only)", n)
	}
}

func TestCheckAsksListsInParallel(t *testing.T) {
	const k = 4
	release := make(chan struct{})
	var lists []rbl.List
	client := ip("198.51.100.7")
	e := newEnv(t, rbl.Config{}, rbl.Options{})
	for i := range k {
		zone := fmt.Sprintf("bl%d.test", i)
		lists = append(lists, site(t, zone))
		e.srv.Set(rbl.QueryName(client, zone), rbltest.Hold(release))
	}
	c, err := rbl.NewChecker(rbl.Config{Lists: lists}, rbl.Options{Resolver: resolver(t, e.srv.Addr())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan rbl.Verdict)
	go func() { done <- c.Check(context.Background(), client) }()
	// A sequential Check would never have all k queries in flight.
	e.srv.WaitInFlight(t, k)
	close(release)
	v := <-done
	if v.Decision != rbl.Accept || v.Early || slices.ContainsFunc(v.Results, func(r rbl.Result) bool { return r.Outcome != rbl.NotListed }) {
		t.Errorf("verdict %s early %v %v", v.Decision, v.Early, outcomes(v))
	}
}

func TestCheckParallelTiming(t *testing.T) {
	// Structure is proven above; this is the K·d check, with a
	// generous ratio so a loaded machine cannot fail it.
	const k, d = 4, 200 * time.Millisecond
	e := newEnv(t, rbl.Config{}, rbl.Options{})
	client := ip("198.51.100.8")
	var lists []rbl.List
	for i := range k {
		zone := fmt.Sprintf("slow%d.test", i)
		lists = append(lists, site(t, zone))
		e.srv.Set(rbl.QueryName(client, zone), rbltest.Delay(d))
	}
	c, err := rbl.NewChecker(rbl.Config{Lists: lists}, rbl.Options{Resolver: resolver(t, e.srv.Addr())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v := c.Check(context.Background(), client)
	if v.Duration >= k*d*3/4 {
		t.Errorf("%d lists delayed %s each took %s: not parallel", k, d, v.Duration)
	}
	if v.Duration < d {
		t.Errorf("took %s, less than one delay %s", v.Duration, d)
	}
}

func TestCheckDecidesEarlyAndFillsCacheInBackground(t *testing.T) {
	release := make(chan struct{})
	cfg := rbl.Config{Lists: []rbl.List{site(t, "fast.test*2"), site(t, "slow.test")}, Threshold: 2}
	e := newEnv(t, cfg, rbl.Options{})
	client := ip("203.0.113.5")
	slowName := rbl.QueryName(client, "slow.test")
	e.srv.Set(rbl.QueryName(client, "fast.test"), rbltest.A("127.0.0.2"))
	e.srv.Set(slowName, rbltest.A("127.0.0.3"), rbltest.Hold(release))

	v := e.c.Check(context.Background(), client)
	if v.Decision != rbl.Reject || !v.Early || v.Results[1].Outcome != rbl.Pending || v.Score != 2 {
		t.Fatalf("verdict %s early %v score %d %v", v.Decision, v.Early, v.Score, outcomes(v))
	}
	// The slow lookup goes on after Check returned and fills the cache.
	e.srv.WaitInFlight(t, 1)
	close(release)
	testutil.WaitFor(t, "both answers in the cache", func() bool { return e.cache.Stats().Entries == 2 })
	v = e.c.Check(context.Background(), client)
	if v.Early || v.Results[1].Outcome != rbl.Listed || !v.Results[1].Cached || v.Score != 3 {
		t.Errorf("second verdict early %v %v score %d", v.Early, outcomes(v), v.Score)
	}
	if n := e.srv.Queries(slowName); n != 1 {
		t.Errorf("slow list asked %d times, want 1", n)
	}
}

func TestCheckPerListTimeout(t *testing.T) {
	client := ip("192.0.2.50")
	for _, policy := range []rbl.FailurePolicy{rbl.FailIgnore, rbl.FailTempfail} {
		silent := site(t, "silent.test")
		silent.Timeout = 100 * time.Millisecond
		silent.OnError = policy
		e := newEnv(t, rbl.Config{Lists: []rbl.List{silent, site(t, "ok.test")}, Timeout: time.Minute}, rbl.Options{})
		e.srv.Set(rbl.QueryName(client, "silent.test"), rbltest.Silent())
		start := time.Now()
		v := e.c.Check(context.Background(), client)
		elapsed := time.Since(start)
		want := rbl.Accept
		if policy == rbl.FailTempfail {
			want = rbl.Tempfail
		}
		r := v.Results[0]
		if v.Decision != want || r.Outcome != rbl.Timeout || !errors.Is(r.Err, rbl.ErrTimeout) || v.Results[1].Outcome != rbl.NotListed {
			t.Errorf("policy %s: %s %v err %v", policy, v.Decision, outcomes(v), r.Err)
		}
		if elapsed > 10*time.Second {
			t.Errorf("policy %s: the per-list timeout of 100ms was not applied (%s)", policy, elapsed)
		}
	}
}

func TestCheckCallerDeadline(t *testing.T) {
	client := ip("192.0.2.51")
	for _, policy := range []rbl.FailurePolicy{rbl.FailIgnore, rbl.FailTempfail} {
		held := site(t, "held.test")
		held.OnError = policy
		e := newEnv(t, rbl.Config{Lists: []rbl.List{site(t, "ok.test"), held}}, rbl.Options{})
		e.srv.Set(rbl.QueryName(client, "held.test"), rbltest.Hold(make(chan struct{})))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		v := e.c.Check(ctx, client)
		cancel()
		want := rbl.Accept
		if policy == rbl.FailTempfail {
			want = rbl.Tempfail
		}
		r := v.Results[1]
		if v.Decision != want || r.Outcome != rbl.Timeout || !errors.Is(r.Err, rbl.ErrTimeout) || v.Early {
			t.Errorf("policy %s: %s %v early %v err %v", policy, v.Decision, outcomes(v), v.Early, r.Err)
		}
		if r.Err.Error() != "held.test: no answer before the check's deadline" {
			t.Errorf("error text %q", r.Err)
		}
	}
}

func TestDeduplication(t *testing.T) {
	// Issue: 1000 concurrent checks of 10 IPs against 3 lists => exactly
	// 30 queries reach the DNS server.
	release := make(chan struct{})
	cfg := rbl.Config{Lists: []rbl.List{site(t, "a.test"), site(t, "b.test=127.0.0.2"), site(t, "c.test*2")}, Threshold: 2}
	e := newEnv(t, cfg, rbl.Options{})
	var clients []netip.Addr
	for i := range 10 {
		client := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		clients = append(clients, client)
		for _, zone := range []string{"a.test", "b.test", "c.test"} {
			opts := []rbltest.Option{rbltest.Hold(release)}
			if i%2 == 0 {
				opts = append(opts, rbltest.A("127.0.0.2"))
			}
			e.srv.Set(rbl.QueryName(client, zone), opts...)
		}
	}
	var wg sync.WaitGroup
	verdicts := make([]rbl.Verdict, 1000)
	for i := range verdicts {
		wg.Go(func() { verdicts[i] = e.c.Check(context.Background(), clients[i%10]) })
	}
	e.srv.WaitInFlight(t, 30)
	close(release)
	wg.Wait()
	if n := e.srv.TotalQueries(); n != 30 {
		t.Errorf("%d queries reached the server, want 30", n)
	}
	for i, v := range verdicts {
		want := rbl.Accept
		if i%10%2 == 0 {
			want = rbl.Reject
		}
		if v.Decision != want {
			t.Fatalf("check %d of %s: %s, want %s", i, v.IP, v.Decision, want)
		}
	}
}

func TestSameZoneSharesOneQuery(t *testing.T) {
	// postscreen style: one ZEN query scored by several entries.
	cfg := rbl.Config{Lists: []rbl.List{
		site(t, "zen.test=127.0.0.[2..3]*3"),
		site(t, "zen.test=127.0.0.[10;11]*1"),
		site(t, "zen.test=127.0.0.4*2"),
	}, Threshold: 4}
	e := newEnv(t, cfg, rbl.Options{})
	client := ip("192.0.2.77")
	e.srv.Set(rbl.QueryName(client, "zen.test"), rbltest.A("127.0.0.2", "127.0.0.10", "127.0.0.3"))
	v := e.c.Check(context.Background(), client)
	if v.Decision != rbl.Reject || v.Score != 4 || !slices.Equal(outcomes(v), []rbl.Outcome{rbl.Listed, rbl.Listed, rbl.NotListed}) {
		t.Errorf("verdict %s score %d %v", v.Decision, v.Score, outcomes(v))
	}
	if n := e.srv.TotalQueries(); n != 1 {
		t.Errorf("%d queries, want 1", n)
	}
}

func TestCacheExpiry(t *testing.T) {
	cfg := rbl.Config{Lists: []rbl.List{site(t, "bl.test")}}
	clk := newClock()
	cache, err := rbl.NewCache(rbl.CacheConfig{MinTTL: time.Minute, MaxTTL: time.Hour, ErrorTTL: 10 * time.Second}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, cfg, rbl.Options{Cache: cache, Now: clk.Now})
	tests := []struct {
		name string
		opts []rbltest.Option
		life time.Duration // how long the answer must be served from the cache
	}{
		{"positive TTL", []rbltest.Option{rbltest.A("127.0.0.2"), rbltest.TTL(120)}, 120 * time.Second},
		{"positive TTL raised to min_ttl", []rbltest.Option{rbltest.A("127.0.0.2"), rbltest.TTL(5)}, time.Minute},
		{"positive TTL lowered to max_ttl", []rbltest.Option{rbltest.A("127.0.0.2"), rbltest.TTL(86400)}, time.Hour},
		{"negative TTL is the SOA minimum", []rbltest.Option{rbltest.NegativeTTL(3600, 300)}, 300 * time.Second},
		{"negative TTL is the SOA TTL when smaller", []rbltest.Option{rbltest.NegativeTTL(200, 900)}, 200 * time.Second},
		{"negative TTL without SOA is min_ttl", []rbltest.Option{rbltest.NoSOA()}, time.Minute},
		{"NODATA uses the SOA too", []rbltest.Option{rbltest.A("127.0.0.2"), rbltest.NegativeTTL(3600, 400)}, 0}, // (A query has data; see below)
		{"server failure lives error_ttl", []rbltest.Option{rbltest.Rcode(dns.RcodeServerFailure)}, 10 * time.Second},
	}
	for i, tt := range tests {
		if tt.life == 0 {
			continue
		}
		client := netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)})
		name := rbl.QueryName(client, "bl.test")
		e.srv.Set(name, tt.opts...)
		e.c.Check(context.Background(), client)
		clk.Advance(tt.life - time.Second)
		if v := e.c.Check(context.Background(), client); !v.Results[0].Cached {
			t.Errorf("%s: not cached after %s", tt.name, tt.life-time.Second)
		}
		clk.Advance(time.Second)
		if v := e.c.Check(context.Background(), client); v.Results[0].Cached {
			t.Errorf("%s: still cached after %s", tt.name, tt.life)
		}
		if n := e.srv.Queries(name); n != 2 {
			t.Errorf("%s: %d queries, want 2", tt.name, n)
		}
	}
}

func TestErrorsNotCachedByDefault(t *testing.T) {
	e := newEnv(t, rbl.Config{Lists: []rbl.List{site(t, "bl.test")}}, rbl.Options{})
	client := ip("192.0.2.9")
	name := rbl.QueryName(client, "bl.test")
	e.srv.Set(name, rbltest.Rcode(dns.RcodeServerFailure))
	for range 3 {
		v := e.c.Check(context.Background(), client)
		if v.Results[0].Outcome != rbl.Error || v.Results[0].Cached || v.Decision != rbl.Accept {
			t.Fatalf("%v cached %v %s", outcomes(v), v.Results[0].Cached, v.Decision)
		}
	}
	if n := e.srv.Queries(name); n != 3 {
		t.Errorf("%d queries, want 3: errors must not be cached with error_ttl 0", n)
	}
}

func TestCacheSharedAcrossCheckers(t *testing.T) {
	e := newEnv(t, rbl.Config{Lists: []rbl.List{site(t, "bl.test")}}, rbl.Options{})
	client := ip("192.0.2.10")
	e.srv.Set(rbl.QueryName(client, "BL.test"), rbltest.A("127.0.0.2"))
	e.c.Check(context.Background(), client)
	// A reloaded configuration with another filter, zone spelt in
	// another case, same cache.
	l := site(t, "bl.TEST.=127.0.0.3")
	c2, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{l}}, rbl.Options{Resolver: resolver(t, e.srv.Addr()), Cache: e.cache, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	v := c2.Check(context.Background(), client)
	if r := v.Results[0]; !r.Cached || r.Outcome != rbl.NotListed {
		t.Errorf("new checker: %s cached %v", r.Outcome, r.Cached)
	}
	if n := e.srv.TotalQueries(); n != 1 {
		t.Errorf("%d queries, want 1", n)
	}
	st := e.cache.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.Entries != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestCheckAddressFamilies(t *testing.T) {
	v4only := site(t, "v4.test")
	v4only.IPv6 = false
	v6only := site(t, "v6.test")
	v6only.IPv4 = false
	e := newEnv(t, rbl.Config{Lists: []rbl.List{v4only, v6only}}, rbl.Options{})
	mapped := ip("::ffff:192.0.2.1")
	e.srv.Set(rbl.QueryName(ip("192.0.2.1"), "v4.test"), rbltest.A("127.0.0.2"))
	e.srv.Set("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.v6.test", rbltest.A("127.0.0.2"))
	v := e.c.Check(context.Background(), mapped)
	if !slices.Equal(outcomes(v), []rbl.Outcome{rbl.Listed, rbl.Disabled}) || v.Decision != rbl.Reject {
		t.Errorf("mapped IPv4: %s %v", v.Decision, outcomes(v))
	}
	v = e.c.Check(context.Background(), ip("2001:db8::1"))
	if !slices.Equal(outcomes(v), []rbl.Outcome{rbl.Disabled, rbl.Listed}) || v.Decision != rbl.Reject {
		t.Errorf("IPv6: %s %v", v.Decision, outcomes(v))
	}
	v = e.c.Check(context.Background(), netip.Addr{})
	if !slices.Equal(outcomes(v), []rbl.Outcome{rbl.Error, rbl.Error}) || v.Decision != rbl.Accept {
		t.Errorf("invalid IP: %s %v", v.Decision, outcomes(v))
	}
}

func TestCheckErrorCodesAndBogusNeverReject(t *testing.T) {
	cfg := rbl.Config{Lists: []rbl.List{site(t, "zen.test=127.0.0.[0..255]")}}
	e := newEnv(t, cfg, rbl.Options{})
	tests := []struct {
		answer string
		want   rbl.Outcome
	}{
		{"127.255.255.254", rbl.Refused},
		{"127.255.255.252", rbl.Refused},
		{"127.255.255.255", rbl.Refused},
		{"127.0.1.255", rbl.Refused},
		{"127.0.2.255", rbl.Refused},
		{"127.0.0.255", rbl.Refused},
		{"192.0.2.99", rbl.Bogus},
		{"10.1.2.3", rbl.Bogus},
	}
	for i, tt := range tests {
		client := netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
		e.srv.Set(rbl.QueryName(client, "zen.test"), rbltest.A(tt.answer))
		v := e.c.Check(context.Background(), client)
		r := v.Results[0]
		if r.Outcome != tt.want || v.Decision != rbl.Accept || v.Score != 0 || r.Weight != 0 || len(r.Codes) != 1 || r.Codes[0].String() != tt.answer {
			t.Errorf("answer %s: %s %s score %d codes %v", tt.answer, r.Outcome, v.Decision, v.Score, r.Codes)
		}
	}
}

func TestCheckAfterClose(t *testing.T) {
	e := newEnv(t, rbl.Config{Lists: []rbl.List{site(t, "bl.test")}}, rbl.Options{})
	cached, fresh := ip("192.0.2.1"), ip("192.0.2.2")
	e.srv.Set(rbl.QueryName(cached, "bl.test"), rbltest.A("127.0.0.2"))
	e.c.Check(context.Background(), cached)
	e.c.Close()
	if v := e.c.Check(context.Background(), cached); v.Decision != rbl.Reject || !v.Results[0].Cached {
		t.Errorf("cached answer after Close: %s %v", v.Decision, outcomes(v))
	}
	if v := e.c.Check(context.Background(), fresh); v.Decision != rbl.Accept || v.Results[0].Outcome != rbl.Error {
		t.Errorf("fresh lookup after Close: %s %v", v.Decision, outcomes(v))
	}
}

func TestFailedTXTIsNotAskedOnEveryCheck(t *testing.T) {
	// A checker without FetchTXT caches the listing...
	e := newEnv(t, rbl.Config{Lists: []rbl.List{site(t, "bl.test")}}, rbl.Options{})
	client := ip("192.0.2.60")
	name := rbl.QueryName(client, "bl.test")
	e.srv.Set(name, rbltest.A("127.0.0.2"))
	e.c.Check(context.Background(), client)
	// ...then the server fails, and a checker with FetchTXT (a reload)
	// asks for the TXT once, and remembers the failure as an empty text.
	e.srv.Set(name, rbltest.Rcode(dns.RcodeServerFailure))
	c2, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{site(t, "bl.test")}, FetchTXT: true}, rbl.Options{Resolver: resolver(t, e.srv.Addr()), Cache: e.cache, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for range 3 {
		if v := c2.Check(context.Background(), client); v.Decision != rbl.Reject || !v.Results[0].Cached || v.Results[0].TXT != "" {
			t.Fatalf("%s %v", v.Decision, outcomes(v))
		}
	}
	if n := e.srv.Queries(name); n != 2 {
		t.Errorf("%d queries for the listed client, want 2 (A, then TXT once)", n)
	}
}
