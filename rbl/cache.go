package rbl

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	lru "github.com/hashicorp/golang-lru/v2"
)

// CacheConfig configures NewCache. Zero values get defaults (Size 100000,
// MinTTL 60s, MaxTTL 1h, ErrorTTL 0 meaning errors are not cached).
type CacheConfig struct {
	// Size bounds the number of cached answers. IPv4 answers, IPv6
	// answers and TXT records are each bounded by Size on their own.
	Size int
	// MinTTL and MaxTTL clamp the TTL of positive answers and the RFC 2308
	// negative TTL of NXDOMAIN/NODATA answers.
	MinTTL, MaxTTL time.Duration
	// ErrorTTL is how long a DNS failure is remembered, to spare a failing
	// server; 0 means failures are not cached.
	ErrorTTL time.Duration
}

// Default cache settings, like postscreen's.
const (
	DefaultCacheSize = 100000
	DefaultMinTTL    = 60 * time.Second
	DefaultMaxTTL    = time.Hour
)

// Cache holds DNS answers; it is shared by Checkers across config reloads,
// so it is keyed by query zone name (interned to a small number) and
// address, never by anything of one Checker's configuration. Expiry has a
// granularity of one second. It is safe for concurrent use.
type Cache struct {
	cfg   CacheConfig
	now   func() time.Time
	epoch time.Time

	// IPv4 answers get their own LRU with an 8-byte key: most traffic is
	// IPv4 and the smaller key keeps each entry in a smaller size class.
	v4  *lru.Cache[key4, cacheEntry]
	v6  *lru.Cache[key6, cacheEntry]
	txt *lru.Cache[key6, txtEntry]

	zonesMu sync.Mutex
	zones   map[string]uint32

	hits, misses, evictions atomic.Uint64
}

type key4 struct {
	zone uint32
	ip   [4]byte
}

type key6 struct {
	zone uint32
	ip   [16]byte
}

// cacheEntry is one cached answer, 16 bytes. Codes are interned: the same
// few code combinations repeat across millions of entries, so each entry
// holds only a pointer to a shared copy.
type cacheEntry struct {
	codes unique.Handle[codeSet]
	// expires is in seconds since the cache's epoch.
	expires uint32
	kind    answerKind
}

type txtEntry struct {
	txt     string
	expires uint32
}

// answerKind says what kind of DNS answer (or failure) a lookup got.
type answerKind uint8

const (
	// answerNegative is NXDOMAIN, or NOERROR without A records.
	answerNegative answerKind = iota
	// answerRecords is NOERROR with A records.
	answerRecords
	answerError
	answerTimeout
	// answerOverBudget is a query not sent: the zone's daily query budget
	// is spent. Never cached.
	answerOverBudget
)

// CacheStats are the cache's counters since it was created.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	// Entries is the number of answers held now (IPv4 and IPv6).
	Entries int
}

// NewCache returns an empty cache. now is the clock; nil means time.Now.
func NewCache(cfg CacheConfig, now func() time.Time) (*Cache, error) {
	if cfg.Size < 0 || cfg.MinTTL < 0 || cfg.MaxTTL < 0 || cfg.ErrorTTL < 0 {
		return nil, fmt.Errorf("cache: negative setting in %+v", cfg)
	}
	if cfg.Size == 0 {
		cfg.Size = DefaultCacheSize
	}
	if cfg.MinTTL == 0 {
		cfg.MinTTL = DefaultMinTTL
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = DefaultMaxTTL
	}
	if cfg.MinTTL > cfg.MaxTTL {
		return nil, fmt.Errorf("cache: min_ttl %s is greater than max_ttl %s", cfg.MinTTL, cfg.MaxTTL)
	}
	if now == nil {
		now = time.Now
	}
	c := &Cache{cfg: cfg, now: now, epoch: now(), zones: make(map[string]uint32)}
	var err error
	if c.v4, err = lru.New[key4, cacheEntry](cfg.Size); err != nil {
		return nil, err
	}
	if c.v6, err = lru.New[key6, cacheEntry](cfg.Size); err != nil {
		return nil, err
	}
	if c.txt, err = lru.New[key6, txtEntry](cfg.Size); err != nil {
		return nil, err
	}
	return c, nil
}

// Config returns the effective settings (defaults applied).
func (c *Cache) Config() CacheConfig { return c.cfg }

// Stats returns the counters, for metrics.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Evictions: c.evictions.Load(),
		Entries:   c.v4.Len() + c.v6.Len(),
	}
}

// Len returns the number of cached answers.
func (c *Cache) Len() int { return c.v4.Len() + c.v6.Len() }

// Purge drops every entry.
func (c *Cache) Purge() {
	c.v4.Purge()
	c.v6.Purge()
	c.txt.Purge()
}

// zoneID interns a query zone name (lower case). IDs are never reused, so a
// zone keeps its entries across config reloads.
func (c *Cache) zoneID(zone string) uint32 {
	c.zonesMu.Lock()
	defer c.zonesMu.Unlock()
	id, ok := c.zones[zone]
	if !ok {
		id = uint32(len(c.zones))
		c.zones[zone] = id
	}
	return id
}

// clock returns the current time in whole seconds since the epoch.
func (c *Cache) clock() uint32 {
	d := c.now().Sub(c.epoch)
	if d < 0 {
		return 0
	}
	return uint32(d / time.Second)
}

// get looks an answer up; now is c.clock(), read once per Check rather than
// once per list because reading the clock dominates a cache hit.
func (c *Cache) get(zone uint32, ip netip.Addr, now uint32) (cacheEntry, bool) {
	ip = ip.Unmap()
	var e cacheEntry
	var ok bool
	if ip.Is4() {
		e, ok = c.v4.Get(key4{zone, ip.As4()})
	} else {
		e, ok = c.v6.Get(key6{zone, ip.As16()})
	}
	if !ok || e.expires <= now {
		c.misses.Add(1)
		return cacheEntry{}, false
	}
	c.hits.Add(1)
	return e, true
}

// put stores an answer for as long as its kind and TTL allow.
func (c *Cache) put(zone uint32, ip netip.Addr, a *answer) {
	var ttl time.Duration
	switch a.kind {
	case answerError, answerTimeout:
		ttl = c.cfg.ErrorTTL
	default:
		ttl = min(max(a.ttl, c.cfg.MinTTL), c.cfg.MaxTTL)
	}
	secs := uint32(ttl / time.Second)
	if secs == 0 {
		return
	}
	e := cacheEntry{expires: c.clock() + secs, kind: a.kind}
	if len(a.codes) > 0 {
		e.codes = unique.Make(a.codes)
	}
	ip = ip.Unmap()
	var evicted bool
	if ip.Is4() {
		evicted = c.v4.Add(key4{zone, ip.As4()}, e)
	} else {
		evicted = c.v6.Add(key6{zone, ip.As16()}, e)
	}
	if evicted {
		c.evictions.Add(1)
	}
}

func (c *Cache) getTXT(zone uint32, ip netip.Addr) (string, bool) {
	e, ok := c.txt.Get(key6{zone, ip.Unmap().As16()})
	if !ok || e.expires <= c.clock() {
		return "", false
	}
	return e.txt, true
}

func (c *Cache) putTXT(zone uint32, ip netip.Addr, txt string, ttl time.Duration) {
	ttl = min(max(ttl, c.cfg.MinTTL), c.cfg.MaxTTL)
	c.txt.Add(key6{zone, ip.Unmap().As16()}, txtEntry{txt: txt, expires: c.clock() + uint32(ttl/time.Second)})
}

// answer turns a cache entry back into an answer.
func (e cacheEntry) answer() answer {
	a := answer{kind: e.kind, cached: true}
	if e.codes != (unique.Handle[codeSet]{}) {
		a.codes = e.codes.Value()
	}
	switch e.kind {
	case answerError:
		a.err = errCachedFailure
	case answerTimeout:
		a.err = errCachedTimeout
	}
	return a
}

var (
	errCachedFailure = errors.New("DNS lookup failed recently (cached failure)")
	errCachedTimeout = &cachedTimeoutError{}
)

type cachedTimeoutError struct{}

func (*cachedTimeoutError) Error() string        { return "DNS lookup timed out recently (cached failure)" }
func (*cachedTimeoutError) Is(target error) bool { return target == ErrTimeout }

// peek is get without counting a hit or a miss: a second look inside a
// de-duplicated lookup.
func (c *Cache) peek(zone uint32, ip netip.Addr) (cacheEntry, bool) {
	ip = ip.Unmap()
	var e cacheEntry
	var ok bool
	if ip.Is4() {
		e, ok = c.v4.Peek(key4{zone, ip.As4()})
	} else {
		e, ok = c.v6.Peek(key6{zone, ip.As16()})
	}
	if !ok || e.expires <= c.clock() {
		return cacheEntry{}, false
	}
	return e, true
}
