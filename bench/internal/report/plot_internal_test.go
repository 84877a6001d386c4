package report

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/plotter"

	"github.com/pgxact/pgxact/bench/internal/harness"
)

// A line joins its points in order, so they must be sorted by worker count whatever the order of -workers.
func TestLinePointsAreInOrderOfWorkers(t *testing.T) {
	commits := metrics[0]
	for _, c := range []struct {
		name    string
		workers []int
	}{
		{"workers given in order", []int{1, 2, 4}},
		{"workers given out of order", []int{4, 1, 2}},
		{"workers given in reverse", []int{4, 2, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rs []harness.Result
			for _, n := range c.workers {
				for _, im := range []string{"pgxact", "pgx"} {
					rs = append(rs, harness.Result{Workload: "single", Impl: im, Workers: n, Elapsed: time.Second,
						Commits: int64(10 * n)})
				}
			}
			want := plotter.XYs{{X: 1, Y: 10}, {X: 2, Y: 20}, {X: 4, Y: 40}}
			require.Equal(t, want, linePoints(rs, "pgxact", commits))
			require.Equal(t, want, linePoints(rs, "pgx", commits))
		})
	}
}
