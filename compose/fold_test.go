package compose_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/tx"
)

func TestFoldThreadsTheAccumulatorInOrder(t *testing.T) {
	pool := newPool(t)
	appendPure := func(acc string, x int) tx.Tx[string] { return tx.Pure(fmt.Sprint(acc, x)) }
	appendSQL := func(acc string, x int) tx.Tx[string] {
		return tx.QueryOne("SELECT $1 || $2::int::text", pgx.RowTo[string], acc, x)
	}
	tests := []struct {
		name string
		xs   []int
		f    func(string, int) tx.Tx[string]
		want string
	}{
		{"nil input yields init", nil, appendSQL, ">"},
		{"pure steps", []int{1, 2, 3}, appendPure, ">123"},
		{"each SQL step sees the previous result", []int{4, 5, 6}, appendSQL, ">456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tx.Run(ctxT(t), pool, compose.Fold(tt.xs, ">", tt.f))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestFoldOfTenThousandPureSteps(t *testing.T) {
	const n = 10_000
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i + 1
	}
	var depths []int
	got, err := tx.Run(ctxT(t), newPool(t), compose.Fold(xs, 0, func(acc, x int) tx.Tx[int] {
		if x == 1 || x == n {
			depths = append(depths, stackDepth())
		}
		return tx.Pure(acc + x)
	}))
	require.NoError(t, err)
	require.Equal(t, n*(n+1)/2, got)
	require.Len(t, depths, 2)
	require.Equal(t, depths[0], depths[1], "the last step runs no deeper in the stack than the first")
}

func stackDepth() int {
	pcs := make([]uintptr, 100_000)
	return runtime.Callers(0, pcs)
}

// TestFoldStartsEveryRunFromInit runs one Fold value repeatedly and concurrently: the accumulator belongs to the run.
func TestFoldStartsEveryRunFromInit(t *testing.T) {
	pool := newPool(t)
	work := compose.Fold([]int{1, 2, 3}, 10, func(acc, x int) tx.Tx[int] {
		return tx.QueryOne("SELECT $1::int + $2::int", pgx.RowTo[int], acc, x)
	})
	var wg sync.WaitGroup
	got := make([]int, 8)
	errs := make([]error, len(got))
	for g := range got {
		wg.Go(func() { got[g], errs[g] = tx.Run(ctxT(t), pool, work) })
	}
	wg.Wait()
	for g := range got {
		require.NoError(t, errs[g])
		require.Equal(t, 16, got[g])
	}
}

func TestFoldStopsAtTheFailingStepAndCommitsNothing(t *testing.T) {
	pool := newPool(t)
	var seen []int
	work := compose.Fold([]int{1, 2, 3, 4}, 0, func(acc, x int) tx.Tx[int] {
		seen = append(seen, x)
		if x == 3 {
			return tx.Fail[int](errBoom)
		}
		return tx.Map(insert(x), func(pgconn.CommandTag) int { return acc + x })
	})
	require.Empty(t, seen, "f runs only when the Tx runs")
	_, err := tx.Run(ctxT(t), pool, work)
	require.ErrorIs(t, err, errBoom)
	require.Equal(t, []int{1, 2, 3}, seen, "steps after the failure do not run")
	require.Empty(t, ids(t, pool))
}

func TestFoldDoesNotKeepTheCallersSlice(t *testing.T) {
	xs := []int{1, 2, 3}
	work := compose.Fold(xs, 0, func(acc, x int) tx.Tx[int] { return tx.Pure(acc + x) })
	xs[0] = 100
	got, err := tx.Run(ctxT(t), newPool(t), work)
	require.NoError(t, err)
	require.Equal(t, 6, got)
}

func TestFoldCostsOneRoundTripPerSQLStep(t *testing.T) {
	tc := newTripCounter(t)
	step := func(acc int, x int) tx.Tx[int] {
		return tx.Map(insert(x), func(pgconn.CommandTag) int { return acc + 1 })
	}
	// Three dependent steps: BEGIN rides with the first, then COMMIT.
	require.Equal(t, 4, runTrips(t, tc, compose.Fold([]int{1, 2, 3}, 0, step)))
}
