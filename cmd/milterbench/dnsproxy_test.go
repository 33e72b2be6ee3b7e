package main

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestDNSForwardRelaysDelaysAndCounts(t *testing.T) {
	upstream, upAddr := startDNS(t, testZone(t, "a.test"))
	proxyZone := testZone(t, "a.test")
	proxyZone.Delay = 30 * time.Millisecond
	proxy, err := newDNSBench([]zoneConfig{proxyZone}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if proxy.upstream, err = newDNSUpstream(upAddr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	addr := serveDNS(t, proxy)

	for _, c := range []struct {
		ip, net string
		qtype   uint16
		rcode   int
		answers int
	}{
		{"198.18.0.5", "udp", dns.TypeA, dns.RcodeSuccess, 1},
		{"198.18.0.5", "tcp", dns.TypeTXT, dns.RcodeSuccess, 1},
		{"198.19.0.5", "udp", dns.TypeA, dns.RcodeNameError, 0},
	} {
		start := time.Now()
		r := query(t, addr, c.net, dnsblName(t, c.ip, "a.test"), c.qtype)
		if took := time.Since(start); took < proxyZone.Delay {
			t.Errorf("%s %s answered after %v, before the %v delay", c.ip, dns.TypeToString[c.qtype], took, proxyZone.Delay)
		}
		if r.Rcode != c.rcode || len(r.Answer) != c.answers {
			t.Errorf("%s %s over %s: rcode %d, %d answers; want %d, %d", c.ip, dns.TypeToString[c.qtype], c.net, r.Rcode, len(r.Answer), c.rcode, c.answers)
		}
	}
	// Both saw every query: the proxy counts what it relays, the
	// upstream what reached it.
	for name, s := range map[string]dnsStats{"proxy": proxy.stats(false), "upstream": upstream.stats(false)} {
		z := s.Zones["a.test"]
		if z.Queries != 3 || z.A != 2 || z.TXT != 1 || z.Listed != 2 || z.NXDomain != 1 {
			t.Errorf("%s counters %+v, want 3 queries (2 A, 1 TXT), 2 listed, 1 NXDOMAIN", name, z)
		}
	}
	if _, err := newDNSUpstream("nope", time.Second); err == nil {
		t.Error("upstream without a port accepted")
	}
}
