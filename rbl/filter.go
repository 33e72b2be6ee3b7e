package rbl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxWeight bounds every weight so that summing the weights of many lists
// can never overflow an int.
const maxWeight = 1_000_000

// Filter matches A-record answers of a list. It is one of: a postscreen
// pattern (127.0.0.[2..11]), a CIDR (127.0.0.0/24) or an Exim-style bitmask
// (&0.0.0.4). Build one with ParseFilter.
type Filter struct {
	// Weight, when HasWeight, replaces List.Weight for this filter.
	Weight    int
	HasWeight bool
	// unexported matcher state lives in filter.go
	matcher filterMatcher
	text    string
}

type filterKind uint8

const (
	// filterInvalid is the zero Filter: it matches nothing and NewChecker
	// rejects it, so a Filter built without ParseFilter cannot silently
	// count every answer.
	filterInvalid filterKind = iota
	filterPattern
	filterCIDR
	filterBitmask
)

// filterMatcher is the compiled form of a Filter. Codes are IPv4 addresses
// as big-endian uint32.
type filterMatcher struct {
	kind filterKind
	// octets holds, for a pattern, a 256-bit set of allowed values per
	// octet.
	octets [4][4]uint64
	// value and mask hold a CIDR's network and netmask, or a bitmask.
	value, mask uint32
}

func (m *filterMatcher) match(code uint32) bool {
	switch m.kind {
	case filterPattern:
		for i := range 4 {
			v := uint8(code >> (24 - 8*i))
			if m.octets[i][v>>6]&(1<<(v&63)) == 0 {
				return false
			}
		}
		return true
	case filterCIDR:
		return code&m.mask == m.value
	case filterBitmask:
		return code&m.mask == m.mask
	}
	return false
}

// String returns the filter as it was written, with its weight suffix.
func (f Filter) String() string {
	if f.HasWeight {
		return f.text + "*" + strconv.Itoa(f.Weight)
	}
	return f.text
}

// SyntaxError reports a malformed site entry or filter. Its message names
// the whole input and the part that is wrong.
type SyntaxError struct {
	// What is parsed: "DNSBL site" or "filter".
	What string
	// Input is the whole entry as given.
	Input string
	// Part is the offending part of Input.
	Part string
	// Detail explains what is wrong with Part.
	Detail string
}

// Error names the input and what is wrong with it.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("bad %s %q: %s", e.What, e.Input, e.Detail)
}

// partError is a syntax problem inside an entry; the caller wraps it into a
// SyntaxError that names the whole entry.
type partError struct {
	part, detail string
}

func (e *partError) Error() string { return e.detail }

func badPart(part, format string, args ...any) *partError {
	return &partError{part: part, detail: fmt.Sprintf(format, args...)}
}

// ParseFilter parses a filter with an optional "*weight" suffix. A filter is
// one of:
//   - a postscreen pattern d.d.d.d, each d a number or a [...] set of
//     ";"-separated numbers and n..m ranges: 127.0.0.[2..11], 127.0.[0..255].[1;3]
//   - a CIDR: 127.0.0.0/24
//   - an Exim-style bitmask: &0.0.0.4 matches codes with every bit of the
//     mask set.
func ParseFilter(s string) (Filter, error) {
	f, perr := parseFilter(s, true)
	if perr != nil {
		return Filter{}, &SyntaxError{What: "filter", Input: s, Part: perr.part, Detail: perr.detail}
	}
	return f, nil
}

func parseFilter(s string, allowWeight bool) (Filter, *partError) {
	var f Filter
	body := s
	if i := strings.LastIndexByte(s, '*'); i >= 0 {
		if !allowWeight {
			return f, badPart(s[i:], "unexpected %q", s[i:])
		}
		w, perr := parseWeight(s[i+1:])
		if perr != nil {
			return f, perr
		}
		body, f.Weight, f.HasWeight = s[:i], w, true
	}
	if body == "" {
		return f, badPart(body, "empty filter")
	}
	var perr *partError
	switch {
	case body[0] == '&':
		perr = parseBitmask(&f.matcher, body)
	case strings.IndexByte(body, '/') >= 0:
		perr = parseCIDR(&f.matcher, body)
	default:
		perr = parsePattern(&f.matcher, body)
	}
	if perr != nil {
		return Filter{}, perr
	}
	f.text = body
	return f, nil
}

func parseWeight(s string) (int, *partError) {
	if s == "" {
		return 0, badPart(s, "missing weight after \"*\"")
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, badPart(s, "weight %q is not an integer", s)
	}
	w, err := strconv.Atoi(s)
	if err != nil || w > maxWeight || w < -maxWeight {
		return 0, badPart(s, "weight %q is out of range -%d..%d", s, maxWeight, maxWeight)
	}
	return w, nil
}

func parseBitmask(m *filterMatcher, s string) *partError {
	a, err := netip.ParseAddr(s[1:])
	if err != nil || !a.Is4() {
		return badPart(s, "bitmask %q is not & followed by an IPv4 address", s)
	}
	if a.IsUnspecified() {
		return badPart(s, "bitmask %q has no bit set", s)
	}
	m.kind, m.mask = filterBitmask, addrToUint32(a)
	return nil
}

func parseCIDR(m *filterMatcher, s string) *partError {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return badPart(s, "CIDR %q is not an IPv4 network like 127.0.0.0/24", s)
	}
	if p.Masked() != p {
		return badPart(s, "CIDR %q has host bits set (network is %s)", s, p.Masked())
	}
	bits := p.Bits()
	m.kind = filterCIDR
	m.mask = ^uint32(0) << (32 - bits)
	if bits == 0 {
		m.mask = 0
	}
	m.value = addrToUint32(p.Addr())
	return nil
}

// parsePattern parses a postscreen d.d.d.d pattern. Dots inside [...]
// belong to ranges, so octets are split by hand.
func parsePattern(m *filterMatcher, s string) *partError {
	octet, start := 0, 0
	inBrackets := false
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch s[i] {
			case '[':
				if inBrackets {
					return badPart(s[start:], "octet %d %q has a nested '['", octet+1, s[start:])
				}
				inBrackets = true
				continue
			case ']':
				inBrackets = false
				continue
			case '.':
				if inBrackets {
					continue
				}
			default:
				continue
			}
		}
		if octet == 4 {
			return badPart(s, "pattern %q has more than 4 octets", s)
		}
		if perr := parseOctet(&m.octets[octet], s[start:i], octet+1); perr != nil {
			return perr
		}
		octet++
		start = i + 1
	}
	if octet != 4 {
		return badPart(s, "pattern %q has %d octets, want 4 (d.d.d.d)", s, octet)
	}
	m.kind = filterPattern
	return nil
}

// parseOctet parses one octet of a pattern into the set of values it allows.
func parseOctet(set *[4]uint64, s string, n int) *partError {
	if s == "" {
		return badPart(s, "octet %d is empty", n)
	}
	if s[0] != '[' {
		v, perr := parseOctetNumber(s, s, n)
		if perr != nil {
			return perr
		}
		set[v>>6] |= 1 << (v & 63)
		return nil
	}
	if len(s) < 2 || s[len(s)-1] != ']' || strings.IndexByte(s[1:len(s)-1], ']') >= 0 {
		return badPart(s, "octet %d %q must be a number or [...]", n, s)
	}
	inner := s[1 : len(s)-1]
	if inner == "" {
		return badPart(s, "octet %d %q is an empty set", n, s)
	}
	for _, item := range strings.Split(inner, ";") {
		lo, hi, isRange := strings.Cut(item, "..")
		if !isRange {
			hi = lo
		}
		a, perr := parseOctetNumber(lo, s, n)
		if perr != nil {
			return perr
		}
		b, perr := parseOctetNumber(hi, s, n)
		if perr != nil {
			return perr
		}
		if a > b {
			return badPart(item, "octet %d %q: range %q runs backwards", n, s, item)
		}
		for v := a; v <= b; v++ {
			set[v>>6] |= 1 << (v & 63)
		}
	}
	return nil
}

func parseOctetNumber(s, octet string, n int) (int, *partError) {
	if s == "" {
		return 0, badPart(octet, "octet %d %q: empty item in the set", n, octet)
	}
	if s == "" || len(s) > 3 || strings.Trim(s, "0123456789") != "" {
		return 0, badPart(s, "octet %d %q: %q is not a number from 0 to 255", n, octet, s)
	}
	v, _ := strconv.Atoi(s)
	if v > 255 {
		return 0, badPart(s, "octet %d %q: %q is not a number from 0 to 255", n, octet, s)
	}
	return v, nil
}

func addrToUint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uint32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
