// Package stats holds the figures the benchmarks print.
package stats

import (
	"slices"
	"time"
)

// Median is the middle of d (the upper one of an even count); d is not
// changed.
func Median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
