package rbl

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func TestCacheEntryLayout(t *testing.T) {
	// The per-answer memory budget depends on these sizes (see
	// BenchmarkCacheBytesPerAnswer).
	if s := unsafe.Sizeof(cacheEntry{}); s != 16 {
		t.Errorf("cacheEntry is %d bytes, want 16", s)
	}
	if s := unsafe.Sizeof(key4{}); s != 8 {
		t.Errorf("key4 is %d bytes, want 8", s)
	}
}

func TestNewCacheErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg CacheConfig
		msg string
	}{
		{CacheConfig{MinTTL: 2 * time.Hour}, "cache: min_ttl 2h0m0s is greater than max_ttl 1h0m0s"},
		{CacheConfig{Size: -1}, "cache: negative setting in {Size:-1 MinTTL:0s MaxTTL:0s ErrorTTL:0s}"},
	} {
		if _, err := NewCache(tt.cfg, nil); err == nil || err.Error() != tt.msg {
			t.Errorf("NewCache(%+v) error\n got %v\nwant %s", tt.cfg, err, tt.msg)
		}
	}
	c, err := NewCache(CacheConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Config(); got != (CacheConfig{Size: DefaultCacheSize, MinTTL: DefaultMinTTL, MaxTTL: DefaultMaxTTL}) {
		t.Errorf("defaults %+v", got)
	}
}

func TestCacheKeysAndEviction(t *testing.T) {
	clk := &testClock{t: time.Unix(1e9, 0)}
	c, err := NewCache(CacheConfig{Size: 2}, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	zen, wl := c.zoneID("zen.test"), c.zoneID("wl.test")
	if again := c.zoneID("zen.test"); again != zen || zen == wl {
		t.Fatalf("zone ids %d %d %d", zen, again, wl)
	}
	listed := answer{kind: answerRecords, codes: codeSet(appendCode(nil, 0x7f000002)), ttl: time.Hour}
	v4, mapped, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	c.put(zen, v4, &listed)
	now := c.clock()
	if e, ok := c.get(zen, mapped, now); !ok || e.answer().codes != listed.codes {
		t.Error("mapped address misses the IPv4 entry")
	}
	if _, ok := c.get(wl, v4, now); ok {
		t.Error("another zone hits")
	}
	c.put(zen, v6, &listed)
	c.put(wl, v6, &listed)
	c.put(zen, netip.MustParseAddr("192.0.2.2"), &answer{kind: answerNegative})
	c.put(zen, netip.MustParseAddr("192.0.2.3"), &answer{kind: answerNegative})
	st := c.Stats()
	if st.Entries != 4 || st.Evictions != 1 || st.Hits != 1 || st.Misses != 1 {
		t.Errorf("stats %+v, want 4 entries (2 per family), 1 eviction, 1 hit, 1 miss", st)
	}
	if _, ok := c.get(zen, v4, now); ok {
		t.Error("the least recently used entry survived")
	}
	c.purge()
	if c.entries() != 0 {
		t.Errorf("%d entries after Purge", c.entries())
	}
}

func TestCacheClockGoingBackwards(t *testing.T) {
	clk := &testClock{t: time.Unix(1e9, 0)}
	c, _ := NewCache(CacheConfig{}, clk.now)
	clk.t = clk.t.Add(-time.Hour)
	ip := netip.MustParseAddr("192.0.2.1")
	c.put(0, ip, &answer{kind: answerNegative})
	if _, ok := c.get(0, ip, c.clock()); !ok {
		t.Error("entry put while the clock is behind the epoch is lost")
	}
}

func TestCacheNegativeAndErrorTTL(t *testing.T) {
	clk := &testClock{t: time.Unix(1e9, 0)}
	c, _ := NewCache(CacheConfig{ErrorTTL: 1500 * time.Millisecond}, clk.now)
	ip := netip.MustParseAddr("192.0.2.1")
	c.put(1, ip, &answer{kind: answerTimeout})
	e, ok := c.get(1, ip, c.clock())
	if !ok || e.answer().kind != answerTimeout || !isTimeout(e.answer().err) {
		t.Fatalf("cached timeout: %+v %v", e, ok)
	}
	clk.t = clk.t.Add(time.Second)
	if _, ok := c.get(1, ip, c.clock()); ok {
		t.Error("error TTL is rounded down to whole seconds; 1.5s lives 1s")
	}
}

// purge drops every entry.
func (c *Cache) purge() {
	c.v4.Purge()
	c.v6.Purge()
	c.txt.Purge()
	c.names.Purge()
	c.nameTXT.Purge()
}
