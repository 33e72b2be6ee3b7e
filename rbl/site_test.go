package rbl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func codes(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func TestParseSite(t *testing.T) {
	tests := []struct {
		entry    string
		zone     string
		weight   int
		filter   string
		match    []string // codes each of which alone is Listed
		nomatch  []string // codes each of which alone is NotListed
		wantName string
	}{
		{entry: "zen.spamhaus.org", zone: "zen.spamhaus.org", weight: 1, match: []string{"127.0.0.2", "127.0.0.11", "127.1.2.3"}},
		{entry: "zen.spamhaus.org.", zone: "zen.spamhaus.org", weight: 1},
		{entry: "zen.spamhaus.org*3", zone: "zen.spamhaus.org", weight: 3},
		{entry: "zen.spamhaus.org=127.0.0.[2..11]*3", zone: "zen.spamhaus.org", weight: 3, filter: "127.0.0.[2..11]",
			match: []string{"127.0.0.2", "127.0.0.4", "127.0.0.11"}, nomatch: []string{"127.0.0.1", "127.0.0.12", "127.0.1.2"}},
		{entry: "list.dnswl.org=127.0.[0..255].[1..3]*-2", zone: "list.dnswl.org", weight: -2, filter: "127.0.[0..255].[1..3]",
			match: []string{"127.0.5.1", "127.0.255.3"}, nomatch: []string{"127.0.5.0", "127.0.5.4", "127.1.5.1"}},
		{entry: "bl.example=127.0.0.[2;4;10..11]", zone: "bl.example", weight: 1, filter: "127.0.0.[2;4;10..11]",
			match: []string{"127.0.0.2", "127.0.0.4", "127.0.0.10", "127.0.0.11"}, nomatch: []string{"127.0.0.3", "127.0.0.9"}},
		{entry: "bl.example=127.0.0.2", zone: "bl.example", weight: 1, filter: "127.0.0.2",
			match: []string{"127.0.0.2"}, nomatch: []string{"127.0.0.3"}},
		{entry: "b.barracudacentral.org=127.0.0.2*7", zone: "b.barracudacentral.org", weight: 7, filter: "127.0.0.2"},
		{entry: "Mixed-Case_Zone.Example*0", zone: "Mixed-Case_Zone.Example", weight: 0},
	}
	for _, tt := range tests {
		l, err := ParseSite(tt.entry)
		if err != nil {
			t.Errorf("ParseSite(%q): %v", tt.entry, err)
			continue
		}
		if l.Zone != tt.zone || l.Weight != tt.weight || !l.IPv4 || !l.IPv6 || !l.Monitor || l.Name != "" || l.Key != "" || l.Shadow || l.OnError != FailIgnore {
			t.Errorf("ParseSite(%q) = %#v", tt.entry, l)
		}
		if got := l.String(); got != tt.zone {
			t.Errorf("ParseSite(%q).String() = %q, want %q", tt.entry, got, tt.zone)
		}
		var filter string
		if len(l.Filters) == 1 {
			filter = l.Filters[0].String()
			if l.Filters[0].HasWeight {
				t.Errorf("ParseSite(%q): the site weight landed on the filter", tt.entry)
			}
		} else if len(l.Filters) > 1 {
			t.Errorf("ParseSite(%q): %d filters", tt.entry, len(l.Filters))
		}
		if filter != tt.filter {
			t.Errorf("ParseSite(%q) filter = %q, want %q", tt.entry, filter, tt.filter)
		}
		for _, c := range tt.match {
			if out, w := l.classifyAddrs(codes(c)); out != Listed || w != tt.weight {
				t.Errorf("ParseSite(%q): %s is %s weight %d, want listed weight %d", tt.entry, c, out, w, tt.weight)
			}
		}
		for _, c := range tt.nomatch {
			if out, w := l.classifyAddrs(codes(c)); out != NotListed || w != 0 {
				t.Errorf("ParseSite(%q): %s is %s weight %d, want not_listed", tt.entry, c, out, w)
			}
		}
	}
}

func TestParseSiteErrors(t *testing.T) {
	tests := []struct{ entry, part, msg string }{
		{"", "", `bad DNSBL site "": empty entry`},
		{"zen..org", "zen..org", `bad DNSBL site "zen..org": zone "zen..org": empty label`},
		{"=127.0.0.2", "", `bad DNSBL site "=127.0.0.2": empty zone`},
		{"bad zone=127.0.0.2", "bad zone", `bad DNSBL site "bad zone=127.0.0.2": zone "bad zone": label "bad zone" has the character ' '`},
		{strings.Repeat("a", 64) + ".org", strings.Repeat("a", 64) + ".org", `bad DNSBL site "` + strings.Repeat("a", 64) + `.org": zone "` + strings.Repeat("a", 64) + `.org": label "` + strings.Repeat("a", 64) + `" is longer than 63 characters`},
		{"zen.spamhaus.org=", "", `bad DNSBL site "zen.spamhaus.org=": empty filter after "zen.spamhaus.org="`},
		{"zen.spamhaus.org=127.0.0.[2..1x]", "1x", `bad DNSBL site "zen.spamhaus.org=127.0.0.[2..1x]": filter "127.0.0.[2..1x]": octet 4 "[2..1x]": "1x" is not a number from 0 to 255`},
		{"zen=127.0.0.[11..2]", "11..2", `bad DNSBL site "zen=127.0.0.[11..2]": filter "127.0.0.[11..2]": octet 4 "[11..2]": range "11..2" runs backwards`},
		{"zen*x", "x", `bad DNSBL site "zen*x": weight "x" is not an integer`},
		{"zen*", "", `bad DNSBL site "zen*": missing weight after "*"`},
		{"zen*--1", "--1", `bad DNSBL site "zen*--1": weight "--1" is not an integer`},
		{"zen*99999999", "99999999", `bad DNSBL site "zen*99999999": weight "99999999" is out of range -1000000..1000000`},
		{"zen=127.0.0", "127.0.0", `bad DNSBL site "zen=127.0.0": filter "127.0.0": pattern "127.0.0" has 3 octets, want 4 (d.d.d.d)`},
		{"zen=127.0.0.2.5", "127.0.0.2.5", `bad DNSBL site "zen=127.0.0.2.5": filter "127.0.0.2.5": pattern "127.0.0.2.5" has more than 4 octets`},
		{"zen=127.0.0.256", "256", `bad DNSBL site "zen=127.0.0.256": filter "127.0.0.256": octet 4 "256": "256" is not a number from 0 to 255`},
		{"zen=127.0.0.[]", "[]", `bad DNSBL site "zen=127.0.0.[]": filter "127.0.0.[]": octet 4 "[]" is an empty set`},
		{"zen=127.0.0.[1;;3]", "[1;;3]", `bad DNSBL site "zen=127.0.0.[1;;3]": filter "127.0.0.[1;;3]": octet 4 "[1;;3]": empty item in the set`},
		{"zen=127.0.0.[2..11", "[2..11", `bad DNSBL site "zen=127.0.0.[2..11": filter "127.0.0.[2..11": octet 4 "[2..11" must be a number or [...]`},
		{"zen=127.0..2", "", `bad DNSBL site "zen=127.0..2": filter "127.0..2": octet 3 is empty`},
		{"zen=127.0.[0..255.[1..3]", "[0..255.[1..3]", `bad DNSBL site "zen=127.0.[0..255.[1..3]": filter "127.0.[0..255.[1..3]": octet 3 "[0..255.[1..3]" has a nested '['`},
		{"zen=127.0.0.0/24", "127.0.0.0/24", `bad DNSBL site "zen=127.0.0.0/24": filter "127.0.0.0/24": postscreen_dnsbl_sites takes only d.d.d.d patterns`},
		{"zen=&0.0.0.4", "&0.0.0.4", `bad DNSBL site "zen=&0.0.0.4": filter "&0.0.0.4": postscreen_dnsbl_sites takes only d.d.d.d patterns`},
	}
	for _, tt := range tests {
		_, err := ParseSite(tt.entry)
		if err == nil {
			t.Errorf("ParseSite(%q) succeeded", tt.entry)
			continue
		}
		if err.Error() != tt.msg {
			t.Errorf("ParseSite(%q) error\n got %s\nwant %s", tt.entry, err, tt.msg)
		}
		var se *SyntaxError
		if !errors.As(err, &se) || se.Input != tt.entry || se.Part != tt.part || se.What != "DNSBL site" {
			t.Errorf("ParseSite(%q) error = %#v, want Part %q", tt.entry, err, tt.part)
		}
	}
}

func TestParseSites(t *testing.T) {
	lists, err := ParseSites("zen.spamhaus.org=127.0.0.[2..11]*3,\n\tlist.dnswl.org=127.0.[0..255].[1;2;3]*-2 , bl.example")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lists {
		got = append(got, fmt.Sprintf("%s %v %d", l.Zone, l.Filters, l.Weight))
	}
	want := "zen.spamhaus.org [127.0.0.[2..11]] 3|list.dnswl.org [127.0.[0..255].[1;2;3]] -2|bl.example [] 1"
	if strings.Join(got, "|") != want {
		t.Errorf("ParseSites = %q, want %q", strings.Join(got, "|"), want)
	}
	if _, err := ParseSites("zen.spamhaus.org, bad..zone"); err == nil || !strings.Contains(err.Error(), `"bad..zone"`) {
		t.Errorf("ParseSites with a bad entry: %v", err)
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		filter    string
		weight    int
		hasWeight bool
		match     []string
		nomatch   []string
	}{
		{"127.0.0.[2..11]", 0, false, []string{"127.0.0.2", "127.0.0.11"}, []string{"127.0.0.1", "127.0.0.12"}},
		{"127.0.0.4*2", 2, true, []string{"127.0.0.4"}, []string{"127.0.0.5"}},
		{"127.0.0.0/24", 0, false, []string{"127.0.0.0", "127.0.0.255"}, []string{"127.0.1.0"}},
		{"127.0.0.0/24*-5", -5, true, []string{"127.0.0.9"}, []string{"127.1.0.9"}},
		{"127.0.0.0/8", 0, false, []string{"127.9.9.9"}, []string{"128.0.0.0"}},
		{"0.0.0.0/0", 0, false, []string{"127.0.0.1", "1.2.3.4"}, nil},
		{"&0.0.0.4", 0, false, []string{"127.0.0.4", "127.0.0.6", "127.0.0.255"}, []string{"127.0.0.2", "127.0.0.3"}},
		{"&0.0.0.6*3", 3, true, []string{"127.0.0.6", "127.0.0.7"}, []string{"127.0.0.4", "127.0.0.2"}},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.filter)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tt.filter, err)
			continue
		}
		if f.Weight != tt.weight || f.HasWeight != tt.hasWeight || f.String() != tt.filter {
			t.Errorf("ParseFilter(%q) = %v weight %d/%v", tt.filter, f, f.Weight, f.HasWeight)
		}
		for _, c := range tt.match {
			if !f.matchAddr(netip.MustParseAddr(c)) {
				t.Errorf("ParseFilter(%q) does not match %s", tt.filter, c)
			}
		}
		for _, c := range tt.nomatch {
			if f.matchAddr(netip.MustParseAddr(c)) {
				t.Errorf("ParseFilter(%q) matches %s", tt.filter, c)
			}
		}
	}
	if (&Filter{}).matchAddr(netip.MustParseAddr("127.0.0.2")) {
		t.Error("the zero Filter matches")
	}
}

func TestParseFilterErrors(t *testing.T) {
	tests := []struct{ filter, msg string }{
		{"", `bad filter "": empty filter`},
		{"*3", `bad filter "*3": empty filter`},
		{"&0.0.0.0", `bad filter "&0.0.0.0": bitmask "&0.0.0.0" has no bit set`},
		{"&x", `bad filter "&x": bitmask "&x" is not & followed by an IPv4 address`},
		{"127.0.0.1/24", `bad filter "127.0.0.1/24": CIDR "127.0.0.1/24" has host bits set (network is 127.0.0.0/24)`},
		{"127.0.0.0/33", `bad filter "127.0.0.0/33": CIDR "127.0.0.0/33" is not an IPv4 network like 127.0.0.0/24`},
		{"::1/128", `bad filter "::1/128": CIDR "::1/128" is not an IPv4 network like 127.0.0.0/24`},
		{"127.0.0.2*x", `bad filter "127.0.0.2*x": weight "x" is not an integer`},
		{"127.0.0.[2..300]", `bad filter "127.0.0.[2..300]": octet 4 "[2..300]": "300" is not a number from 0 to 255`},
	}
	for _, tt := range tests {
		_, err := ParseFilter(tt.filter)
		if err == nil || err.Error() != tt.msg {
			t.Errorf("ParseFilter(%q) error\n got %v\nwant %s", tt.filter, err, tt.msg)
		}
	}
}

func TestListStringHidesKey(t *testing.T) {
	l := List{Zone: "zen.dq.spamhaus.net", Key: "s3cr3tk3y", Weight: 1}
	for _, s := range []string{l.String(), fmt.Sprint(l), fmt.Sprintf("%v %+v %#v %s", l, l, l, &l), fmt.Sprintf("%+v", Config{Lists: []List{l}})} {
		if strings.Contains(s, "s3cr3tk3y") {
			t.Errorf("key printed: %s", s)
		}
	}
	l.Name = "Spamhaus DQS"
	if l.String() != "Spamhaus DQS" {
		t.Errorf("String() = %q", l.String())
	}
}

func TestCheckZoneAndLabel(t *testing.T) {
	long := strings.Repeat("a.", 95) + "b" // 191 characters: no room for an IPv6 query
	for zone, want := range map[string]string{
		"zen.spamhaus.org": "",
		"":                 "empty zone",
		"bl..example":      "empty label",
		"bl example.org":   `label "bl example" has the character ' '`,
		long:               "longer than 189 characters",
	} {
		got := ""
		if err := CheckZone(zone); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("CheckZone(%q) = %q, want %q", zone, got, want)
		}
	}
	if CheckLabel("abc-123_x") != nil || CheckLabel("a.b") == nil || CheckLabel(strings.Repeat("k", 64)) == nil {
		t.Error("CheckLabel accepts or refuses the wrong labels")
	}
}

// matchAddr reports whether the A record code passes the filter. Only IPv4
// codes can match.
func (f *Filter) matchAddr(code netip.Addr) bool {
	if !code.Is4() {
		return false
	}
	return f.matcher.match(addrToUint32(code))
}
