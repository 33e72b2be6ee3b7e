package rbl

import (
	"net/netip"
)

// isErrorCode reports whether an A record is a list operator's "you asked
// the wrong thing" answer rather than a listing. Each is documented by the
// operator of a list rblmilter's docs name:
//
//   - 127.255.255.0/24, Spamhaus' error range, all of it (Spamhaus adds to
//     it): 127.255.255.252 typo in the zone name, .254 query through a
//     public or open resolver, .255 excessive number of queries.
//     https://www.spamhaus.org/news/article/788/ and
//     https://www.spamhaus.com/resource-center/help-for-spamhaus-projects-legacy-blocklist-users
//   - 127.0.1.255, Spamhaus DBL asked about an IP address ("IP queries not
//     allowed"):
//     https://docs.spamhaus.com/datasets/docs/source/10-data-type-documentation/datasets/040-zones.html
//   - 127.0.2.255, Spamhaus ZRD asked about an IP address, the same error;
//     Spamhaus' own rspamd rules call it RBL_ZRD_DONT_QUERY_IPS:
//     https://github.com/spamhaus/rspamd-dqs/blob/master/3.x/rbl.conf
//   - 127.0.0.255, dnswl.org's answer to a query source it blocks for
//     going over its free limit (rspamd's DNSWL_BLOCKED,
//     https://github.com/rspamd/rspamd/blob/master/conf/modules.d/rbl.conf;
//     the limit: https://www.dnswl.org/?p=152).
func isErrorCode(code uint32) bool {
	return code&0xffffff00 == 0x7fffff00 || code == 0x7f0001ff || code == 0x7f0002ff || code == 0x7f0000ff
}

func inLoopback(code uint32) bool { return code>>24 == 127 }

// codeSet is the A records of one answer, each as 4 big-endian bytes. As a
// string it can be interned by the cache and compared cheaply.
type codeSet string

func (c codeSet) len() int { return len(c) / 4 }

func (c codeSet) at(i int) uint32 {
	s := c[4*i : 4*i+4]
	return uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3])
}

func appendCode(dst []byte, code uint32) []byte {
	return append(dst, byte(code>>24), byte(code>>16), byte(code>>8), byte(code))
}

// dedupe returns the codes without repeats, in their order: the answers of
// several names may share codes.
func (c codeSet) dedupe() codeSet {
	if c.len() <= 1 {
		return c
	}
	out := make([]byte, 0, len(c))
	for i := range c.len() {
		code := c.at(i)
		seen := false
		for j := 0; j < len(out); j += 4 {
			seen = seen || codeSet(out[j:j+4]).at(0) == code
		}
		if !seen {
			out = appendCode(out, code)
		}
	}
	return codeSet(out)
}

// addrs returns the codes as addresses; nil when there are none.
func (c codeSet) addrs() []netip.Addr {
	n := c.len()
	if n == 0 {
		return nil
	}
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = uint32ToAddr(c.at(i))
	}
	return out
}

// classify decides what an answer's A records mean for this list and what
// weight they add. No records is NotListed; any record outside 127.0.0.0/8
// makes the answer Bogus and any operator error code makes it Refused,
// whatever the filters say, and neither ever adds weight. Otherwise the
// filters decide between Listed and NotListed.
func (l *List) classify(codes codeSet) (Outcome, int) {
	n := codes.len()
	if n == 0 {
		return NotListed, 0
	}
	refused := false
	for i := range n {
		c := codes.at(i)
		if !inLoopback(c) {
			return Bogus, 0
		}
		if isErrorCode(c) {
			refused = true
		}
	}
	if refused {
		return Refused, 0
	}
	if len(l.Filters) == 0 {
		return Listed, l.Weight
	}
	weight, matched, matchedDefault := 0, false, false
	for fi := range l.Filters {
		f := &l.Filters[fi]
		for i := range n {
			if f.matcher.match(codes.at(i)) {
				matched = true
				if f.HasWeight {
					weight += f.Weight
				} else {
					matchedDefault = true
				}
				break
			}
		}
	}
	if !matched {
		return NotListed, 0
	}
	if matchedDefault {
		weight += l.Weight
	}
	return Listed, weight
}
