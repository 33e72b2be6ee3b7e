package rbl

// STUBS: this file holds the agreed API of package rbl so that other
// packages compile while the engine is written. The rbl implementer moves
// each function into its real file and deletes this file.

import (
	"context"
	"log/slog"
	"net/netip"
	"time"
)

// String returns the metric/log name of the outcome: "pending",
// "not_listed", "listed", "refused", "bogus", "error", "timeout", "disabled".
func (o Outcome) String() string { panic("todo") }

// String returns "accept", "reject", "tempfail" or "allowlisted".
func (d Decision) String() string { panic("todo") }

// String returns the display name, never the key.
func (l *List) String() string { panic("todo") }

// QueryName builds the RFC 5782 query name of ip in zone (no trailing dot).
// IPv4-mapped IPv6 addresses are looked up as IPv4.
func QueryName(ip netip.Addr, zone string) string { panic("todo") }

// ParseSite parses one postscreen_dnsbl_sites entry, zone[=filter][*weight].
func ParseSite(entry string) (List, error) { panic("todo") }

// ParseFilter parses a postscreen pattern, a CIDR or an &bitmask, with an
// optional "*weight" suffix.
func ParseFilter(s string) (Filter, error) { panic("todo") }

// ResolverConfig configures NewResolver.
type ResolverConfig struct {
	// Servers are "host:port" addresses, tried in order.
	Servers []string
}

// DNSResolver is the miekg/dns Resolver.
type DNSResolver struct{}

// NewResolver returns a resolver that asks cfg.Servers.
func NewResolver(cfg ResolverConfig) (*DNSResolver, error) { panic("todo") }

// ServersFromResolvConf reads nameserver lines from a resolv.conf file and
// returns them as "host:port".
func ServersFromResolvConf(path string) ([]string, error) { panic("todo") }

// CacheConfig configures NewCache. Zero values get defaults (Size 100000,
// MinTTL 60s, MaxTTL 1h, ErrorTTL 0 meaning errors are not cached).
type CacheConfig struct {
	Size                     int
	MinTTL, MaxTTL, ErrorTTL time.Duration
}

// Cache holds DNS answers; it is shared by Checkers across config reloads.
type Cache struct{}

// NewCache returns an empty cache. now is the clock; nil means time.Now.
func NewCache(cfg CacheConfig, now func() time.Time) (*Cache, error) { panic("todo") }

// Options are the Checker's injected dependencies.
type Options struct {
	Resolver Resolver
	// Cache may be nil (no caching).
	Cache *Cache
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Checker scores client addresses against the configured lists.
type Checker struct{}

// NewChecker validates cfg, applies defaults and returns a Checker.
func NewChecker(cfg Config, opts Options) (*Checker, error) { panic("todo") }

// Check looks ip up on every list in parallel and returns the verdict.
func (c *Checker) Check(ctx context.Context, ip netip.Addr) Verdict { panic("todo") }

// Close stops background lookups and waits for them.
func (c *Checker) Close() { panic("todo") }

// Config returns the effective configuration (defaults applied).
func (c *Checker) Config() Config { panic("todo") }
