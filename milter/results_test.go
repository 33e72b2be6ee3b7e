package milter

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/rblmilter/rblmilter/rbl"
)

func codes(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, c := range s {
		out[i] = netip.MustParseAddr(c)
	}
	return out
}

func TestResultsValuePinned(t *testing.T) {
	pbl := &rbl.List{Zone: "pbl.example", Weight: 1}
	sbl := &rbl.List{Zone: "sbl.example", Name: "Spamhaus SBL", Weight: 3}
	dnswl := &rbl.List{Zone: "list.dnswl.example", Weight: -5}
	shadow := &rbl.List{Zone: "new.example", Weight: 2, Shadow: true}
	clean := &rbl.List{Zone: "clean.example", Weight: 1}
	tests := []struct {
		name string
		lv   levels
		v    rbl.Verdict
		want string
	}{{
		name: "clean client",
		lv:   levels{tag: 1, reject: 3},
		v:    rbl.Verdict{Results: []rbl.Result{{List: clean, Outcome: rbl.NotListed}}},
		want: "score=0 tag=1 reject=3",
	}, {
		name: "tag level, as the issue shows it",
		lv:   levels{tag: 1, reject: 3},
		v: rbl.Verdict{Score: 1, Results: []rbl.Result{
			{List: pbl, Outcome: rbl.Listed, Weight: 1, Codes: codes("127.0.0.10")},
			{List: clean, Outcome: rbl.NotListed},
		}},
		want: "score=1 tag=1 reject=3 listed=pbl.example(127.0.0.10)",
	}, {
		name: "no tag level, several codes, a name with a space, shadow and failures left out",
		lv:   levels{reject: 1},
		v: rbl.Verdict{Score: 4, Results: []rbl.Result{
			{List: pbl, Outcome: rbl.Listed, Weight: 1, Codes: codes("127.0.0.10", "127.0.0.11")},
			{List: sbl, Outcome: rbl.Listed, Weight: 3, Codes: codes("127.0.0.3")},
			{List: shadow, Outcome: rbl.Listed, Matched: 2, Codes: codes("127.0.0.2")},
			{List: clean, Outcome: rbl.Timeout},
			// Listed, but for unauthenticated sessions only, and this
			// client has logged in: weightless.
			{List: pbl, Outcome: rbl.Listed, Matched: 1, Codes: codes("127.0.0.11")},
		}},
		want: "score=4 reject=1 listed=pbl.example(127.0.0.10,127.0.0.11)\n\tlisted=Spamhaus_SBL(127.0.0.3)",
	}, {
		name: "a domain list names the check and the name it listed",
		lv:   levels{tag: 1, reject: 3},
		v: rbl.Verdict{Score: 2, Results: []rbl.Result{
			{List: &rbl.List{Zone: "dbl.example", Name: "DBL", Type: rbl.DomainList, Weight: 2}, Outcome: rbl.Listed, Weight: 2,
				Codes: codes("127.0.1.2"), Check: rbl.CheckHelo, Name: "bad.example"},
		}},
		want: "score=2 tag=1 reject=3 listed=DBL(127.0.1.2;helo=bad.example)",
	}, {
		name: "allowlisted",
		lv:   levels{tag: 2, reject: 5},
		v: rbl.Verdict{Score: -5, Results: []rbl.Result{
			{List: dnswl, Outcome: rbl.Listed, Weight: -5, Codes: codes("127.0.10.1")},
		}},
		want: "score=-5 tag=2 reject=5 listed=list.dnswl.example(127.0.10.1)",
	}}
	for _, tt := range tests {
		if got := resultsValue("X-RBL", tt.lv, &tt.v); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestNetworkResultsValue(t *testing.T) {
	got := networkResultsValue("X-RBL", levels{tag: 1, reject: 3}, ResultAllow, netip.MustParsePrefix("192.0.2.0/24"))
	if want := "score=0 tag=1 reject=3 allow=192.0.2.0/24"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A resolver or a configuration cannot make the header unbounded: codes
// per entry and the whole value are capped, and what is left out is
// counted.
func TestResultsValueBounded(t *testing.T) {
	var v rbl.Verdict
	many := make([]string, 40)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 2)}).String()
	}
	for i := 0; i < 60; i++ {
		l := &rbl.List{Zone: "z.example", Name: strings.Repeat("n", 80), Weight: 1}
		v.Results = append(v.Results, rbl.Result{List: l, Outcome: rbl.Listed, Weight: 1, Codes: codes(many...)})
	}
	v.Score = 60
	got := resultsValue("X-RBL", levels{reject: 1}, &v)
	unfolded := strings.ReplaceAll(got, "\n\t", " ")
	if len(unfolded) > maxHeaderValue {
		t.Errorf("value is %d octets, want at most %d", len(unfolded), maxHeaderValue)
	}
	if !strings.Contains(got, "listed="+strings.Repeat("n", 64)+"(127.0.0.2,") || !strings.Contains(got, ",...)") {
		t.Errorf("entries not capped: %q", got[:200])
	}
	// Five entries of 157 octets fit after "score=60 reject=1".
	if !strings.HasSuffix(unfolded, " more=55") || strings.Count(unfolded, "listed=") != 5 {
		t.Errorf("left-out entries not counted: ...%q", unfolded[len(unfolded)-40:])
	}
	for _, line := range strings.Split(got, "\n") {
		if len(line) > 998-len("X-RBL: ") {
			t.Errorf("line of %d octets", len(line))
		}
	}
}
