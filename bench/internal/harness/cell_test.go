package harness_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/harness"
	"github.com/pgxact/pgxact/bench/internal/impl"
	"github.com/pgxact/pgxact/bench/internal/workload"
)

func TestEveryWorkloadKeepsItsInvariantWithEverySafeImplementation(t *testing.T) {
	pool := newPool(t, 8)
	for _, name := range append(workload.Names(), workload.Optional()...) {
		t.Run(name, func(t *testing.T) {
			w, err := workload.New(name, workload.Config{Accounts: 10, K: 5})
			require.NoError(t, err)
			require.NoError(t, w.Setup(t.Context(), pool))
			ims := impls(t, append(impl.Defaults(), "pgxact-unbudgeted", "pgxact-ungated", "pgxact-fused")...)
			// 8 implementations × (100ms measured + 33ms warm-up) ≈ 1s of load per workload.
			res, err := harness.RunCell(t.Context(), pool, w, ims, harness.Options{
				Workers: 4, Duration: 100 * time.Millisecond, Rounds: 3, Seed: 1,
			})
			require.NoError(t, err)
			require.Len(t, res, len(ims))
			for i, r := range res {
				require.Equal(t, ims[i].Name, r.Impl)
				require.True(t, r.InvariantOK, "%s: %s", r.Impl, r.Violation)
				require.Positive(t, r.Commits, "%s committed nothing: %v", r.Impl, r.TopErrorKinds())
				require.GreaterOrEqual(t, r.Attempts, r.Commits+r.Errors, r.Impl)
				require.Len(t, r.Latencies, int(r.Commits), r.Impl)
				requireRoundsAddUp(t, r, 3, 4)
				t.Logf("%-16s commits=%5d attempts=%5d errors=%4d p50=%v p99=%v %v", r.Impl, r.Commits, r.Attempts,
					r.Errors, r.Percentile(50), r.Percentile(99), r.TopErrorKinds())
			}
		})
	}
}

// requireRoundsAddUp checks that r has one round per slice, that they add up to its totals, and that each slice
// left out of its figures the last transaction of each of its workers, which returned after the window.
func requireRoundsAddUp(t *testing.T, r harness.Result, rounds, workers int) {
	t.Helper()
	require.Len(t, r.Rounds, rounds, r.Impl)
	var commits, drained int64
	var elapsed time.Duration
	for _, rd := range r.Rounds {
		require.Positive(t, rd.Elapsed, r.Impl)
		// At most one per worker; fewer only when a worker started after its slice's window (33 ms here) closed.
		require.True(t, rd.Drained >= 1 && rd.Drained <= int64(workers), "%s: %d drained", r.Impl, rd.Drained)
		commits += rd.Commits
		drained += rd.Drained
		elapsed += rd.Elapsed
	}
	require.Equal(t, r.Commits, commits, r.Impl)
	require.Equal(t, r.Drained, drained, r.Impl)
	require.Equal(t, r.Elapsed, elapsed, r.Impl)
	require.Positive(t, r.Drain, r.Impl)
}
