package rbl

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzDNSAnswer feeds arbitrary DNS replies (any bytes that unpack as a
// message) to the answer classification: an answer is a listing only when
// it is NOERROR with A records all inside 127.0.0.0/8 and none an operator
// error code; a listing survives the cache unchanged; TXT text is always
// short and printable, whatever the list operator sent.
func FuzzDNSAnswer(f *testing.F) {
	seed := func(rcode int, rrs ...dns.RR) {
		m := new(dns.Msg)
		m.SetQuestion("2.0.0.127.bl.test.", dns.TypeA)
		m.Rcode = rcode
		m.Answer = rrs
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: "2.0.0.127.bl.test.", Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	a := func(s string) dns.RR { return &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(s)} }
	seed(dns.RcodeNameError)
	seed(dns.RcodeSuccess, a("127.0.0.2"))
	seed(dns.RcodeSuccess, a("127.0.0.2"), a("127.255.255.254"))
	seed(dns.RcodeSuccess, a("127.0.0.4"), a("10.0.0.1"))
	seed(dns.RcodeServerFailure, a("127.0.0.2"))
	seed(dns.RcodeSuccess, a("127.0.0.2"), &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{"see\r\nX-Injected: 1\x00", "\\013\\010more"}})
	seed(dns.RcodeSuccess, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.ParseIP("::1")}, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: "x.test."})

	lists := []List{
		{Zone: "any.test", Weight: 1},
		{Zone: "zen.test", Weight: 2, Filters: []Filter{mustFilter("127.0.0.[2..11]")}},
		{Zone: "mask.test", Weight: 1, Filters: []Filter{mustFilter("&0.0.0.4"), mustFilter("127.0.0.0/24*3")}},
	}
	cache, err := NewCache(CacheConfig{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	client := netip.MustParseAddr("192.0.2.1")
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil {
			return // the resolver reports these as errors
		}
		var codes []netip.Addr
		for _, rr := range m.Answer {
			if rec, ok := rr.(*dns.A); ok && rec.A.To4() != nil {
				codes = append(codes, netip.AddrFrom4([4]byte(rec.A.To4())))
			}
		}
		clean := m.Rcode == dns.RcodeSuccess && len(codes) > 0
		for _, c := range codes {
			v := addrToUint32(c)
			clean = clean && inLoopback(v) && !isErrorCode(v)
		}
		ans := newAnswer(m, nil)
		cache.purge()
		cache.put(1, client, &ans)
		cached, inCache := cache.get(1, client, cache.clock())
		for i := range lists {
			l := &lists[i]
			r := resultOf(l, &ans)
			if r.Outcome == Listed && !clean {
				t.Fatalf("%s: %v (rcode %s) counted as a listing", l.Zone, codes, dns.RcodeToString[m.Rcode])
			}
			if r.Outcome != Listed && r.Weight != 0 {
				t.Fatalf("%s: %s with weight %d", l.Zone, r.Outcome, r.Weight)
			}
			if inCache {
				ca := cached.answer()
				if rc := resultOf(l, &ca); rc.Outcome != r.Outcome || rc.Weight != r.Weight {
					t.Fatalf("%s: %s/%d fresh, %s/%d from the cache", l.Zone, r.Outcome, r.Weight, rc.Outcome, rc.Weight)
				}
			}
		}
		txt, _ := txtFromMsg(m)
		if len(txt) > maxTXTLen {
			t.Fatalf("TXT of %d bytes", len(txt))
		}
		for i := 0; i < len(txt); i++ {
			if txt[i] < 0x20 || txt[i] > 0x7e {
				t.Fatalf("TXT %q has byte %#x", txt, txt[i])
			}
		}
	})
}
