package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records durations in log-linear buckets: exact below 256 ns,
// then 128 buckets per power of two, so any reported percentile is within
// 0.4% of the true sample. Memory is fixed (36 KiB) however long the run,
// and workers record concurrently with atomic adds instead of keeping
// every sample.
type histogram struct {
	buckets [histBuckets]atomic.Uint64
	count   atomic.Uint64
	sum     atomic.Uint64
	min     atomic.Uint64 // stored as ^v so that the zero value means "none yet"
	max     atomic.Uint64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	// histMaxBits caps tracked values at 2^41 ns (about 36 min); longer
	// samples land in the last bucket but still count for max and mean.
	histMaxBits = 41
	histBuckets = (histMaxBits - histSubBits) * histSub
)

// bucketOf maps a value to its bucket; consecutive values map to
// consecutive or equal buckets.
func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits - 1 // v>>e is in [histSub, 2*histSub)
	idx := (e+1)*histSub + int(v>>e) - histSub
	if idx >= histBuckets {
		return histBuckets - 1
	}
	return idx
}

// bucketBounds is the inclusive range of values in bucket idx.
func bucketBounds(idx int) (lo, hi uint64) {
	if idx < 2*histSub {
		return uint64(idx), uint64(idx)
	}
	e := idx/histSub - 1
	m := uint64(idx%histSub + histSub)
	return m << e, (m+1)<<e - 1
}

// Record adds one sample; negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.buckets[bucketOf(v)].Add(1)
	h.count.Add(1)
	h.sum.Add(v)
	for {
		old := h.max.Load()
		if v <= old || h.max.CompareAndSwap(old, v) {
			break
		}
	}
	for {
		old := h.min.Load()
		if (old != 0 && v >= ^old) || h.min.CompareAndSwap(old, ^v) {
			break
		}
	}
}

// Count is the number of samples.
func (h *histogram) Count() uint64 { return h.count.Load() }

// Max is the largest sample, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min is the smallest sample, exactly.
func (h *histogram) Min() time.Duration {
	if m := h.min.Load(); m != 0 {
		return time.Duration(^m)
	}
	return 0
}

// Mean is the exact arithmetic mean.
func (h *histogram) Mean() time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Percentile returns the nearest-rank percentile p (0 < p <= 100): the
// smallest sample such that at least p% of all samples are <= it. The value
// is the middle of its bucket, clamped to the exact min and max.
func (h *histogram) Percentile(p float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := nearestRank(p, n)
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			lo, hi := bucketBounds(i)
			v := lo + (hi-lo)/2
			return min(max(time.Duration(v), h.Min()), h.Max())
		}
	}
	return h.Max()
}

// nearestRank is the 1-based rank of percentile p among n samples:
// ceil(p/100 * n), at least 1 and at most n. p is rounded to parts per
// million first so that float error cannot push 99% of 100 to rank 100.
func nearestRank(p float64, n uint64) uint64 {
	pm := uint64(min(max(p, 0), 100)*1e4 + 0.5) // percent -> parts per million
	hi, lo := bits.Mul64(pm, n)
	r, rem := bits.Div64(hi, lo, ppm) // hi < ppm while pm <= ppm
	if rem != 0 {
		r++
	}
	return min(max(r, 1), n)
}
