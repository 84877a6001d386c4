package harness_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/harness"
	"github.com/pgxact/pgxact/bench/internal/workload"
)

// updates is an Extra that runs the single workload's UPDATE n times a slice, by hand, and reports claim(n) commits.
func updates(pool *pgxpool.Pool, name string, n int64, claim func(int64) int64) harness.Extra {
	return harness.Extra{Name: name, Slice: func(ctx context.Context, workers int, d time.Duration) (harness.Result, error) {
		for i := range n {
			if _, err := pool.Exec(ctx, "UPDATE bench_items SET n = n + 1 WHERE id = $1", 1+i); err != nil {
				return harness.Result{}, err
			}
		}
		return harness.Result{Elapsed: d, Commits: claim(n), Attempts: claim(n),
			Latencies: make([]time.Duration, claim(n))}, nil
	}}
}

// An Extra gets a slice in every round, interleaved with the implementations' and after the same Reset, and the
// workload's invariant is checked against the commits it reports.
func TestExtrasRunInEveryRoundBesideTheImplementations(t *testing.T) {
	pool := newPool(t, 4)
	w := workload.Single()
	require.NoError(t, w.Setup(t.Context(), pool))
	var order []string
	res, err := harness.RunCell(t.Context(), pool, w, impls(t, "pgxact", "pgx"), harness.Options{
		Workers: 2, Duration: 90 * time.Millisecond, Rounds: 3, Seed: 1,
		Progress: func(p harness.Progress) { order = append(order, p.Impl) },
		Extras: []harness.Extra{
			updates(pool, "honest", 20, func(n int64) int64 { return n }),
			updates(pool, "boastful", 20, func(n int64) int64 { return n + 1 }),
		},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"pgxact", "pgx", "honest", "boastful"}, names(res))
	require.Equal(t, []string{
		"pgxact", "pgx", "honest", "boastful",
		"pgx", "honest", "boastful", "pgxact",
		"honest", "boastful", "pgxact", "pgx",
	}, order, "each round rotates through the implementations and the extras")
	honest, boastful := res[2], res[3]
	require.True(t, honest.InvariantOK, "the tables were not reset before each of its slices: %s", honest.Violation)
	require.Equal(t, int64(60), honest.Commits)
	require.Len(t, honest.Rounds, 3)
	require.Equal(t, 90*time.Millisecond, honest.Elapsed, "three slices of the 90 ms the cell gives each")
	require.False(t, boastful.InvariantOK, "commits the tables do not show passed the check")
	for _, r := range res[:2] {
		require.True(t, r.InvariantOK, "%s: %s", r.Impl, r.Violation)
		require.Positive(t, r.Commits, r.Impl)
	}
}

// An Extra's failure ends the cell with its error.
func TestAnExtraThatFailsFailsTheCell(t *testing.T) {
	pool := newPool(t, 4)
	w := workload.Single()
	require.NoError(t, w.Setup(t.Context(), pool))
	broken := errors.New("no such program")
	_, err := harness.RunCell(t.Context(), pool, w, impls(t, "pgx"), harness.Options{
		Workers: 1, Duration: 20 * time.Millisecond, Rounds: 1,
		Extras: []harness.Extra{{Name: "missing", Slice: func(context.Context, int, time.Duration) (harness.Result, error) {
			return harness.Result{}, broken
		}}},
	})
	require.ErrorIs(t, err, broken)
	require.ErrorContains(t, err, "missing")
}

func names(rs []harness.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Impl
	}
	return out
}
