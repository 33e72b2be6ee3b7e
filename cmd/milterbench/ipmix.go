package main

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// The listed rule shared by "run" and "dns": an address is listed when it
// lies in one of the listed networks. Both sides default to the same
// networks, taken from the ranges reserved for benchmarking (RFC 2544
// 198.18.0.0/15, RFC 5180 2001:2::/48), so that no real host is named and a
// default rblmilter config (which skips private and loopback ranges) still
// looks them up.
const (
	defaultListedNets = "198.18.0.0/16,2001:2:0:1::/64"
	defaultCleanNets  = "198.19.0.0/16,2001:2::/64"
)

// parseNets reads a comma-separated list of CIDRs; flag names the flag so
// that the error says where the bad value came from.
func parseNets(flag, s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a CIDR (like 198.18.0.0/16 or 2001:2::/64)", flag, f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// isListed is the rule the test DNS server answers by. The RFC 5782 test
// points are always listed (127.0.0.2 and ::FFFF:7F00:2), so health checks
// of a DNSBL client pass against the bench server.
func isListed(addr netip.Addr, listed []netip.Prefix) bool {
	return addr == testPoint4 || addr == testPoint6 || inNets(addr, listed)
}

// inNets reports whether ip lies in one of nets.
func inNets(ip netip.Addr, nets []netip.Prefix) bool {
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

var (
	testPoint4 = netip.AddrFrom4([4]byte{127, 0, 0, 2})
	testPoint6 = netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 2})
)

// fraction is an exact proportion in parts per million. Members are spread
// evenly (member i is picked when floor((i+1)f) > floor(i f)), so the first
// n indices contain exactly floor(n f) members whatever n is: a run's mix is
// reproducible and its expected verdicts can be computed, not estimated.
type fraction uint64

const ppm = 1_000_000

// parseFraction accepts 0.25 or 25%.
func parseFraction(flag, s string) (fraction, error) {
	v := strings.TrimSpace(s)
	scale := 1.0
	if strings.HasSuffix(v, "%") {
		v = strings.TrimSuffix(v, "%")
		scale = 100
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f/scale > 1 || f != f {
		return 0, fmt.Errorf("%s %q: want a fraction from 0 to 1 (or 0%% to 100%%)", flag, s)
	}
	return fraction(f/scale*ppm + 0.5), nil
}

func (f fraction) String() string { return strconv.FormatFloat(float64(f)/ppm, 'g', -1, 64) }

// before is how many of the indices 0..i-1 are members.
func (f fraction) before(i uint64) uint64 {
	hi, lo := bits.Mul64(i, uint64(f))
	q, _ := bits.Div64(hi, lo, ppm) // hi < ppm because f <= ppm
	return q
}

// picks reports whether index i is a member.
func (f fraction) picks(i uint64) bool { return f.before(i+1) > f.before(i) }

// mix decides the client IP of every session from its index alone, so
// concurrent workers need no shared generator and every run with the same
// flags sends the same addresses.
type mix struct {
	listed fraction // share of listed addresses
	repeat fraction // share of sessions reusing an address from the pool
	ipv6   fraction // share of IPv6 addresses within each class
	pool   uint64   // distinct addresses in the repeat pool
	// offset shifts every address sequence, so that a second run can
	// send addresses the target has not cached yet.
	offset uint64

	listed4, listed6, clean4, clean6 netip.Prefix
	// poolN counts the pool's members per class; fresh addresses start
	// after them so that fresh and pooled addresses never coincide.
	poolN [4]uint64
}

// addrClass indexes the four address classes.
type addrClass uint8

const (
	clean4 addrClass = iota
	clean6
	listed4
	listed6
)

// pick is one session's client address and why it was chosen.
type pick struct {
	Addr     netip.Addr
	Listed   bool
	Repeated bool
	// Reused is set when the fresh space of the class is exhausted and
	// the address was already sent earlier in the run.
	Reused bool
}

// newMix validates the mix against the networks it draws from: a class
// with a non-zero share needs a network, and no clean network may overlap
// a listed one (a "clean" address would then be listed).
func newMix(listed, repeat, ipv6 fraction, pool uint64, listedNets, cleanNets []netip.Prefix) (*mix, error) {
	m := &mix{listed: listed, repeat: repeat, ipv6: ipv6, pool: pool}
	if repeat > 0 && pool == 0 {
		return nil, fmt.Errorf("-pool 0: a repeat share of %s needs at least one pooled address", repeat)
	}
	if repeat == 0 {
		m.pool = 0
	}
	m.listed4, m.listed6 = firstOfFamily(listedNets)
	m.clean4, m.clean6 = firstOfFamily(cleanNets)
	for _, c := range cleanNets {
		for _, l := range listedNets {
			if c.Overlaps(l) {
				return nil, fmt.Errorf("-clean-net %s overlaps -listed-net %s: clean addresses would be listed", c, l)
			}
		}
	}
	need := func(cond bool, p netip.Prefix, what string) error {
		if cond && !p.IsValid() {
			return fmt.Errorf("the mix needs %s addresses but no such network is given", what)
		}
		return nil
	}
	for _, err := range []error{
		need(listed > 0 && ipv6 < ppm, m.listed4, "listed IPv4 (-listed-net)"),
		need(listed > 0 && ipv6 > 0, m.listed6, "listed IPv6 (-listed-net)"),
		need(listed < ppm && ipv6 < ppm, m.clean4, "clean IPv4 (-clean-net)"),
		need(listed < ppm && ipv6 > 0, m.clean6, "clean IPv6 (-clean-net)"),
	} {
		if err != nil {
			return nil, err
		}
	}
	for k := uint64(0); k < m.pool; k++ {
		class, _ := m.classOf(k)
		m.poolN[class]++
	}
	return m, nil
}

// usesFamily reports whether the mix ever sends an IPv6 (v6) or IPv4
// client address.
func (m *mix) usesFamily(v6 bool) bool {
	if v6 {
		return m.ipv6 > 0
	}
	return m.ipv6 < ppm
}

func firstOfFamily(nets []netip.Prefix) (v4, v6 netip.Prefix) {
	for _, p := range nets {
		if p.Addr().Is4() && !v4.IsValid() {
			v4 = p
		}
		if p.Addr().Is6() && !v6.IsValid() {
			v6 = p
		}
	}
	return v4, v6
}

// classOf places the k-th address of a sequence (pool or fresh) into a
// class and gives its ordinal within that class. The IPv6 share is applied
// inside each class so that listed and IPv6 stay independent.
func (m *mix) classOf(k uint64) (addrClass, uint64) {
	var base addrClass
	var kc uint64
	if m.listed.picks(k) {
		base, kc = listed4, m.listed.before(k)
	} else {
		base, kc = clean4, k-m.listed.before(k)
	}
	if m.ipv6.picks(kc) {
		return base + 1, m.ipv6.before(kc)
	}
	return base, kc - m.ipv6.before(kc)
}

func (m *mix) prefix(c addrClass) netip.Prefix {
	switch c {
	case listed4:
		return m.listed4
	case listed6:
		return m.listed6
	case clean6:
		return m.clean6
	}
	return m.clean4
}

// session gives the client address of session i.
func (m *mix) session(i uint64) pick {
	if m.repeat.picks(i) {
		return m.pooled(m.repeat.before(i) % m.pool)
	}
	class, ord := m.classOf(i - m.repeat.before(i))
	a, wrapped := nthAddr(m.prefix(class), m.offset+m.poolN[class]+ord)
	return pick{Addr: a, Listed: class >= listed4, Reused: wrapped}
}

// pooled gives the p-th address of the repeat pool.
func (m *mix) pooled(p uint64) pick {
	class, ord := m.classOf(p)
	a, _ := nthAddr(m.prefix(class), m.offset+ord)
	return pick{Addr: a, Listed: class >= listed4, Repeated: true}
}

// nthAddr is the ord-th host address of p, skipping the all-zeros and
// all-ones addresses where the network is big enough to have them. wrapped
// reports that ord exceeded the network's size and the address repeats.
func nthAddr(p netip.Prefix, ord uint64) (addr netip.Addr, wrapped bool) {
	hostBits := p.Addr().BitLen() - p.Bits()
	var size uint64 // 0 means 2^64 or more
	if hostBits < 64 {
		size = 1 << hostBits
	}
	host := ord
	switch {
	case size > 2:
		host, wrapped = 1+ord%(size-2), ord >= size-2
	case size != 0:
		host, wrapped = ord%size, ord >= size
	case hostBits == 64:
		host, wrapped = 1+ord%(1<<64-2), ord >= 1<<64-2
	default:
		host = 1 + ord // more than 2^64 hosts: cannot wrap before ord does
	}
	if p.Addr().Is4() {
		b := p.Addr().As4()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+uint32(host))
		return netip.AddrFrom4(b), wrapped
	}
	b := p.Addr().As16()
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])+host)
	return netip.AddrFrom16(b), wrapped
}
