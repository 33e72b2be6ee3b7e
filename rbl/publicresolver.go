package rbl

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
)

// publicResolvers are well-known open resolvers. Spamhaus refuses queries
// to its public mirrors that come through them (answer 127.255.255.254),
// and other lists throttle them.
var publicResolvers = []string{
	// Google
	"8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844",
	// Cloudflare
	"1.1.1.1", "1.0.0.1", "1.1.1.2", "1.0.0.2", "1.1.1.3", "1.0.0.3",
	"2606:4700:4700::1111", "2606:4700:4700::1001",
	// Quad9
	"9.9.9.9", "149.112.112.112", "9.9.9.10", "149.112.112.10", "9.9.9.11", "149.112.112.11",
	"2620:fe::fe", "2620:fe::9", "2620:fe::10", "2620:fe::11",
	// OpenDNS
	"208.67.222.222", "208.67.220.220", "208.67.222.220", "208.67.220.222",
	"2620:119:35::35", "2620:119:53::53",
	// Level 3, Verisign, Comodo, AdGuard, CleanBrowsing, Control D, Yandex
	"4.2.2.1", "4.2.2.2", "4.2.2.3", "4.2.2.4", "4.2.2.5", "4.2.2.6",
	"64.6.64.6", "64.6.65.6", "8.26.56.26", "8.20.247.20",
	"94.140.14.14", "94.140.15.15", "185.228.168.9", "185.228.169.9",
	"76.76.2.0", "76.76.10.0", "77.88.8.8", "77.88.8.1",
}

// isPublicResolver reports whether server ("host:port" or a bare IP) is a
// well-known public resolver such as 8.8.8.8, 1.1.1.1 or 9.9.9.9.
func isPublicResolver(server string) bool {
	host := server
	if ap, err := netip.ParseAddrPort(server); err == nil {
		host = ap.Addr().String()
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	a = a.Unmap()
	return slices.ContainsFunc(publicResolvers, func(s string) bool { return netip.MustParseAddr(s) == a })
}

// isSpamhausPublicMirror reports whether l queries Spamhaus's free public
// mirrors (zen.spamhaus.org and friends) rather than the Data Query
// Service, which needs a key.
func isSpamhausPublicMirror(l *List) bool {
	if l.Key != "" {
		return false
	}
	z := l.normalizedZone()
	return z == "spamhaus.org" || strings.HasSuffix(z, ".spamhaus.org")
}

// WarnPublicResolvers logs a warning when a configured resolver is a
// well-known public one while a list uses Spamhaus's public mirrors
// without a key: Spamhaus answers such queries with the error code
// 127.255.255.254 (which the health monitor then reports). It returns
// whether it warned.
func WarnPublicResolvers(log *slog.Logger, servers []string, lists []List) bool {
	var public, zones []string
	for _, s := range servers {
		if isPublicResolver(s) {
			public = append(public, s)
		}
	}
	for i := range lists {
		if isSpamhausPublicMirror(&lists[i]) && !slices.Contains(zones, lists[i].String()) {
			zones = append(zones, lists[i].String())
		}
	}
	if len(public) == 0 || len(zones) == 0 {
		return false
	}
	log.Warn("public DNS resolver configured with Spamhaus public-mirror lists: Spamhaus refuses queries from public resolvers (answer 127.255.255.254); use a local recursive resolver, or Spamhaus DQS with a key",
		"resolvers", strings.Join(public, ","), "lists", strings.Join(zones, ","))
	return true
}
