package rbl

import (
	"net/netip"
)

const hexDigits = "0123456789abcdef"

// QueryName builds the RFC 5782 query name of ip in zone (no trailing dot).
// IPv4 addresses are written as their reversed octets, IPv6 addresses as 32
// reversed nibbles; IPv4-mapped IPv6 addresses are looked up as IPv4, since
// that is how the client really connected.
func QueryName(ip netip.Addr, zone string) string {
	var buf [72 + 256]byte
	return string(appendQueryName(buf[:0], ip, zone))
}

// appendQueryName appends QueryName(ip, zone) to dst and returns the
// extended buffer, so hot paths can build names without allocating.
func appendQueryName(dst []byte, ip netip.Addr, zone string) []byte {
	dst = appendReversed(dst, ip)
	return append(dst, zone...)
}

// appendReversed appends the reversed address labels of ip, each followed
// by a dot.
func appendReversed(dst []byte, ip netip.Addr) []byte {
	ip = ip.Unmap()
	if ip.Is4() {
		a := ip.As4()
		for i := 3; i >= 0; i-- {
			dst = appendUint8(dst, a[i])
			dst = append(dst, '.')
		}
		return dst
	}
	return appendNibbles(dst, ip.As16())
}

// appendNibbles appends the 32 reversed nibble labels of a, each followed
// by a dot: the RFC 5782 IPv6 form, also of an IPv4-mapped address.
func appendNibbles(dst []byte, a [16]byte) []byte {
	for i := 15; i >= 0; i-- {
		dst = append(dst, hexDigits[a[i]&0xf], '.', hexDigits[a[i]>>4], '.')
	}
	return dst
}

func appendUint8(dst []byte, v uint8) []byte {
	switch {
	case v >= 100:
		return append(dst, '0'+v/100, '0'+v/10%10, '0'+v%10)
	case v >= 10:
		return append(dst, '0'+v/10, '0'+v%10)
	default:
		return append(dst, '0'+v)
	}
}
