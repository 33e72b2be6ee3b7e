package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueInOrder(t *testing.T) {
	prev := -1
	check := func(v uint64) {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d, below bucket %d of a smaller value", v, b, prev)
		}
		prev = b
		lo, hi := bucketBounds(b)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d with bounds [%d, %d]", v, b, lo, hi)
		}
		if lo > 0 && float64(hi-lo)/float64(lo) > 1.0/histSub {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its value", b, lo, hi, histSub)
		}
	}
	for v := uint64(0); v < 1<<16; v++ {
		check(v)
	}
	for v := uint64(1 << 16); v < 1<<(histMaxBits-1); v = v*1009/1000 + 1 {
		check(v)
	}
	if got := bucketOf(1 << 62); got != histBuckets-1 {
		t.Errorf("huge value in bucket %d, want the last (%d)", got, histBuckets-1)
	}
}

func TestNearestRank(t *testing.T) {
	for _, c := range []struct {
		p    float64
		n    uint64
		want uint64
	}{
		{50, 10, 5}, {90, 10, 9}, {99, 100, 99}, {99.9, 1000, 999}, {100, 7, 7},
		{0.1, 10, 1}, {50, 1, 1}, {99, 1, 1}, {50, 3, 2}, {99, 101, 100}, {0, 5, 1}, {150, 5, 5},
	} {
		if got := nearestRank(c.p, c.n); got != c.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", c.p, c.n, got, c.want)
		}
	}
}

func TestPercentilesExactForSmallValues(t *testing.T) {
	var h histogram
	for v := 100; v >= 1; v-- { // order must not matter
		h.Record(time.Duration(v))
	}
	for p, want := range map[float64]time.Duration{50: 50, 90: 90, 99: 99, 99.9: 100, 100: 100, 1: 1} {
		if got := h.Percentile(p); got != want {
			t.Errorf("p%v = %d, want %d", p, got, want)
		}
	}
	if h.Min() != 1 || h.Max() != 100 || h.Mean() != 50 || h.Count() != 100 {
		t.Errorf("min %d max %d mean %d count %d, want 1 100 50 100", h.Min(), h.Max(), h.Mean(), h.Count())
	}
}

// The histogram must agree with the exact nearest-rank percentile of the
// sorted samples within its bucket precision.
func TestPercentilesMatchSortedSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var samples []time.Duration
	for range 20000 {
		// log-uniform from 1µs to 1s, like real latencies
		d := time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*6))
		samples = append(samples, d)
		h.Record(d)
	}
	slices.Sort(samples)
	exact := func(p float64) time.Duration { return samples[nearestRank(p, uint64(len(samples)))-1] }
	for _, p := range []float64{1, 10, 50, 90, 99, 99.9, 100} {
		got, want := h.Percentile(p), exact(p)
		if diff := float64(got-want) / float64(want); diff > 1.0/histSub || diff < -1.0/histSub {
			t.Errorf("p%v = %v, exact %v: off by %.3f%%", p, got, want, diff*100)
		}
	}
	if h.Max() != samples[len(samples)-1] || h.Min() != samples[0] {
		t.Errorf("min/max %v/%v, want exact %v/%v", h.Min(), h.Max(), samples[0], samples[len(samples)-1])
	}
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	if want := sum / time.Duration(len(samples)); h.Mean() != want {
		t.Errorf("mean %v, want %v", h.Mean(), want)
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h histogram
	if h.Percentile(50) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Error("empty histogram reports non-zero figures")
	}
}

func TestHistogramConcurrentRecord(t *testing.T) {
	var h histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000 + i + 1))
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 || h.Max() != 8000 || h.Min() != 1 {
		t.Errorf("count %d max %d min %d, want 8000 8000 1", h.Count(), h.Max(), h.Min())
	}
	if got := h.Percentile(50); got < 3990 || got > 4010 {
		t.Errorf("p50 %d, want about 4000", got)
	}
}
