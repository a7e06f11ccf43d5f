package config

import "strings"

// closest returns the one of names closest to name, if it is close enough
// to be what was meant, or else "". Case and dashes are not counted, so
// that max-stages finds max_stages.
func closest(name string, names []string) string {
	normal := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestDist := "", -1
	for _, n := range names {
		d := editDistance(normal(name), normal(n))
		// One edit in a short name, two in a longer one: beyond that,
		// names that merely share a prefix (IVSRT_DEV, IVSRT_ENV) would
		// pass for each other.
		limit := 2
		if len(n) <= 5 {
			limit = 1
		}
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = n, d
		}
	}
	return best
}

// didYouMean is closest as the end of a message.
func didYouMean(name string, names []string) string {
	if best := closest(name, names); best != "" {
		return ", did you mean " + best + "?"
	}
	return ""
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of neighbouring bytes that turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
