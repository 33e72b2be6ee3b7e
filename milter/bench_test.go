package milter

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// BenchmarkConnectCacheHit is the milter's own share of a connect-stage
// session whose lists are all cached, as the daemon runs it: the real
// engine with its Prometheus observer, the decision metrics and the
// decision log line (formatted, then discarded). go-milter's packet
// handling and the socket are left out: cmd/milterbench measures those
// (scripts/bench.sh).
func BenchmarkConnectCacheHit(b *testing.B) {
	srv := rbltest.NewServer(b)
	listedIP := netip.MustParseAddr("198.18.0.1")
	cleanIP := netip.MustParseAddr("198.19.0.1")
	var lists []rbl.List
	for _, zone := range []string{"a.test", "b.test", "c.test"} {
		srv.Set(rbl.QueryName(listedIP, zone), rbltest.A("127.0.0.2"), rbltest.TXT("listed in "+zone))
		l, err := rbl.ParseSite(zone)
		if err != nil {
			b.Fatal(err)
		}
		lists = append(lists, l)
	}
	reg := prometheus.NewRegistry()
	cache, err := rbl.NewCache(rbl.CacheConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	obs, err := rbl.NewMetrics(reg, cache)
	if err != nil {
		b.Fatal(err)
	}
	res, err := rbl.NewResolver(rbl.ResolverConfig{Servers: []string{srv.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	p := basePolicy()
	checker, err := rbl.NewChecker(rbl.Config{Lists: lists, FetchTXT: p.NeedsTXT()},
		rbl.Options{Resolver: res, Cache: cache, Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(checker.Close)
	s, err := NewServer(p, checker, ServerOptions{
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: reg,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Shutdown(b.Context()) })
	g := s.gen.Load()

	for _, tc := range []struct {
		name string
		ip   netip.Addr
		want byte
	}{
		{"clean", cleanIP, byte(gomilter.ActAccept)},
		{"listed", listedIP, byte(gomilter.ActReplyCode)},
	} {
		connect := func() byte {
			m := &gomilter.Modifier{Macros: map[string]string{"{client_addr}": tc.ip.String()}}
			sess := &session{srv: s, gen: g}
			resp, err := sess.Connect("["+tc.ip.String()+"]", "tcp4", 25, net.IP(tc.ip.AsSlice()), m)
			if err != nil {
				b.Fatal(err)
			}
			return resp.Response().Code
		}
		// Fill the cache, and wait for the answers fetched in the
		// background after an early decision to land in it too.
		deadline := time.Now().Add(5 * time.Second)
		for {
			if got := connect(); got != tc.want {
				b.Fatalf("%s: reply code %q, want %q", tc.name, got, tc.want)
			}
			if v := checker.Check(b.Context(), tc.ip); !v.Early && v.Results[0].Cached && v.Results[2].Cached {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: answers not cached", tc.name)
			}
			time.Sleep(time.Millisecond) // polling interval, not a wait for an event
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				connect()
			}
		})
	}
}
