// Package dist summarizes the samples the benchmarks measure (delays):
// every sample kept and sorted, percentiles by nearest rank. It serves
// bench/ingestbench and bench/compositionbench.
package dist

import (
	"math"
	"slices"
	"time"
)

// Summary is a distribution's count, percentiles and maximum.
type Summary struct {
	N                       int
	P50, P90, P95, P99, Max time.Duration
}

// Summarize returns the summary of samples; the zero Summary if none.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return Summary{N: len(s), P50: Quantile(s, 0.5), P90: Quantile(s, 0.9), P95: Quantile(s, 0.95), P99: Quantile(s, 0.99), Max: s[len(s)-1]}
}

// Quantile is the nearest-rank p-quantile (0 < p ≤ 1) of sorted samples.
func Quantile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
