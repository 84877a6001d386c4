package report

import (
	"bufio"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/pgxact/pgxact/bench/internal/harness"
)

// Whether a ratio near 1.0 is a difference or the host's noise.
//
// The implementations of a cell run in interleaved rounds, so each round gives one ratio of pgxact's commits/s to
// another's, measured minutes apart at most. Round ratios on a small shared host spread widely (0.7–1.3× has been
// seen in one cell), and the cell's ratio alone cannot say whether 0.96× is a loss or a draw. The median of the round
// ratios has a confidence interval that needs no assumption about their distribution beyond independent rounds:
// the sign test's, read off the sorted round ratios. A cell is then above or below 1.0 only where the whole interval
// is.

// roundLevel is the least coverage asked of the interval. It takes at least six rounds.
const roundLevel = 0.95

// roundRatios returns a's commits/s divided by b's in each round both ran, round i to round i, or nil when b committed
// nothing in one of them.
func roundRatios(a, b harness.Result) []float64 {
	n := min(len(a.Rounds), len(b.Rounds))
	xs := make([]float64, 0, n)
	for i := range n {
		y := b.Rounds[i].CommitsPerSec()
		if y <= 0 {
			return nil
		}
		xs = append(xs, a.Rounds[i].CommitsPerSec()/y)
	}
	return xs
}

// medianInterval returns the median of xs and the narrowest interval between two of its order statistics, symmetric
// in rank, that holds the true median with probability at least level (the sign-test interval), with the probability
// it has. ok is false when xs has too few values for any such interval.
func medianInterval(xs []float64, level float64) (median, lo, hi, coverage float64, ok bool) {
	n := len(xs)
	if n == 0 {
		return 0, 0, 0, 0, false
	}
	s := slices.Sorted(slices.Values(xs))
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	// [s[k], s[n-1-k]] misses the median only when at most k values lie below it or at most k above: 2·P(B ≤ k)
	// for B ~ Binomial(n, 1/2). The widest k whose miss chance stays within 1-level gives the narrowest interval.
	k := -1
	for j := 0; 2*j < n-1; j++ {
		miss := 2 * binomialHalfCDF(n, j)
		if miss > 1-level {
			break
		}
		k, coverage = j, 1-miss
	}
	if k < 0 {
		return median, 0, 0, 0, false
	}
	return median, s[k], s[n-1-k], coverage, true
}

// binomialHalfCDF is P(B ≤ k) for B ~ Binomial(n, 1/2).
func binomialHalfCDF(n, k int) float64 {
	p, term := 0.0, math.Pow(0.5, float64(n)) // term is C(n, i) / 2^n, from i = 0
	for i := 0; i <= k; i++ {
		p += term
		term = term * float64(n-i) / float64(i+1)
	}
	return p
}

// verdict says where a cell's interval lies against 1.0.
func verdict(lo, hi float64) string {
	switch {
	case lo >= 1:
		return "above 1"
	case hi < 1:
		return "**below 1**"
	}
	return "not told from 1"
}

// writeRoundVerdicts tabulates, for each cell with enough rounds, the median of pgxact's round ratios to each other
// implementation, its interval, and where that puts the cell against 1.0.
func writeRoundVerdicts(b *bufio.Writer, results []harness.Result) {
	others := slicesWithout(impls(results), reference)
	var rows []string
	_ = eachReference(results, func(wl string, n int, ref harness.Result, rs []harness.Result) error {
		var cells []string
		some := false
		for _, o := range others {
			other, _ := find(rs, o, n)
			median, lo, hi, coverage, ok := medianInterval(roundRatios(ref, other), roundLevel)
			if !ok {
				cells = append(cells, "–")
				continue
			}
			some = true
			cells = append(cells, fmt.Sprintf("%.2f× [%.2f–%.2f, %.1f %%] %s", median, lo, hi, 100*coverage,
				verdict(lo, hi)))
		}
		if some {
			rows = append(rows, fmt.Sprintf("| %s | %d | %s |", wl, n, strings.Join(cells, " | ")))
		}
		return nil
	})
	if len(rows) == 0 || len(others) == 0 {
		return
	}
	fmt.Fprintf(b, "## Round by round: a difference, or noise?\n\n")
	fmt.Fprintf(b, "Each cell is the median of pgxact's commits/s divided by the column's, round by round, then in "+
		"brackets the sign test's interval for that median and its coverage (at least %.0f %%, from the sorted "+
		"round ratios; it needs six rounds or more), then where the whole interval lies: above 1, below 1, or "+
		"across it, where this run cannot tell the two apart.\n\n", 100*roundLevel)
	fmt.Fprintf(b, "| workload | workers | %s |\n", strings.Join(prefixed(others, "vs "), " | "))
	fmt.Fprintf(b, "|---|--:|%s\n", strings.Repeat("--:|", len(others)))
	for _, r := range rows {
		fmt.Fprintln(b, r)
	}
	fmt.Fprintln(b)
}
