package rbl_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// The canary ranges, written out again so that the test does not share
// the code under test. Each round must ask one address in each, and one
// in public unicast space per family.
var (
	reservedV4 = []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15", "100.64.0.0/10",
		"233.252.0.0/24", "240.0.0.0/5", "10.0.0.0/8"}
	reservedV6 = []string{"2001:db8::/32", "3fff::/20", "100::/64", "2001:2::/48", "fc00::/7"}
)

// askedNames is a Resolver that remembers the names it is asked.
type askedNames struct {
	rbl.Resolver
	mu    sync.Mutex
	names []string
}

func (r *askedNames) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	r.mu.Lock()
	r.names = append(r.names, name)
	r.mu.Unlock()
	return r.Resolver.Query(ctx, name, qtype)
}

// canaries returns the canary addresses asked since the last call: every
// address asked but the RFC 5782 test points.
func (r *askedNames) canaries(t *testing.T, zone string) []netip.Addr {
	t.Helper()
	r.mu.Lock()
	names := r.names
	r.names = nil
	r.mu.Unlock()
	var out []netip.Addr
	for _, name := range names {
		a := addrOfQueryName(t, name, zone)
		switch a {
		case ip("127.0.0.2"), ip("127.0.0.1"), ip("::ffff:7f00:2"), ip("::ffff:7f00:1"):
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// addrOfQueryName reads the address back out of an RFC 5782 query name.
func addrOfQueryName(t *testing.T, name, zone string) netip.Addr {
	t.Helper()
	labels := strings.Split(strings.TrimSuffix(name, "."+zone), ".")
	slices.Reverse(labels)
	var text string
	if len(labels) == 4 {
		text = strings.Join(labels, ".")
	} else {
		var b strings.Builder
		for i, l := range labels {
			if i > 0 && i%4 == 0 {
				b.WriteByte(':')
			}
			b.WriteString(l)
		}
		text = b.String()
	}
	a, err := netip.ParseAddr(text)
	if err != nil {
		t.Fatalf("query name %q: %v", name, err)
	}
	return a
}

// rangeOf names the canary range holding a, "public" for public unicast,
// or "" when a is in none (a special-purpose address outside the ranges).
func rangeOf(a netip.Addr) string {
	for _, p := range append(append([]string{}, reservedV4...), reservedV6...) {
		if netip.MustParsePrefix(p).Contains(a) {
			return p
		}
	}
	if a.Is4() && a.IsGlobalUnicast() && !a.IsPrivate() && a.As4()[0] < 224 {
		switch a.As4()[0] {
		case 0, 100, 127, 169, 172, 192, 198, 203:
			return ""
		}
		return "public"
	}
	if a.Is6() && netip.MustParsePrefix("2000::/3").Contains(a) {
		return "public"
	}
	return ""
}

// checkRanges fails unless canaries holds exactly one address in each
// canary range of the families and one public one per family.
func checkRanges(t *testing.T, canaries []netip.Addr, v4, v6 bool) {
	t.Helper()
	want := map[string]int{}
	if v4 {
		for _, p := range reservedV4 {
			want[p] = 1
		}
	}
	if v6 {
		for _, p := range reservedV6 {
			want[p] = 1
		}
	}
	got := map[string]int{}
	public := map[bool]int{}
	for _, a := range canaries {
		r := rangeOf(a)
		if r == "public" {
			public[a.Is4()]++
			continue
		}
		got[r]++
	}
	for r, n := range got {
		if want[r] != n {
			t.Errorf("canaries %v: %d in range %q, want %d", canaries, n, r, want[r])
		}
	}
	for r := range want {
		if got[r] == 0 {
			t.Errorf("canaries %v: none in %s", canaries, r)
		}
	}
	if v4 && public[true] != 1 || v6 && public[false] != 1 {
		t.Errorf("canaries %v: public ones %v, want one per family", canaries, public)
	}
}

func recordProbes(t *testing.T, e *healthEnv, lists []rbl.List) *askedNames {
	t.Helper()
	rec := &askedNames{Resolver: e.resolver}
	if err := e.mon.Configure(rbl.MonitorConfig{Resolver: rec, Lists: lists}); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestCanariesCoverEveryRangeAndChangeEachRound(t *testing.T) {
	lists := twoLists(t)[:1]
	e := newHealthEnv(t, lists, rbl.MonitorOptions{Rand: rand.NewPCG(1, 2)})
	rec := recordProbes(t, e, e.c.Config().Lists)
	e.probe(t)
	first := rec.canaries(t, "bad.test")
	if len(first) != len(reservedV4)+len(reservedV6)+2 {
		t.Fatalf("%d canaries, want %d: %v", len(first), len(reservedV4)+len(reservedV6)+2, first)
	}
	checkRanges(t, first, true, true)
	e.probe(t)
	second := rec.canaries(t, "bad.test")
	checkRanges(t, second, true, true)
	again := 0
	for _, a := range second {
		if slices.Contains(first, a) {
			again++
		}
	}
	// 233.252.0.0/24 leaves 8 random bits: a repeat there is possible.
	if again > 1 {
		t.Errorf("round 2 asked %d of round 1's canaries again: %v then %v", again, first, second)
	}

	// The same seed asks the same canaries: tests never depend on luck.
	e2 := newHealthEnv(t, lists, rbl.MonitorOptions{Rand: rand.NewPCG(1, 2)})
	rec2 := recordProbes(t, e2, e2.c.Config().Lists)
	e2.probe(t)
	if same := rec2.canaries(t, "bad.test"); !slices.Equal(same, first) {
		t.Errorf("same seed, different canaries:\n%v\n%v", first, same)
	}

	// A source that always draws the same number still plans a round.
	only4 := twoLists(t)[:1]
	only4[0].IPv6 = false
	e3 := newHealthEnv(t, only4, rbl.MonitorOptions{Rand: constSource{}})
	rec3 := recordProbes(t, e3, e3.c.Config().Lists)
	e3.probe(t)
	c3 := rec3.canaries(t, "bad.test")
	checkRanges(t, c3, true, false)
	if !slices.Contains(c3, ip("192.0.2.0")) || !slices.Contains(c3, ip("10.0.0.0")) {
		t.Errorf("constant source: %v", c3)
	}
}

// treeNames are the query-name subtrees that list all of prefix in zone
// (prefixes not on a label boundary take several).
func treeNames(t *testing.T, prefix, zone string) []string {
	t.Helper()
	p := netip.MustParsePrefix(prefix)
	step := 4
	if p.Addr().Is4() {
		step = 8
	}
	bits := (p.Bits() + step - 1) / step * step
	var out []string
	for n := 0; n < 1<<(bits-p.Bits()); n++ {
		a := p.Addr().AsSlice()
		// Set the bits between the prefix and the label boundary to n.
		for i := 0; i < bits-p.Bits(); i++ {
			bit := bits - 1 - i
			if n>>i&1 == 1 {
				a[bit/8] |= 0x80 >> (bit % 8)
			}
		}
		var labels []string
		if step == 8 {
			for i := bits/8 - 1; i >= 0; i-- {
				labels = append(labels, strconv.Itoa(int(a[i])))
			}
		} else {
			for i := bits/4 - 1; i >= 0; i-- {
				nibble := a[i/2] >> 4
				if i%2 == 1 {
					nibble = a[i/2] & 0xf
				}
				labels = append(labels, fmt.Sprintf("%x", nibble))
			}
		}
		out = append(out, strings.Join(labels, ".")+"."+zone)
	}
	return out
}

func listTrees(t *testing.T, srv *rbltest.Server, zone string, prefixes []string, opts ...rbltest.Option) {
	t.Helper()
	for _, p := range prefixes {
		for _, name := range treeNames(t, p, zone) {
			srv.SetTree(name, opts...)
		}
	}
}

// The lab setup of issue 10: an aggregate zone (a blocklist, a policy list
// and an IPv6 list in one, like zen.spamhaus.org) whose test data lists
// whole documentation /24s and 2001:db8::/32. It lists canaries every
// round, and must stay counted all the same.
func TestMonitorAggregateZoneWithDocumentationDataStaysCounted(t *testing.T) {
	agg := site(t, "good.test")
	agg.Name = "Aggregate"
	e := newHealthEnv(t, []rbl.List{agg}, rbl.MonitorOptions{Rand: rand.NewPCG(10, 10)})
	listTrees(t, e.good, "good.test", []string{"192.0.2.0/24", "203.0.113.0/24"}, rbltest.A("127.0.0.2"))
	listTrees(t, e.good, "good.test", []string{"198.51.100.0/24"}, rbltest.A("127.0.0.10"))
	listTrees(t, e.good, "good.test", []string{"2001:db8::/32"}, rbltest.A("127.0.0.2", "127.0.0.4"))
	for round := 1; round <= 100; round++ {
		e.probe(t)
		h := e.state(t, "Aggregate")
		if h.State != rbl.HealthDegraded || !e.mon.Enabled(&e.c.Config().Lists[0]) {
			t.Fatalf("round %d: %+v, want degraded and counted", round, h)
		}
		if !strings.Contains(h.Evidence, "canaries: 4 of 15 listed") || !strings.Contains(h.Evidence, "127.0.0.1 not listed") {
			t.Fatalf("round %d: evidence %q", round, h.Evidence)
		}
	}
	h := e.state(t, "Aggregate")
	for _, want := range []string{"4 of 15 canaries listed", "TEST-NET-1, RFC 5737", "TEST-NET-2", "TEST-NET-3", "documentation, RFC 3849", "normal for a bogon list or a lab list", "so still counted"} {
		if !strings.Contains(h.Reason, want) {
			t.Errorf("reason lacks %q: %s", want, h.Reason)
		}
	}
	if h.Rounds != 100 {
		t.Errorf("rounds = %d, want 100", h.Rounds)
	}
	// Its listed clients are still refused, in every family.
	for _, client := range []string{"192.0.2.44", "203.0.113.5", "198.51.100.1", "2001:db8::66"} {
		if v := e.c.Check(t.Context(), ip(client)); v.Decision != rbl.Reject {
			t.Errorf("listed client %s: %s %v", client, v.Decision, outcomes(v))
		}
	}
	// One warning in 100 rounds, no switch-off.
	if n := e.logs.Count("list degraded, still counted", "list=Aggregate"); n != 1 {
		t.Errorf("%d degraded lines, want 1:\n%s", n, e.logs)
	}
	if n := e.logs.Count("level=ERROR"); n != 0 {
		t.Errorf("%d error lines:\n%s", n, e.logs)
	}
	mustMetric(t, e.reg, 1, "rblmilter_list_health_state", "list", "Aggregate", "state", "degraded")
}

// A complete bogon list lists every reserved canary, rightly. The public
// canaries tell it from a list that lists the world.
func TestMonitorBogonListStaysCounted(t *testing.T) {
	e := newHealthEnv(t, twoLists(t)[1:], rbl.MonitorOptions{Rand: rand.NewPCG(3, 4)})
	listTrees(t, e.good, "good.test", append(append([]string{}, reservedV4...), reservedV6...), rbltest.A("127.0.0.2"))
	e.probe(t)
	h := e.state(t, "good.test")
	if h.State != rbl.HealthDegraded || !strings.Contains(h.Reason, "13 of 15 canaries listed") || !strings.Contains(h.Evidence, "canaries: 13 of 15 listed") {
		t.Fatalf("bogon list: %+v", h)
	}
	if v := e.c.Check(t.Context(), ip("10.1.2.3")); v.Decision != rbl.Reject {
		t.Errorf("bogon list's listing not counted: %s %v", v.Decision, outcomes(v))
	}
}

// A wildcard zone (a lapsed domain answering for every name) lists
// 127.0.0.1: switched off in the first round.
func TestMonitorWildcardZoneIsSwitchedOffInTheFirstRound(t *testing.T) {
	e := newHealthEnv(t, twoLists(t), rbl.MonitorOptions{Rand: rand.NewPCG(5, 6)})
	e.bad.SetDefault(rbltest.A("127.0.0.2"))
	e.probe(t)
	h := e.state(t, "bad.test")
	if h.State != rbl.HealthUnhealthy || !strings.Contains(h.Reason, "lists the world: 127.0.0.1 is listed") || h.Answer != "127.0.0.1 → A 127.0.0.2" || h.Rounds != 1 {
		t.Fatalf("wildcard zone after one round: %+v", h)
	}
	if got := e.mustAccept(t, "192.0.2.9"); got[0] != rbl.Disabled {
		t.Errorf("wildcard zone asked: %v", got)
	}
	if g := e.state(t, "good.test"); g.State != rbl.HealthHealthy {
		t.Errorf("good.test: %+v", g)
	}
}

// A zone that lists every canary but knows to leave out 127.0.0.1 and
// ::ffff:7f00:1 lists the world as surely.
func TestMonitorZoneListingEveryCanaryButLoopbackIsSwitchedOff(t *testing.T) {
	lists := twoLists(t)[:1]
	e := newHealthEnv(t, lists, rbl.MonitorOptions{Rand: rand.NewPCG(7, 8)})
	rec := recordProbes(t, e, e.c.Config().Lists)
	e.bad.SetDefault(rbltest.A("127.0.0.2"))
	e.bad.Set(rbl.QueryName(ip("127.0.0.1"), "bad.test"))
	e.bad.Set(v6NotTestEntry + "bad.test")
	e.probe(t)
	h := e.state(t, "bad.test")
	if h.State != rbl.HealthUnhealthy || !strings.Contains(h.Reason, "lists the world: every IPv4 canary is listed") ||
		!strings.Contains(h.Evidence, "127.0.0.1 not listed") || !strings.Contains(h.Evidence, "canaries: 15 of 15 listed") {
		t.Fatalf("after one round: %+v", h)
	}
	// The evidence names every canary of the family.
	for _, a := range rec.canaries(t, "bad.test") {
		if a.Is4() && !strings.Contains(h.Reason, a.String()) {
			t.Errorf("reason does not name canary %s: %s", a, h.Reason)
		}
	}
	if got := e.mustAccept(t, "198.51.100.7"); got[0] != rbl.Disabled {
		t.Errorf("%v", got)
	}

	// An allowlist listing the world is as bad: it lets everyone in.
	wl := site(t, "good.test*-5")
	e2 := newHealthEnv(t, []rbl.List{wl}, rbl.MonitorOptions{Rand: rand.NewPCG(1, 2)})
	e2.good.SetDefault(rbltest.A("127.0.0.2"))
	e2.good.Set(rbl.QueryName(ip("127.0.0.1"), "good.test"))
	e2.good.Set(v6NotTestEntry + "good.test")
	e2.probe(t)
	if h := e2.state(t, "good.test"); h.State != rbl.HealthUnhealthy || !strings.Contains(h.Reason, "lists the world") {
		t.Errorf("allowlist listing the world: %+v", h)
	}
}

// One or two listed reserved ranges never switch a list off, whichever
// they are.
func TestMonitorSomeListedRangesOnlyDegrade(t *testing.T) {
	all := append(append([]string{}, reservedV4...), reservedV6...)
	for i, r := range all {
		t.Run(r, func(t *testing.T) {
			e := newHealthEnv(t, twoLists(t)[:1], rbl.MonitorOptions{Rand: rand.NewPCG(uint64(i), 9)})
			listTrees(t, e.bad, "bad.test", []string{r, all[(i+1)%len(all)]}, rbltest.A("127.0.0.2"))
			e.probe(t)
			if h := e.state(t, "bad.test"); h.State != rbl.HealthDegraded || !strings.Contains(h.Reason, "2 of 15 canaries listed") {
				t.Errorf("%+v", h)
			}
		})
	}
}

// A lab list that lists the world for a while and is fixed goes back to
// degraded, and says so in words that fit.
func TestMonitorDegradedListRecovers(t *testing.T) {
	e := newHealthEnv(t, twoLists(t)[1:], rbl.MonitorOptions{Rand: rand.NewPCG(11, 12)})
	listTrees(t, e.good, "good.test", []string{"198.51.100.0/24"}, rbltest.A("127.0.0.2"))
	e.probe(t)
	e.good.SetDefault(rbltest.A("127.0.0.2"))
	e.probe(t)
	if h := e.state(t, "good.test"); h.State != rbl.HealthUnhealthy {
		t.Fatalf("%+v", h)
	}
	e.good.SetDefault()
	e.probe(t)
	if h := e.state(t, "good.test"); h.State != rbl.HealthDegraded {
		t.Fatalf("%+v", h)
	}
	if n := e.logs.Count("level=WARN", "list counted again, but degraded", "from=unhealthy", "to=degraded"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, e.logs)
	}
	if n := e.logs.Count("healthy again"); n != 0 {
		t.Errorf("a degraded list was logged as healthy:\n%s", e.logs)
	}
}
