package main

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/internal/testutil"
)

// dnsblName is the DNSBL query name of ip in zone, built with miekg/dns's
// own reverse-name code so the server is checked against an independent
// implementation.
func dnsblName(t *testing.T, ip, zone string) string {
	t.Helper()
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	r = strings.TrimSuffix(strings.TrimSuffix(r, "in-addr.arpa."), "ip6.arpa.")
	return r + dns.Fqdn(zone)
}

func query(t *testing.T, server, net_, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net_, Timeout: 10 * time.Second}
	m := new(dns.Msg).SetQuestion(name, qtype)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], net_, err)
	}
	return r
}

func TestDNSAnswersByListedRule(t *testing.T) {
	b4 := testZone(t, "b.test")
	b4.Answer = netip.MustParseAddr("127.0.0.4")
	b4.Listed, _ = parseNets("listed", "203.0.113.0/24")
	fail := testZone(t, "f.test")
	fail.Rcode = dns.RcodeServerFailure
	_, addr := startDNS(t, testZone(t, "a.test"), b4, fail)

	for _, c := range []struct {
		name  string
		net   string
		qtype uint16
		rcode int
		a     string // expected A answer, "" for none
	}{
		{dnsblName(t, "198.18.0.5", "a.test"), "udp", dns.TypeA, dns.RcodeSuccess, "127.0.0.2"},
		{dnsblName(t, "198.18.0.5", "a.test"), "tcp", dns.TypeA, dns.RcodeSuccess, "127.0.0.2"},
		{dnsblName(t, "198.19.0.5", "a.test"), "udp", dns.TypeA, dns.RcodeNameError, ""},
		{dnsblName(t, "2001:2:0:1::5", "a.test"), "udp", dns.TypeA, dns.RcodeSuccess, "127.0.0.2"},
		{dnsblName(t, "2001:2::5", "a.test"), "udp", dns.TypeA, dns.RcodeNameError, ""},
		{dnsblName(t, "127.0.0.2", "a.test"), "udp", dns.TypeA, dns.RcodeSuccess, "127.0.0.2"},
		{dnsblName(t, "127.0.0.1", "a.test"), "udp", dns.TypeA, dns.RcodeNameError, ""},
		{dnsblName(t, "198.18.0.5", "a.test"), "udp", dns.TypeAAAA, dns.RcodeSuccess, ""}, // NODATA
		{dnsblName(t, "203.0.113.9", "B.Test"), "udp", dns.TypeA, dns.RcodeSuccess, "127.0.0.4"},
		{dnsblName(t, "198.18.0.5", "b.test"), "udp", dns.TypeA, dns.RcodeNameError, ""},
		{"x.y.a.test.", "udp", dns.TypeA, dns.RcodeNameError, ""},
		{"1.2.3.04.a.test.", "udp", dns.TypeA, dns.RcodeNameError, ""},
		{dnsblName(t, "198.18.0.5", "f.test"), "udp", dns.TypeA, dns.RcodeServerFailure, ""},
		{"5.0.18.198.example.org.", "udp", dns.TypeA, dns.RcodeRefused, ""},
	} {
		r := query(t, addr, c.net, c.name, c.qtype)
		if r.Rcode != c.rcode {
			t.Errorf("%s %s: rcode %s, want %s", c.name, dns.TypeToString[c.qtype], dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
			continue
		}
		var got string
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				got = a.A.String()
				if a.Hdr.Ttl != 300 {
					t.Errorf("%s: TTL %d, want 300", c.name, a.Hdr.Ttl)
				}
			}
		}
		if got != c.a {
			t.Errorf("%s %s: A %q, want %q", c.name, dns.TypeToString[c.qtype], got, c.a)
		}
		// Negative answers carry the SOA so resolvers can cache them.
		if (c.rcode == dns.RcodeNameError || (c.rcode == dns.RcodeSuccess && c.a == "")) &&
			(len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA || r.Ns[0].(*dns.SOA).Minttl != 300) {
			t.Errorf("%s: authority %v, want the zone SOA with minimum 300", c.name, r.Ns)
		}
	}

	txt := query(t, addr, "udp", dnsblName(t, "198.18.0.5", "a.test"), dns.TypeTXT)
	if len(txt.Answer) != 1 || !strings.Contains(txt.Answer[0].(*dns.TXT).Txt[0], "198.18.0.5") {
		t.Errorf("TXT answer %v, want one naming the address", txt.Answer)
	}
	edns := new(dns.Msg).SetQuestion(dnsblName(t, "198.18.0.5", "a.test"), dns.TypeA).SetEdns0(1232, false)
	if r, _, err := (&dns.Client{Timeout: 10 * time.Second}).Exchange(edns, addr); err != nil || r.IsEdns0() == nil || len(r.Answer) != 1 {
		t.Errorf("EDNS query: %v, answer %v", err, r)
	}
	soa := query(t, addr, "udp", "a.test.", dns.TypeSOA)
	if len(soa.Answer) != 1 || soa.Answer[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("apex SOA answer %v", soa.Answer)
	}
}

func TestDNSCountsEveryQuery(t *testing.T) {
	b, addr := startDNS(t, testZone(t, "a.test"), testZone(t, "b.test"))
	for i := range 7 {
		ip := "198.19.0." + string(rune('1'+i))
		query(t, addr, "udp", dnsblName(t, ip, "a.test"), dns.TypeA)
	}
	for range 3 {
		query(t, addr, "tcp", dnsblName(t, "198.18.1.1", "b.test"), dns.TypeA)
	}
	query(t, addr, "udp", dnsblName(t, "198.18.1.1", "b.test"), dns.TypeTXT)
	query(t, addr, "udp", "elsewhere.example.", dns.TypeA)

	want := dnsStats{Queries: 12, Other: 1, Zones: map[string]zoneStats{
		"a.test": {Queries: 7, A: 7, NXDomain: 7},
		"b.test": {Queries: 4, A: 3, TXT: 1, Listed: 4},
	}}
	if got := b.stats(false); !equalStats(got, want) {
		t.Errorf("stats %+v, want %+v", got, want)
	}

	// The HTTP endpoint returns the same counts and resets on request.
	rec := httptest.NewRecorder()
	b.statsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/stats?reset=1", nil))
	var got dnsStats
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("/stats: %v in %q", err, rec.Body.String())
	}
	if !equalStats(got, want) {
		t.Errorf("/stats %+v, want %+v", got, want)
	}
	if after := b.stats(false); after.Queries != 0 || after.Zones["b.test"].Queries != 0 {
		t.Errorf("after reset: %+v, want zeros", after)
	}
	var text strings.Builder
	want.writeText(&text)
	if !strings.Contains(text.String(), "dns queries 12") || !strings.Contains(text.String(), "b.test") {
		t.Errorf("text stats %q", text.String())
	}
}

func equalStats(a, b dnsStats) bool {
	if a.Queries != b.Queries || a.Other != b.Other || len(a.Zones) != len(b.Zones) {
		return false
	}
	for k, v := range a.Zones {
		if b.Zones[k] != v {
			return false
		}
	}
	return true
}

// A silent list (loss=1) counts the query and never answers.
func TestDNSSilentZone(t *testing.T) {
	silent := testZone(t, "s.test")
	silent.Loss = 1
	b, addr := startDNS(t, silent)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q, _ := new(dns.Msg).SetQuestion(dnsblName(t, "198.18.0.5", "s.test"), dns.TypeA).Pack()
	if _, err := conn.Write(q); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the dropped query to be counted", func() bool { return b.stats(false).Zones["s.test"].Dropped == 1 })
	// The server has already decided not to answer; a short read proves
	// nothing was sent.
	_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 512)); err == nil {
		t.Errorf("silent zone answered %d bytes", n)
	}
}

// Shutdown must not wait for delayed answers.
func TestDNSShutdownCutsDelayedAnswers(t *testing.T) {
	slow := testZone(t, "slow.test")
	slow.Delay = time.Hour
	b, err := newDNSBench([]zoneConfig{slow}, 1)
	if err != nil {
		t.Fatal(err)
	}
	addr, cancel, done := runDNS(t, b)
	go func() {
		c := &dns.Client{Timeout: time.Hour}
		_, _, _ = c.Exchange(new(dns.Msg).SetQuestion(dnsblName(t, "198.18.0.5", "slow.test"), dns.TypeA), addr)
	}()
	testutil.WaitFor(t, "the slow query to arrive", func() bool { return b.stats(false).Queries == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after cancel while an answer was delayed")
	}
}

func TestParseReverse(t *testing.T) {
	for _, ip := range []string{"0.0.0.0", "198.18.255.1", "255.255.255.255", "2001:2:0:1::5", "::1", "ffff:ffff::abcd"} {
		name := dnsblName(t, ip, "z.test")
		got, ok := parseReverse(strings.TrimSuffix(name, ".z.test."))
		if !ok || got != netip.MustParseAddr(ip) {
			t.Errorf("parseReverse(%s) = %v, %v; want %s", name, got, ok, ip)
		}
	}
	for _, bad := range []string{"1.2.3", "1.2.3.256", "a.b.c.d", "01.2.3.4", strings.Repeat("0.", 31) + "g", strings.Repeat("0.", 31) + "10"} {
		if got, ok := parseReverse(bad); ok {
			t.Errorf("parseReverse(%q) = %v, want failure", bad, got)
		}
	}
}

func TestParseZoneOverride(t *testing.T) {
	base := testZone(t, "x.test")
	z, err := parseZoneOverride("D.Test delay=50ms loss=0.5 answer=127.0.0.3 listed=192.0.2.0/24,2001:db8::/32 rcode=REFUSED ttl=60 negttl=30", base)
	if err != nil {
		t.Fatal(err)
	}
	if z.Name != "d.test." || z.Delay != 50*time.Millisecond || z.Loss != 0.5 || z.Answer.String() != "127.0.0.3" ||
		len(z.Listed) != 2 || z.Rcode != dns.RcodeRefused || z.TTL != 60 || z.NegTTL != 30 {
		t.Errorf("parsed %+v", z)
	}
	if z, _ := parseZoneOverride("n.test listed=none", base); len(z.Listed) != 0 {
		t.Errorf("listed=none kept %v", z.Listed)
	}
	for in, want := range map[string]string{
		"":                       "empty",
		"a.test delay":           "not key=value",
		"a.test delay=-1s":       "delay=-1s",
		"a.test loss=2":          "loss=2",
		"a.test answer=::1":      "answer=::1",
		"a.test listed=10.0.0.0": "listed=10.0.0.0",
		"a.test rcode=BOGUS":     "rcode=BOGUS",
		"a.test colour=red":      "unknown key",
		"delay=5ms":              "not a zone name",
	} {
		if _, err := parseZoneOverride(in, base); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseZoneOverride(%q): error %v, want it to mention %q", in, err, want)
		}
	}
}
