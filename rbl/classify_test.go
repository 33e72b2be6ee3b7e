package rbl

import (
	"net/netip"
	"testing"
)

func mustSite(t testing.TB, entry string) List {
	t.Helper()
	l, err := ParseSite(entry)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustFilters(t testing.TB, filters ...string) []Filter {
	t.Helper()
	var out []Filter
	for _, s := range filters {
		f, err := ParseFilter(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func TestClassify(t *testing.T) {
	any := List{Zone: "bl.test", Weight: 2}
	zen := mustSite(t, "zen.spamhaus.org=127.0.0.[2..11]*3")
	all127 := List{Zone: "bl.test", Weight: 1, Filters: mustFilters(t, "127.0.0.0/8")}
	scored := List{Zone: "zen.spamhaus.org", Weight: 1, Filters: mustFilters(t, "127.0.0.2*3", "127.0.0.4*2", "127.0.0.[10;11]", "127.0.0.[10..11]")}
	allow := mustSite(t, "list.dnswl.org=127.0.[0..255].[1..3]*-2")
	tests := []struct {
		name   string
		list   List
		codes  []string
		out    Outcome
		weight int
	}{
		{"no records", any, nil, NotListed, 0},
		{"listed, no filter", any, []string{"127.0.0.2"}, Listed, 2},
		{"several records add the weight once", any, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, Listed, 2},
		{"filter passes", zen, []string{"127.0.0.4"}, Listed, 3},
		{"filter rejects", zen, []string{"127.0.0.1"}, NotListed, 0},
		{"pattern matched by many records adds once", zen, []string{"127.0.0.2", "127.0.0.4", "127.0.0.10"}, Listed, 3},
		{"some records pass", zen, []string{"127.0.0.20", "127.0.0.3"}, Listed, 3},
		{"spamhaus public resolver code", any, []string{"127.255.255.254"}, Refused, 0},
		{"spamhaus typo code", any, []string{"127.255.255.252"}, Refused, 0},
		{"spamhaus excessive queries", any, []string{"127.255.255.255"}, Refused, 0},
		{"127.255.255.0 is an error code", any, []string{"127.255.255.0"}, Refused, 0},
		{"127.255.254.255 is not", any, []string{"127.255.254.255"}, Listed, 2},
		{"DBL asked about an IP", any, []string{"127.0.1.255"}, Refused, 0},
		{"ZRD asked about an IP", any, []string{"127.0.2.255"}, Refused, 0},
		{"ZRD's error code even where a filter would pass it", all127, []string{"127.0.2.255"}, Refused, 0},
		{"ZRD's error code beside a ZRD age", List{Zone: "zrd.test", Weight: 1, Filters: mustFilters(t, "127.0.2.[2..24]")}, []string{"127.0.2.5", "127.0.2.255"}, Refused, 0},
		{"127.0.2.254 is a listing", any, []string{"127.0.2.254"}, Listed, 2},
		{"dnswl over quota", allow, []string{"127.0.0.255"}, Refused, 0},
		{"error code even when a filter would pass it", all127, []string{"127.255.255.254"}, Refused, 0},
		{"error code beside a listing", zen, []string{"127.0.0.2", "127.255.255.254"}, Refused, 0},
		{"outside 127/8", any, []string{"10.0.0.1"}, Bogus, 0},
		{"outside 127/8 beside a listing", zen, []string{"127.0.0.2", "192.0.2.1"}, Bogus, 0},
		{"bogus beats refused", any, []string{"127.255.255.254", "198.51.100.7"}, Bogus, 0},
		{"bogus even when a filter would pass it", List{Zone: "x", Weight: 1, Filters: mustFilters(t, "0.0.0.0/0")}, []string{"203.0.113.9"}, Bogus, 0},
		{"128.0.0.2 is bogus", any, []string{"128.0.0.2"}, Bogus, 0},
		{"126.255.255.255 is bogus", any, []string{"126.255.255.255"}, Bogus, 0},
		{"IPv6 record is bogus", any, []string{"::1"}, Bogus, 0},
		{"per-filter weights add up", scored, []string{"127.0.0.2", "127.0.0.4"}, Listed, 5},
		{"per-filter weight once per filter", scored, []string{"127.0.0.2", "127.0.0.2"}, Listed, 3},
		{"unweighted filters add the list weight once", scored, []string{"127.0.0.10", "127.0.0.11"}, Listed, 1},
		{"weighted and unweighted filters", scored, []string{"127.0.0.2", "127.0.0.10"}, Listed, 4},
		{"no filter matches", scored, []string{"127.0.0.3"}, NotListed, 0},
		{"allowlist", allow, []string{"127.0.10.2"}, Listed, -2},
		{"allowlist filter rejects", allow, []string{"127.0.10.0"}, NotListed, 0},
	}
	for _, tt := range tests {
		out, w := tt.list.classifyAddrs(codes(tt.codes...))
		if out != tt.out || w != tt.weight {
			t.Errorf("%s: classifyAddrs(%v) = %s, %d; want %s, %d", tt.name, tt.codes, out, w, tt.out, tt.weight)
		}
		// The same answer, fresh from DNS or from the cache, is
		// classified the same way.
		r := resultOf(&tt.list, &answer{kind: kindOf(len(tt.codes)), codes: encode(t, tt.codes)})
		if r.Outcome != tt.out && !(tt.out == Bogus && len(tt.codes) == 1 && tt.codes[0] == "::1") {
			t.Errorf("%s: resultOf = %s", tt.name, r.Outcome)
		}
		if r.Outcome != Listed && r.Weight != 0 {
			t.Errorf("%s: %s result has weight %d", tt.name, r.Outcome, r.Weight)
		}
		if (r.Outcome == NotListed) != (r.Codes == nil) {
			t.Errorf("%s: %s result with codes %v", tt.name, r.Outcome, r.Codes)
		}
	}
}

func kindOf(n int) answerKind {
	if n == 0 {
		return answerNegative
	}
	return answerRecords
}

func encode(t *testing.T, addrs []string) codeSet {
	var b []byte
	for _, a := range codes(addrs...) {
		if a.Is4() {
			b = appendCode(b, addrToUint32(a))
		}
	}
	return codeSet(b)
}

func TestShadowResultIsNotCounted(t *testing.T) {
	l := List{Zone: "bl.test", Weight: 5, Shadow: true}
	r := resultOf(&l, &answer{kind: answerRecords, codes: encode(t, []string{"127.0.0.2"})})
	if r.Outcome != Listed || r.Weight != 0 || r.Matched != 5 {
		t.Errorf("shadow result = %s weight %d matched %d, want listed 0 5", r.Outcome, r.Weight, r.Matched)
	}
}

func TestWeightRange(t *testing.T) {
	tests := []struct {
		name   string
		list   List
		lo, hi int
	}{
		{"blocklist", List{Weight: 3}, 0, 3},
		{"allowlist", List{Weight: -2}, -2, 0},
		{"zero", List{Weight: 0}, 0, 0},
		{"filters without weights count the list weight once", List{Weight: 2, Filters: mustFilters(t, "127.0.0.2", "127.0.0.3")}, 0, 2},
		{"filter weights add", List{Weight: 1, Filters: mustFilters(t, "127.0.0.2*3", "127.0.0.4*2", "127.0.0.10")}, 0, 6},
		{"mixed signs", List{Weight: -1, Filters: mustFilters(t, "127.0.0.2*3", "127.0.0.4*-4", "127.0.0.10")}, -5, 3},
		{"all filters weighted: list weight unused", List{Weight: 100, Filters: mustFilters(t, "127.0.0.2*1")}, 0, 1},
	}
	for _, tt := range tests {
		lo, hi := tt.list.weightRange()
		if lo != tt.lo || hi != tt.hi {
			t.Errorf("%s: weightRange = %d..%d, want %d..%d", tt.name, lo, hi, tt.lo, tt.hi)
		}
	}
}

func TestOutcomeAndDecisionNames(t *testing.T) {
	want := map[Outcome]string{Pending: "pending", NotListed: "not_listed", Listed: "listed", Refused: "refused",
		Bogus: "bogus", Error: "error", Timeout: "timeout", Disabled: "disabled", OverBudget: "over_budget", Outcome(200): "unknown"}
	for o, s := range want {
		if o.String() != s {
			t.Errorf("Outcome(%d) = %q, want %q", o, o.String(), s)
		}
	}
	for d, s := range map[Decision]string{Accept: "accept", Reject: "reject", Tempfail: "tempfail", Allowlisted: "allowlisted"} {
		if d.String() != s {
			t.Errorf("Decision(%d) = %q, want %q", d, d.String(), s)
		}
	}
	if !Error.Failed() || !Timeout.Failed() || Refused.Failed() || Bogus.Failed() || OverBudget.Failed() {
		t.Error("Failed() wrong")
	}
}

// classifyAddrs is classify for codes written as addresses; non-IPv4
// codes count as outside 127.0.0.0/8.
func (l *List) classifyAddrs(codes []netip.Addr) (Outcome, int) {
	buf := make([]byte, 0, 4*len(codes))
	for _, a := range codes {
		if !a.Is4() {
			return Bogus, 0
		}
		buf = appendCode(buf, addrToUint32(a))
	}
	return l.classify(codeSet(buf))
}
