package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// zoneConfig is one generated DNSBL zone.
type zoneConfig struct {
	Name   string        // fully qualified, lower case: "a.test."
	Delay  time.Duration // before every answer
	Loss   float64       // share of queries left unanswered (1 = silent list)
	Answer netip.Addr    // A record of a listed address
	Listed []netip.Prefix
	Rcode  int // non-zero: answer every query with this rcode
	TTL    uint32
	NegTTL uint32 // SOA minimum, the negative-caching TTL
}

// zoneCounters counts queries per zone; see zoneStats.
type zoneCounters struct {
	queries, a, txt, listed, nxdomain, dropped atomic.Uint64
}

// zoneStats is a snapshot of zoneCounters.
type zoneStats struct {
	Queries  uint64 `json:"queries"`
	A        uint64 `json:"a"`
	TXT      uint64 `json:"txt"`
	Listed   uint64 `json:"listed"`
	NXDomain uint64 `json:"nxdomain"`
	Dropped  uint64 `json:"dropped"`
}

// dnsStats is what the server reports: every query that reached it, so
// that cache and coalescing claims ("1000 sessions, 30 queries") can be
// checked from outside the daemon.
type dnsStats struct {
	Queries uint64               `json:"queries"`
	Other   uint64               `json:"outside_zones"`
	Zones   map[string]zoneStats `json:"zones"`
}

// dnsBench answers DNSBL queries for generated zones.
type dnsBench struct {
	zones    []zoneConfig // longest name first, so the most specific zone matches
	counters []zoneCounters
	total    atomic.Uint64
	other    atomic.Uint64
	done     chan struct{} // closed at shutdown: delayed answers give up
	// upstream, if set, answers every query in the zones instead of the
	// generated data: the server is then a counting, delaying proxy in
	// front of a real DNSBL server (see relay).
	upstream *dnsUpstream

	rngMu sync.Mutex
	rng   *rand.Rand
}

func newDNSBench(zones []zoneConfig, seed uint64) (*dnsBench, error) {
	if len(zones) == 0 {
		return nil, errors.New("-zones: give at least one zone")
	}
	zs := slices.Clone(zones)
	slices.SortStableFunc(zs, func(a, b zoneConfig) int { return len(b.Name) - len(a.Name) })
	for i := 1; i < len(zs); i++ {
		if zs[i].Name == zs[i-1].Name {
			return nil, fmt.Errorf("zone %s given twice", strings.TrimSuffix(zs[i].Name, "."))
		}
	}
	return &dnsBench{
		zones:    zs,
		counters: make([]zoneCounters, len(zs)),
		done:     make(chan struct{}),
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}, nil
}

func (b *dnsBench) lose(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	return b.rng.Float64() < p
}

// zoneOf finds the zone holding name and the labels left of it.
func (b *dnsBench) zoneOf(name string) (int, string, bool) {
	for i, z := range b.zones {
		if name == z.Name {
			return i, "", true
		}
		if strings.HasSuffix(name, "."+z.Name) {
			return i, name[:len(name)-len(z.Name)-1], true
		}
	}
	return 0, "", false
}

// ServeDNS implements dns.Handler.
func (b *dnsBench) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	b.total.Add(1)
	m := new(dns.Msg)
	if len(r.Question) != 1 {
		m.SetRcodeFormatError(r)
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	zi, rel, ok := b.zoneOf(name)
	if !ok {
		b.other.Add(1)
		m.SetRcode(r, dns.RcodeRefused)
		_ = w.WriteMsg(m)
		return
	}
	z, c := &b.zones[zi], &b.counters[zi]
	c.queries.Add(1)
	switch q.Qtype {
	case dns.TypeA:
		c.a.Add(1)
	case dns.TypeTXT:
		c.txt.Add(1)
	}
	if b.lose(z.Loss) {
		c.dropped.Add(1)
		return
	}
	if z.Delay > 0 {
		t := time.NewTimer(z.Delay)
		select {
		case <-t.C:
		case <-b.done:
			t.Stop()
			return
		}
	}
	if b.upstream != nil {
		b.upstream.relay(w, r, c)
		return
	}
	m.SetReply(r)
	m.Authoritative = true
	if r.IsEdns0() != nil {
		m.SetEdns0(dns.DefaultMsgSize, false) // a resolver that sent EDNS expects it back
	}
	if z.Rcode != 0 {
		m.Rcode = z.Rcode
		_ = w.WriteMsg(m)
		return
	}
	soa := z.soa()
	switch {
	case rel == "":
		switch q.Qtype {
		case dns.TypeSOA:
			m.Answer = append(m.Answer, soa)
		case dns.TypeNS:
			m.Answer = append(m.Answer, &dns.NS{Hdr: hdr(z.Name, dns.TypeNS, z.TTL), Ns: "ns." + z.Name})
		default:
			m.Ns = append(m.Ns, soa)
		}
	default:
		addr, ok := parseReverse(rel)
		if !ok || !isListed(addr, z.Listed) {
			c.nxdomain.Add(1)
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, soa)
			break
		}
		c.listed.Add(1)
		switch q.Qtype {
		case dns.TypeA, dns.TypeANY:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(q.Name, dns.TypeA, z.TTL), A: z.Answer.AsSlice()})
		case dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(q.Name, dns.TypeTXT, z.TTL),
				Txt: []string{addr.String() + " listed by milterbench test zone " + strings.TrimSuffix(z.Name, ".")}})
		default:
			m.Ns = append(m.Ns, soa) // NODATA
		}
	}
	_ = w.WriteMsg(m)
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func (z *zoneConfig) soa() *dns.SOA {
	return &dns.SOA{Hdr: hdr(z.Name, dns.TypeSOA, z.NegTTL), Ns: "ns." + z.Name, Mbox: "hostmaster." + z.Name,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: z.NegTTL}
}

// parseReverse reads the labels left of a DNSBL zone as an address: four
// decimal labels for IPv4, 32 nibbles for IPv6, least significant first
// (RFC 5782 section 2.1 and 2.4).
func parseReverse(rel string) (netip.Addr, bool) {
	labels := strings.Split(rel, ".")
	switch len(labels) {
	case 4:
		var b [4]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	case 32:
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			n, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			pos := 31 - i // nibble position, most significant first
			b[pos/2] |= byte(n) << (4 * (1 - pos%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// stats snapshots the counters; with reset it also zeroes them, so a
// script can measure one phase of a run.
func (b *dnsBench) stats(reset bool) dnsStats {
	load := func(v *atomic.Uint64) uint64 {
		if reset {
			return v.Swap(0)
		}
		return v.Load()
	}
	s := dnsStats{Zones: map[string]zoneStats{}}
	for i := range b.zones {
		c := &b.counters[i]
		s.Zones[strings.TrimSuffix(b.zones[i].Name, ".")] = zoneStats{
			Queries: load(&c.queries), A: load(&c.a), TXT: load(&c.txt),
			Listed: load(&c.listed), NXDomain: load(&c.nxdomain), Dropped: load(&c.dropped),
		}
	}
	s.Queries, s.Other = load(&b.total), load(&b.other)
	return s
}

func (s dnsStats) writeText(w io.Writer) {
	fmt.Fprintf(w, "dns queries %d (outside zones %d)\n", s.Queries, s.Other)
	names := make([]string, 0, len(s.Zones))
	for n := range s.Zones {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		z := s.Zones[n]
		fmt.Fprintf(w, "  %-20s queries %d (A %d, TXT %d): listed %d, nxdomain %d, dropped %d\n",
			n, z.Queries, z.A, z.TXT, z.Listed, z.NXDomain, z.Dropped)
	}
}

// statsHandler serves GET /stats as JSON; /stats?reset=1 also zeroes the
// counters after reading them.
func (b *dnsBench) statsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		reset := r.URL.Query().Get("reset") != ""
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(b.stats(reset))
	})
	return mux
}

// listenDNS opens UDP and TCP on the same address. With port 0 it retries
// until the port the kernel picked for UDP is also free for TCP.
func listenDNS(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-listen %q: want HOST:PORT like 127.0.0.1:5353", addr)
	}
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("-listen %s: %w", addr, err)
		}
		_, got, _ := net.SplitHostPort(pc.LocalAddr().String())
		ln, err := net.Listen("tcp", net.JoinHostPort(host, got))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || attempt >= 20 {
			return nil, nil, fmt.Errorf("-listen %s (tcp): %w", addr, err)
		}
	}
}

// serve answers on pc and ln until ctx ends.
func (b *dnsBench) serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	udp := &dns.Server{PacketConn: pc, Handler: b}
	tcp := &dns.Server{Listener: ln, Handler: b}
	errc := make(chan error, 2)
	go func() { errc <- udp.ActivateAndServe() }()
	go func() { errc <- tcp.ActivateAndServe() }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	close(b.done)
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = udp.ShutdownContext(shut)
	_ = tcp.ShutdownContext(shut)
	return err
}

// parseZoneOverride reads a -zone flag: "NAME key=value ...", keys delay,
// loss, answer, listed (CIDRs, or "none"), rcode (servfail, refused, ...),
// ttl, negttl. Settings not given keep the command-wide defaults in base.
func parseZoneOverride(s string, base zoneConfig) (zoneConfig, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return zoneConfig{}, errors.New("-zone: empty; want \"NAME key=value ...\"")
	}
	z := base
	z.Name = dns.Fqdn(strings.ToLower(fields[0]))
	if _, ok := dns.IsDomainName(z.Name); !ok || strings.Contains(fields[0], "=") {
		return zoneConfig{}, fmt.Errorf("-zone %q: %q is not a zone name", s, fields[0])
	}
	for _, kv := range fields[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return zoneConfig{}, fmt.Errorf("-zone %q: %q is not key=value", s, kv)
		}
		var err error
		switch k {
		case "delay":
			z.Delay, err = time.ParseDuration(v)
			if err == nil && z.Delay < 0 {
				err = errors.New("negative")
			}
		case "loss":
			var f fraction
			f, err = parseFraction("loss", v)
			z.Loss = float64(f) / ppm
		case "answer":
			z.Answer, err = netip.ParseAddr(v)
			if err == nil && !z.Answer.Is4() {
				err = errors.New("want an IPv4 address like 127.0.0.2")
			}
		case "listed":
			z.Listed = nil
			if v != "none" {
				z.Listed, err = parseNets("listed", v)
			}
		case "rcode":
			rc, known := dns.StringToRcode[strings.ToUpper(v)]
			if !known {
				err = errors.New("want an rcode name like SERVFAIL or REFUSED")
			}
			z.Rcode = rc
		case "ttl", "negttl":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 32)
			if k == "ttl" {
				z.TTL = uint32(n)
			} else {
				z.NegTTL = uint32(n)
			}
		default:
			err = errors.New("unknown key (want delay, loss, answer, listed, rcode, ttl or negttl)")
		}
		if err != nil {
			return zoneConfig{}, fmt.Errorf("-zone %q: %s: %v", s, kv, err)
		}
	}
	return z, nil
}
