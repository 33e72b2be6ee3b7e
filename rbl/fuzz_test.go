package rbl

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// probeCodes are answers worth comparing two parses on.
var probeCodes = []uint32{
	0x7f000000, 0x7f000001, 0x7f000002, 0x7f000003, 0x7f000004, 0x7f00000a, 0x7f00000b, 0x7f00000c,
	0x7f000102, 0x7f00ff03, 0x7f0a0a0a, 0x7fffff00, 0x0a000001, 0xc0000201, 0xffffffff, 0,
}

func FuzzParseSite(f *testing.F) {
	for _, s := range []string{
		"zen.spamhaus.org", "zen.spamhaus.org=127.0.0.[2..11]*3", "list.dnswl.org=127.0.[0..255].[1..3]*-2",
		"bl.example=127.0.0.[2;4;10..11]", "b.example.=127.0.0.2*0", "x=[0..255].[0..255].[0..255].[0..255]",
		"zen=127.0.0.[2..1x]", "zen*", "=", "a..b", "zen=127.0.0.[[2]]", "zen=127.0.0.0/24",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		l, err := ParseSite(entry)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Input != entry || !strings.Contains(err.Error(), strconv.Quote(entry)) {
				t.Fatalf("ParseSite(%q): error %v does not name the entry", entry, err)
			}
			return
		}
		if l.Zone == "" || strings.HasSuffix(l.Zone, ".") || l.Weight > maxWeight || l.Weight < -maxWeight || len(l.Filters) > 1 {
			t.Fatalf("ParseSite(%q) = %#v", entry, l)
		}
		// Written back in canonical form, the entry parses to the same
		// list.
		canon := l.Zone
		if len(l.Filters) == 1 {
			canon += "=" + l.Filters[0].String()
		}
		canon += "*" + strconv.Itoa(l.Weight)
		l2, err := ParseSite(canon)
		if err != nil {
			t.Fatalf("ParseSite(%q) = %#v, but its canonical form %q fails: %v", entry, l, canon, err)
		}
		if l2.Zone != l.Zone || l2.Weight != l.Weight || len(l2.Filters) != len(l.Filters) {
			t.Fatalf("canonical %q parses to %#v, want %#v", canon, l2, l)
		}
		for _, c := range probeCodes {
			a, wa := l.classify(codeSet(appendCode(nil, c)))
			b, wb := l2.classify(codeSet(appendCode(nil, c)))
			if a != b || wa != wb {
				t.Fatalf("%q and %q disagree on %s", entry, canon, uint32ToAddr(c))
			}
		}
	})
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"127.0.0.[2..11]", "127.0.0.4*2", "127.0.0.0/24", "127.0.0.0/24*-5", "&0.0.0.4", "&0.0.0.6*3",
		"127.0.[0..255].[1;3]", "0.0.0.0/0", "127.0.0.1/24", "&0.0.0.0", "*", "[1..2]",
	} {
		f.Add(s, uint32(0x7f000002))
	}
	f.Fuzz(func(t *testing.T, s string, code uint32) {
		flt, err := ParseFilter(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Input != s || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("ParseFilter(%q): error %v does not name the filter", s, err)
			}
			return
		}
		if flt.matcher.kind == filterInvalid {
			t.Fatalf("ParseFilter(%q) returned an invalid filter", s)
		}
		again, err := ParseFilter(flt.String())
		if err != nil {
			t.Fatalf("ParseFilter(%q).String() = %q does not parse: %v", s, flt.String(), err)
		}
		if again.Weight != flt.Weight || again.HasWeight != flt.HasWeight {
			t.Fatalf("%q: weight changed on reparse", s)
		}
		for _, c := range append(probeCodes, code) {
			if flt.matcher.match(c) != again.matcher.match(c) {
				t.Fatalf("%q and %q disagree on %s", s, flt.String(), uint32ToAddr(c))
			}
		}
		if flt.matchAddr(netip.MustParseAddr("::1")) {
			t.Fatalf("%q matches an IPv6 code", s)
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte{127, 0, 0, 2}, int8(3), int8(-2))
	f.Add([]byte{127, 0, 0, 2, 127, 255, 255, 254}, int8(1), int8(1))
	f.Add([]byte{127, 0, 0, 4, 10, 0, 0, 1}, int8(1), int8(0))
	f.Add([]byte{127, 0, 1, 255}, int8(-5), int8(2))
	f.Add([]byte{}, int8(1), int8(1))
	lists := func(w1, w2 int) []List {
		return []List{
			{Zone: "any.test", Weight: w1},
			{Zone: "zen.test", Weight: w1, Filters: []Filter{mustFilter("127.0.0.[2..11]")}},
			{Zone: "mix.test", Weight: w1, Filters: []Filter{
				mustFilter("127.0.0.2*" + strconv.Itoa(w2)), mustFilter("&0.0.0.4"), mustFilter("127.0.0.0/30*" + strconv.Itoa(-w2)),
			}},
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, w1, w2 int8) {
		raw = raw[:len(raw)/4*4]
		if len(raw) > 64 {
			raw = raw[:64]
		}
		cs := codeSet(raw)
		bogus, refused := false, false
		for i := range cs.len() {
			c := cs.at(i)
			bogus = bogus || !inLoopback(c)
			refused = refused || isErrorCode(c)
		}
		// The same codes as they arrive from DNS and come back from the
		// cache.
		m := new(dns.Msg)
		m.SetQuestion("x.test.", dns.TypeA)
		for i := range cs.len() {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "x.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IP(uint32ToAddr(cs.at(i)).AsSlice())})
		}
		a := newAnswer(m, nil)
		if string(a.codes) != string(cs) {
			t.Fatalf("answer codes %x, want %x", a.codes, cs)
		}
		for _, l := range lists(int(w1), int(w2)) {
			out, w := l.classify(cs)
			lo, hi := l.weightRange()
			switch {
			case cs.len() == 0 && out != NotListed:
				t.Fatalf("%s: no records gave %s", l.Zone, out)
			case bogus && out != Bogus:
				t.Fatalf("%s: %x outside 127/8 gave %s", l.Zone, raw, out)
			case !bogus && refused && out != Refused:
				t.Fatalf("%s: error code %x gave %s", l.Zone, raw, out)
			case out != Listed && out != NotListed && out != Bogus && out != Refused:
				t.Fatalf("%s: outcome %s", l.Zone, out)
			case out != Listed && w != 0:
				t.Fatalf("%s: %s with weight %d", l.Zone, out, w)
			case w < lo || w > hi:
				t.Fatalf("%s: weight %d outside %d..%d", l.Zone, w, lo, hi)
			}
			if r := resultOf(&l, &a); r.Outcome != out || r.Weight != w {
				t.Fatalf("%s: result %s %d, classify %s %d", l.Zone, r.Outcome, r.Weight, out, w)
			}
			addrs := cs.addrs()
			if out2, w2 := l.classifyAddrs(addrs); out2 != out || w2 != w {
				t.Fatalf("%s: classifyAddrs(%v) = %s %d, classify = %s %d", l.Zone, addrs, out2, w2, out, w)
			}
		}
	})
}

func mustFilter(s string) Filter {
	f, err := ParseFilter(s)
	if err != nil {
		panic(err)
	}
	return f
}
