package report

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBinomialHalfCDF(t *testing.T) {
	for _, c := range []struct {
		n, k int
		want float64
	}{
		{n: 1, k: 0, want: 0.5},
		{n: 6, k: 0, want: 1.0 / 64},
		{n: 6, k: 1, want: 7.0 / 64},
		{n: 10, k: 2, want: 56.0 / 1024},
		{n: 20, k: 5, want: 21700.0 / 1048576},
		{n: 7, k: 7, want: 1},
	} {
		require.InDelta(t, c.want, binomialHalfCDF(c.n, c.k), 1e-12, "n=%d k=%d", c.n, c.k)
	}
}

func TestMedianInterval(t *testing.T) {
	ranks := func(n int) []float64 { // n values, given out of order: n-1, n-2, ..., 0
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(n - 1 - i)
		}
		return xs
	}
	for _, c := range []struct {
		name                   string
		xs                     []float64
		median, lo, hi, covers float64
		ok                     bool
	}{
		{name: "no rounds", xs: nil},
		{name: "five rounds are too few for 95 %", xs: ranks(5), median: 2},
		{name: "six rounds: the lowest to the highest", xs: ranks(6), median: 2.5, lo: 0, hi: 5, covers: 1 - 2.0/64,
			ok: true},
		{name: "eight rounds: still the lowest to the highest", xs: ranks(8), median: 3.5, lo: 0, hi: 7,
			covers: 1 - 2.0/256, ok: true},
		{name: "ten rounds: the second lowest to the second highest", xs: ranks(10), median: 4.5, lo: 1, hi: 8,
			covers: 1 - 22.0/1024, ok: true},
		{name: "twenty rounds: the sixth lowest to the sixth highest", xs: ranks(20), median: 9.5, lo: 5, hi: 14,
			covers: 1 - 2*21700.0/1048576, ok: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			median, lo, hi, covers, ok := medianInterval(c.xs, 0.95)
			require.Equal(t, c.ok, ok)
			require.InDelta(t, c.median, median, 1e-12)
			if ok {
				require.Equal(t, []float64{c.lo, c.hi}, []float64{lo, hi})
				require.InDelta(t, c.covers, covers, 1e-12)
				require.GreaterOrEqual(t, covers, 0.95)
			}
		})
	}
}
