package rbl

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

func BenchmarkQueryName(b *testing.B) {
	for _, addr := range []string{"192.0.2.123", "2001:db8::1"} {
		ip := netip.MustParseAddr(addr)
		b.Run("string/"+addr, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = QueryName(ip, "zen.spamhaus.org")
			}
		})
		b.Run("append/"+addr, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 128)
			for b.Loop() {
				buf = appendQueryName(buf[:0], ip, "zen.spamhaus.org")
			}
		})
	}
}

// benchLists is a typical configuration: ZEN scored postscreen style, an
// allowlist and one more blocklist.
func benchLists(b *testing.B) []List {
	var lists []List
	for _, s := range []string{"zen.test=127.0.0.[2..11]*3", "wl.test=127.0.[0..255].[1..3]*-2", "bl.test"} {
		l, err := ParseSite(s)
		if err != nil {
			b.Fatal(err)
		}
		lists = append(lists, l)
	}
	return lists
}

func benchAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func BenchmarkCheckCacheHit(b *testing.B) {
	srv := rbltest.NewServer(b)
	const clients = 1000
	for i := range clients {
		if i%10 == 0 {
			srv.Set(QueryName(benchAddr(i), "zen.test"), rbltest.A("127.0.0.2"))
		}
	}
	r, _ := NewResolver(ResolverConfig{Servers: []string{srv.Addr()}})
	cache, _ := NewCache(CacheConfig{}, nil)
	c, err := NewChecker(Config{Lists: benchLists(b), AllowlistThreshold: -1}, Options{Resolver: r, Cache: cache})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := range clients {
		c.Check(ctx, benchAddr(i))
	}
	for i := range clients {
		if v := c.Check(ctx, benchAddr(i)); v.Early || !v.Results[0].Cached {
			b.Fatalf("not warm: %+v", v)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.Check(ctx, benchAddr(i%clients))
			i++
		}
	})
	b.Run("not-listed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Check(ctx, benchAddr(1))
		}
	})
	b.Run("listed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Check(ctx, benchAddr(0))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.Check(ctx, benchAddr(i%clients))
				i++
			}
		})
	})
}

func BenchmarkCheckCold(b *testing.B) {
	srv := rbltest.NewServer(b)
	r, _ := NewResolver(ResolverConfig{Servers: []string{srv.Addr()}})
	cache, _ := NewCache(CacheConfig{Size: 1 << 20}, nil)
	c, err := NewChecker(Config{Lists: benchLists(b), AllowlistThreshold: -1}, Options{Resolver: r, Cache: cache})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Every client is new: three DNS queries over loopback UDP.
		if v := c.Check(ctx, benchAddr(1<<20+i)); v.Results[0].Cached {
			b.Fatal("cache hit")
		}
		i++
	}
}

// BenchmarkCacheBytesPerAnswer fills a cache with one million answers (one
// in ten a listing) and reports the heap (and, on Linux, resident) bytes each
// answer costs: IPv4 and IPv6 addresses, and domain lists' names (keyed by
// a hash, so the names' length does not count). Run it with -benchtime=1x.
func BenchmarkCacheBytesPerAnswer(b *testing.B) {
	const n = 1_000_000
	for _, kind := range []string{"ipv4", "ipv6", "names"} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				heap, rss := measureCache(b, n, kind)
				b.ReportMetric(heap, "heap-bytes/answer")
				if rss > 0 {
					b.ReportMetric(rss, "rss-bytes/answer")
				}
			}
		})
	}
}

func measureCache(b *testing.B, n int, kind string) (heapPer, rssPer float64) {
	b.StopTimer()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := rss()
	b.StartTimer()
	cache, err := NewCache(CacheConfig{Size: n, MaxTTL: time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	zone := cache.zoneID("zen.test")
	listed := answer{kind: answerRecords, codes: codeSet(appendCode(nil, 0x7f000002)), ttl: time.Hour}
	clean := answer{kind: answerNegative, ttl: time.Hour}
	for i := range n {
		a := &clean
		if i%10 == 0 {
			a = &listed
		}
		switch kind {
		case "names":
			cache.putName(cache.nameKey(zone, "mail-"+strconv.Itoa(i)+".example.com"), a)
		case "ipv6":
			cache.put(zone, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}), a)
		default:
			cache.put(zone, benchAddr(i), a)
		}
	}
	b.StopTimer()
	if cache.entries() != n {
		b.Fatalf("cache holds %d answers, want %d", cache.entries(), n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heapPer = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	if r := rss(); r > 0 && rssBefore > 0 {
		rssPer = float64(r-rssBefore) / float64(n)
	}
	runtime.KeepAlive(cache)
	b.StartTimer()
	return heapPer, rssPer
}

// BenchmarkCacheFloorPerAnswer is the floor under
// BenchmarkCacheBytesPerAnswer: golang-lru/v2 itself holding one million
// entries of the smallest layout an answer could have, the address alone as
// the key (no zone) and 8 bytes of value for IPv6, 4 for IPv4. Every entry
// costs the library's list element (links, list pointer, and the expiry
// fields of its expirable variant, unused here) plus a slot of the Go map
// that indexes it, at the load factor the map has at that size. Run it
// with -benchtime=1x.
func BenchmarkCacheFloorPerAnswer(b *testing.B) {
	const n = 1_000_000
	b.Run("ipv6", func(b *testing.B) {
		for b.Loop() {
			b.ReportMetric(lruBytesPerEntry(b, n, func(i int) [16]byte {
				return [16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}
			}, uint64(0)), "heap-bytes/answer")
		}
	})
	b.Run("ipv4", func(b *testing.B) {
		for b.Loop() {
			b.ReportMetric(lruBytesPerEntry(b, n, func(i int) [4]byte { return benchAddr(i).As4() }, uint32(0)), "heap-bytes/answer")
		}
	})
}

// lruBytesPerEntry fills a golang-lru/v2 cache with n entries and returns
// the heap bytes each costs.
func lruBytesPerEntry[K comparable, V any](b *testing.B, n int, key func(int) K, value V) float64 {
	b.StopTimer()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.StartTimer()
	c, err := lru.New[K, V](n)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		c.Add(key(i), value)
	}
	b.StopTimer()
	if c.Len() != n {
		b.Fatalf("cache holds %d entries, want %d", c.Len(), n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(c)
	b.StartTimer()
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// rss returns the resident set size from /proc, or 0 where there is none.
func rss() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
