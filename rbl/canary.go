package rbl

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// Canaries are the addresses a probe round asks besides the RFC 5782 test
// points, to catch a list that lists the world without listing 127.0.0.1.
//
// One canary is too weak a proof: lab setups list the documentation
// ranges, bogon lists list every reserved range, private lists list
// private space. So every round asks one fresh random address in each of
// many unrelated reserved ranges of each address family, plus one in
// public unicast space, and only a family whose canaries are all listed
// proves that the list lists the world. The public canary is what tells a
// complete bogon list (every reserved range, rightly) from a list that
// lists everything: no bogon list lists public space, and no list that
// lists public space lists every reserved range besides.

// canaryRange is where one canary is drawn from.
type canaryRange struct {
	// prefix holds the canary; for public ranges, one of prefixes.
	prefix netip.Prefix
	// what says what the range is, for the evidence.
	what string
	// public ranges are drawn from several prefixes (publicV4/publicV6).
	public []netip.Prefix
}

// The reserved ranges, each unrelated to the others: no single legitimate
// listing covers more than one of them, bar a bogon list.
var (
	canaryRangesV4 = []canaryRange{
		{prefix: netip.MustParsePrefix("192.0.2.0/24"), what: "TEST-NET-1, RFC 5737"},
		{prefix: netip.MustParsePrefix("198.51.100.0/24"), what: "TEST-NET-2, RFC 5737"},
		{prefix: netip.MustParsePrefix("203.0.113.0/24"), what: "TEST-NET-3, RFC 5737"},
		{prefix: netip.MustParsePrefix("198.18.0.0/15"), what: "benchmarking, RFC 2544"},
		{prefix: netip.MustParsePrefix("100.64.0.0/10"), what: "shared address space, RFC 6598"},
		{prefix: netip.MustParsePrefix("233.252.0.0/24"), what: "MCAST-TEST-NET, RFC 5771"},
		{prefix: netip.MustParsePrefix("240.0.0.0/5"), what: "reserved, RFC 1112"},
		{prefix: netip.MustParsePrefix("10.0.0.0/8"), what: "private, RFC 1918"},
		{public: publicV4(), what: "public unicast"},
	}
	canaryRangesV6 = []canaryRange{
		{prefix: netip.MustParsePrefix("2001:db8::/32"), what: "documentation, RFC 3849"},
		{prefix: netip.MustParsePrefix("3fff::/20"), what: "documentation, RFC 9637"},
		{prefix: netip.MustParsePrefix("100::/64"), what: "discard-only, RFC 6666"},
		{prefix: netip.MustParsePrefix("2001:2::/48"), what: "benchmarking, RFC 5180"},
		{prefix: netip.MustParsePrefix("fc00::/7"), what: "unique local, RFC 4193"},
		// The five RIRs' big IPv6 blocks: all public unicast.
		{public: []netip.Prefix{
			netip.MustParsePrefix("2400::/12"), netip.MustParsePrefix("2600::/12"), netip.MustParsePrefix("2800::/12"),
			netip.MustParsePrefix("2a00::/12"), netip.MustParsePrefix("2c00::/12"),
		}, what: "public unicast"},
	}
)

// publicV4 is every IPv4 /8 that holds no special-purpose block (IANA's
// IPv4 Special-Purpose Address Registry) and is not multicast or
// reserved: anything drawn from them is public unicast.
func publicV4() []netip.Prefix {
	special := map[byte]bool{0: true, 10: true, 100: true, 127: true, 169: true, 172: true, 192: true, 198: true, 203: true}
	var out []netip.Prefix
	for b := 1; b < 224; b++ {
		if !special[byte(b)] {
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(b)}), 8))
		}
	}
	return out
}

// canary is one canary address of a round.
type canary struct {
	addr netip.Addr
	// what is its range, e.g. "TEST-NET-1, RFC 5737".
	what string
}

// drawCanaries picks this round's canaries: one random address in each
// range of the families asked. It uses only rnd's raw numbers, never a
// rejection loop, so an injected source that always draws the same
// number still ends.
func drawCanaries(rnd *rand.Rand, v4, v6 bool) []canary {
	var out []canary
	draw := func(ranges []canaryRange) {
		for _, r := range ranges {
			p := r.prefix
			if r.public != nil {
				p = r.public[rnd.Uint64()%uint64(len(r.public))]
			}
			out = append(out, canary{addr: randomIn(rnd, p), what: r.what})
		}
	}
	if v4 {
		draw(canaryRangesV4)
	}
	if v6 {
		draw(canaryRangesV6)
	}
	return out
}

// randomIn returns an address of p with its host bits drawn from rnd.
func randomIn(rnd *rand.Rand, p netip.Prefix) netip.Addr {
	p = p.Masked()
	a := p.Addr().AsSlice()
	random := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, rnd.Uint64()), rnd.Uint64())
	for i := range a {
		// inPrefix is how many of byte i's bits belong to the prefix.
		switch inPrefix := p.Bits() - 8*i; {
		case inPrefix >= 8:
		case inPrefix <= 0:
			a[i] = random[i]
		default:
			keep := byte(0xff) << (8 - inPrefix)
			a[i] = a[i]&keep | random[i]&^keep
		}
	}
	addr, _ := netip.AddrFromSlice(a)
	return addr
}

// canaryFinding is what a round's canaries show.
type canaryFinding struct {
	// world is set when every canary of a family answered listed: the
	// list lists the world. It names that family's canaries.
	world string
	// some names the canaries listed when only some were: fine for bogon
	// and lab lists, a warning only.
	some string
	// listed, asked, unanswered and notSent count the canaries;
	// listedAddrs are the listed ones.
	listed, asked, unanswered, notSent int
	listedAddrs                        []string
	// first is the first listed canary, for the answer shown.
	first *probeResult
}

// judgeCanaries looks at a round's canary answers. A family counts as
// listing the world only when each of its canaries answered and each was
// listed; a failed canary leaves the family unproven.
func judgeCanaries(results []probeResult) canaryFinding {
	var f canaryFinding
	type family struct {
		asked, listed int
		addrs         []string
	}
	var fams [2]family
	var some []string
	for i := range results {
		r := &results[i]
		if !r.canary {
			continue
		}
		fam := &fams[0]
		if r.ip.Is6() {
			fam = &fams[1]
		}
		fam.asked++
		f.asked++
		fam.addrs = append(fam.addrs, r.addr)
		switch {
		case r.outcome == Listed:
			fam.listed++
			f.listed++
			f.listedAddrs = append(f.listedAddrs, r.addr)
			some = append(some, fmt.Sprintf("%s (%s)", r.addr, r.what))
			if f.first == nil {
				f.first = r
			}
		case r.outcome.Failed():
			f.unanswered++
		case r.outcome == OverBudget:
			f.notSent++
		}
	}
	for i, name := range []string{"IPv4", "IPv6"} {
		fam := fams[i]
		if fam.asked > 0 && fam.listed == fam.asked {
			f.world = fmt.Sprintf("every %s canary is listed (%s), and no legitimate list covers all of these unrelated ranges", name, strings.Join(fam.addrs, ", "))
			return f
		}
	}
	if len(some) > 0 {
		f.some = fmt.Sprintf("%d of %d canaries listed: %s; normal for a bogon list or a lab list with test data in reserved ranges, so still counted (a list that lists the world lists 127.0.0.1 or every canary of a family)", f.listed, f.asked, strings.Join(some, ", "))
	}
	return f
}
