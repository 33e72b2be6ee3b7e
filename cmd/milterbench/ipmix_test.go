package main

import (
	"net/netip"
	"strings"
	"testing"
)

func TestFractionSpreadsExactCounts(t *testing.T) {
	for _, s := range []string{"0", "0.1", "0.333333", "0.5", "0.999", "1"} {
		f, err := parseFraction("f", s)
		if err != nil {
			t.Fatal(err)
		}
		var picked uint64
		for i := uint64(0); i < 12345; i++ {
			if f.picks(i) {
				picked++
			}
			if n := i + 1; picked != f.before(n) || picked != n*uint64(f)/ppm {
				t.Fatalf("f=%s: %d picked among the first %d, before() says %d, want floor(n*f) = %d",
					s, picked, n, f.before(n), n*uint64(f)/ppm)
			}
		}
	}
	// no overflow for very long runs
	if got := fraction(ppm / 2).before(1 << 62); got != 1<<61 {
		t.Errorf("before(2^62) at 0.5 = %d, want 2^61", got)
	}
}

func TestParseFraction(t *testing.T) {
	for in, want := range map[string]fraction{"0": 0, "0.1": 100000, "10%": 100000, "1": ppm, "100%": ppm, " 0.25 ": 250000} {
		got, err := parseFraction("-listed", in)
		if err != nil || got != want {
			t.Errorf("parseFraction(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"1.5", "-0.1", "abc", "NaN", "101%", ""} {
		_, err := parseFraction("-listed", in)
		if err == nil || !strings.Contains(err.Error(), `-listed "`+in+`"`) {
			t.Errorf("parseFraction(%q): error %v, want one naming the flag and value", in, err)
		}
	}
}

func TestMixMatchesListedRuleAndShares(t *testing.T) {
	m := testMix(t, "0.1", "0.5", "0.3", 20)
	listedNets, _ := parseNets("l", defaultListedNets)
	const n = 10000
	var repeated, listedFresh, v6ListedFresh uint64
	pool := map[netip.Addr]int{}
	fresh := map[netip.Addr]bool{}
	for i := uint64(0); i < n; i++ {
		pk := m.session(i)
		if again := m.session(i); again != pk {
			t.Fatalf("session %d: %v then %v, want the same address every time", i, pk, again)
		}
		if pk.Listed != isListed(pk.Addr, listedNets) {
			t.Fatalf("session %d: %v marked listed=%v but the DNS rule says %v", i, pk.Addr, pk.Listed, !pk.Listed)
		}
		if pk.Reused {
			t.Fatalf("session %d: %v reused within a /16", i, pk.Addr)
		}
		if pk.Repeated {
			repeated++
			pool[pk.Addr]++
			continue
		}
		if fresh[pk.Addr] {
			t.Fatalf("fresh address %v sent twice", pk.Addr)
		}
		fresh[pk.Addr] = true
		if pk.Listed {
			listedFresh++
			if pk.Addr.Is6() {
				v6ListedFresh++
			}
		}
	}
	if repeated != n/2 || listedFresh != n/2/10 || v6ListedFresh != n/2/10*3/10 {
		t.Errorf("repeated %d, listed fresh %d, IPv6 among them %d; want 5000, 500, 150", repeated, listedFresh, v6ListedFresh)
	}
	if len(pool) != 20 {
		t.Errorf("%d distinct pooled addresses, want 20", len(pool))
	}
	for a, uses := range pool {
		if fresh[a] {
			t.Errorf("pooled address %v also sent as fresh", a)
		}
		if uses != 250 {
			t.Errorf("pooled address %v used %d times, want 5000/20 = 250", a, uses)
		}
	}
}

// Issue 6's P6 workload: 1000 sessions from 10 addresses.
func TestMixPoolRoundRobin(t *testing.T) {
	m := testMix(t, "0", "1", "0", 10)
	seen := map[netip.Addr]int{}
	for i := range uint64(1000) {
		seen[m.session(i).Addr]++
	}
	if len(seen) != 10 {
		t.Fatalf("%d distinct addresses, want 10", len(seen))
	}
	for a, c := range seen {
		if c != 100 {
			t.Errorf("%v sent %d times, want 100", a, c)
		}
	}
}

func TestMixValidation(t *testing.T) {
	ln, _ := parseNets("l", defaultListedNets)
	cn, _ := parseNets("c", defaultCleanNets)
	v4only, _ := parseNets("l", "198.18.0.0/16")
	overlap, _ := parseNets("c", "198.18.5.0/24")
	for name, c := range map[string]struct {
		listed, repeat, ipv6 fraction
		pool                 uint64
		ln, cn               []netip.Prefix
		want                 string
	}{
		"overlap":      {ppm / 10, 0, 0, 0, ln, overlap, "-clean-net 198.18.5.0/24 overlaps -listed-net 198.18.0.0/16"},
		"no v6 listed": {ppm / 10, 0, ppm / 2, 0, v4only, cn, "listed IPv6"},
		"empty pool":   {0, ppm, 0, 0, ln, cn, "-pool 0"},
	} {
		_, err := newMix(c.listed, c.repeat, c.ipv6, c.pool, c.ln, c.cn)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
	// all listed needs no clean network at all
	if _, err := newMix(ppm, 0, 0, 0, ln, nil); err != nil {
		t.Errorf("listed 1 without clean networks: %v", err)
	}
}

func TestNthAddr(t *testing.T) {
	for _, c := range []struct {
		prefix  string
		ord     uint64
		want    string
		wrapped bool
	}{
		{"198.18.0.0/16", 0, "198.18.0.1", false},
		{"198.18.0.0/16", 255, "198.18.1.0", false},
		{"198.18.0.0/16", 65533, "198.18.255.254", false},
		{"198.18.0.0/16", 65534, "198.18.0.1", true},
		{"192.0.2.0/30", 1, "192.0.2.2", false},
		{"192.0.2.0/30", 2, "192.0.2.1", true},
		{"192.0.2.7/32", 3, "192.0.2.7", true},
		{"2001:2::/64", 0, "2001:2::1", false},
		{"2001:2::/64", 0xffff, "2001:2::1:0", false},
		{"2001:2::/48", 1 << 40, "2001:2::100:0:1", false},
		{"2001:2::/120", 254, "2001:2::1", true},
	} {
		got, wrapped := nthAddr(netip.MustParsePrefix(c.prefix), c.ord)
		if got.String() != c.want || wrapped != c.wrapped {
			t.Errorf("nthAddr(%s, %d) = %v, %v; want %s, %v", c.prefix, c.ord, got, wrapped, c.want, c.wrapped)
		}
	}
}

func TestIsListedTestPoints(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.2": true, "127.0.0.1": false, "::ffff:127.0.0.2": true, "198.18.3.4": false} {
		if got := isListed(netip.MustParseAddr(addr), nil); got != want {
			t.Errorf("isListed(%s) with no listed networks = %v, want %v", addr, got, want)
		}
	}
}

func TestMixOffsetGivesOtherAddresses(t *testing.T) {
	a, b := testMix(t, "0.5", "0.5", "0.5", 10), testMix(t, "0.5", "0.5", "0.5", 10)
	b.offset = 1000
	seen := map[netip.Addr]bool{}
	for i := range uint64(500) {
		seen[a.session(i).Addr] = true
	}
	for i := range uint64(500) {
		pa, pb := a.session(i), b.session(i)
		if seen[pb.Addr] || pa.Listed != pb.Listed || pa.Addr.Is6() != pb.Addr.Is6() || pa.Repeated != pb.Repeated {
			t.Fatalf("session %d: %v with offset vs %v without; want a new address of the same kind", i, pb, pa)
		}
	}
}
