package main

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkDelayedAnswers is what a zone with delay=5ms really costs a
// client: four such zones asked in parallel with a plain miekg/dns client
// and a fresh name each time, as an engine's cold lookup asks them. The
// round trip is the delay plus the timer's lateness, the server's work and
// the UDP exchange; scripts/bench.sh's P2 target (d + 1 ms) is read
// against this figure, not against d alone (docs/performance.md).
func BenchmarkDelayedAnswers(b *testing.B) {
	b.ReportAllocs()
	var zones []zoneConfig
	for i := 1; i <= 4; i++ {
		z := testZone(b, fmt.Sprintf("k%d.test", i))
		z.Delay = 5 * time.Millisecond
		zones = append(zones, z)
	}
	_, addr := startDNS(b, zones...)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	var rounds []time.Duration
	n := 0
	for b.Loop() {
		n++
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, len(zones))
		for _, z := range zones {
			wg.Go(func() {
				m := new(dns.Msg).SetQuestion(fmt.Sprintf("%d.%d.%d.198.%s", n%256, n/256%256, 19+n/65536%2, z.Name), dns.TypeA)
				if _, _, err := c.Exchange(m, addr); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		rounds = append(rounds, time.Since(start))
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
	}
	slices.Sort(rounds)
	b.ReportMetric(float64(rounds[len(rounds)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(rounds[len(rounds)*9/10])/1e6, "p90-ms")
}
