package rbl

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	lru "github.com/hashicorp/golang-lru/v2"
)

// CacheConfig configures NewCache. Zero values get defaults:
// DefaultCacheSize, DefaultMinTTL and DefaultMaxTTL; an ErrorTTL of 0
// caches no failures.
type CacheConfig struct {
	// Size bounds the number of cached answers. IPv4 answers, IPv6
	// answers, name answers (domain lists) and TXT records are each
	// bounded by Size on their own.
	Size int
	// MinTTL and MaxTTL clamp the TTL of positive answers and the RFC 2308
	// negative TTL of NXDOMAIN/NODATA answers.
	MinTTL, MaxTTL time.Duration
	// ErrorTTL is how long a DNS failure is remembered, to spare a failing
	// server; 0 means failures are not cached.
	ErrorTTL time.Duration
}

// Default cache settings (CacheConfig's zero values), like postscreen's.
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
	// since reads the time elapsed from now's clock (see sinceFor):
	// every lookup reads it.
	since func(time.Time) time.Duration

	// IPv4 answers get their own LRU with an 8-byte key: most traffic is
	// IPv4 and the smaller key keeps each entry in a smaller size class.
	v4  *lru.Cache[key4, cacheEntry]
	v6  *lru.Cache[key6, cacheEntry]
	txt *lru.Cache[key6, txtEntry]
	// Domain lists' answers are keyed by a hash of the name (see
	// nameKey), so that each costs what an IPv6 answer does whatever the
	// name's length.
	names    *lru.Cache[keyName, cacheEntry]
	nameTXT  *lru.Cache[keyName, txtEntry]
	nameSeed [2]maphash.Seed

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

// keyName is a name's key: 128 bits of two keyed hashes of it. The seeds
// are random for each Cache and never leave the process, so no client can
// choose a name that collides with another, and by chance two names among
// billions collide with a probability below one in 10^20.
type keyName struct {
	zone uint32
	sum  [16]byte
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

// CacheStats are the cache's counters since it was created.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	// Entries is the number of answers held now (IPv4, IPv6 and names).
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
	since := sinceFor(now)
	if now == nil {
		now = time.Now
	}
	c := &Cache{cfg: cfg, now: now, since: since, epoch: now(), zones: make(map[string]uint32),
		nameSeed: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
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
	if c.names, err = lru.New[keyName, cacheEntry](cfg.Size); err != nil {
		return nil, err
	}
	if c.nameTXT, err = lru.New[keyName, txtEntry](cfg.Size); err != nil {
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
		Entries:   c.entries(),
	}
}

// entries returns the number of cached answers.
func (c *Cache) entries() int { return c.v4.Len() + c.v6.Len() + c.names.Len() }

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

// sinceFor returns how the time elapsed since a moment is read from the
// clock now: nil is the real clock, read from its monotonic half alone
// (time.Since), which costs less than time.Now reads both halves.
func sinceFor(now func() time.Time) func(time.Time) time.Duration {
	if now == nil {
		return time.Since
	}
	return func(t time.Time) time.Duration { return now().Sub(t) }
}

// clock returns the current time in whole seconds since the epoch.
func (c *Cache) clock() uint32 {
	d := c.since(c.epoch)
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

// entryOf makes the cache entry of an answer, which lives for as long as
// its kind and TTL allow; false when that is not at all.
func (c *Cache) entryOf(a *answer) (cacheEntry, bool) {
	var ttl time.Duration
	switch a.kind {
	case answerError, answerTimeout:
		ttl = c.cfg.ErrorTTL
	default:
		ttl = min(max(a.ttl, c.cfg.MinTTL), c.cfg.MaxTTL)
	}
	secs := uint32(ttl / time.Second)
	if secs == 0 {
		return cacheEntry{}, false
	}
	e := cacheEntry{expires: c.clock() + secs, kind: a.kind}
	if len(a.codes) > 0 {
		e.codes = unique.Make(a.codes)
	}
	return e, true
}

// put stores an answer for as long as its kind and TTL allow.
func (c *Cache) put(zone uint32, ip netip.Addr, a *answer) {
	e, ok := c.entryOf(a)
	if !ok {
		return
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
	c.txt.Add(key6{zone, ip.Unmap().As16()}, c.txtEntryOf(txt, ttl))
}

func (c *Cache) txtEntryOf(txt string, ttl time.Duration) txtEntry {
	ttl = min(max(ttl, c.cfg.MinTTL), c.cfg.MaxTTL)
	return txtEntry{txt: txt, expires: c.clock() + uint32(ttl/time.Second)}
}

// nameKey is the key of a normalized name in zone.
func (c *Cache) nameKey(zone uint32, name string) keyName {
	return keyName{zone: zone, sum: c.nameSum(name)}
}

// nameSum is the zone-free part of a name's key, so that a name asked of
// several zones is hashed once.
func (c *Cache) nameSum(name string) [16]byte {
	var sum [16]byte
	h1, h2 := maphash.String(c.nameSeed[0], name), maphash.String(c.nameSeed[1], name)
	for i := range 8 {
		sum[i], sum[8+i] = byte(h1>>(8*i)), byte(h2>>(8*i))
	}
	return sum
}

// getName is get for a domain list's name; now is c.clock().
func (c *Cache) getName(k keyName, now uint32) (cacheEntry, bool) {
	e, ok := c.names.Get(k)
	if !ok || e.expires <= now {
		c.misses.Add(1)
		return cacheEntry{}, false
	}
	c.hits.Add(1)
	return e, true
}

// peekName is peek for a name.
func (c *Cache) peekName(k keyName) (cacheEntry, bool) {
	e, ok := c.names.Peek(k)
	if !ok || e.expires <= c.clock() {
		return cacheEntry{}, false
	}
	return e, true
}

// putName is put for a name.
func (c *Cache) putName(k keyName, a *answer) {
	if e, ok := c.entryOf(a); ok && c.names.Add(k, e) {
		c.evictions.Add(1)
	}
}

func (c *Cache) getNameTXT(k keyName) (string, bool) {
	e, ok := c.nameTXT.Get(k)
	if !ok || e.expires <= c.clock() {
		return "", false
	}
	return e.txt, true
}

func (c *Cache) putNameTXT(k keyName, txt string, ttl time.Duration) {
	c.nameTXT.Add(k, c.txtEntryOf(txt, ttl))
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
