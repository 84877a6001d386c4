package harness_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/harness"
	"github.com/pgxact/pgxact/bench/internal/workload"
)

// readHeavyCell sets readheavy up on primary, waits for standby to have it, and runs one short cell.
func readHeavyCell(t *testing.T, primary, standby *pgxpool.Pool, pause bool, names ...string) []harness.Result {
	t.Helper()
	w := workload.ReadHeavy(3)
	require.NoError(t, w.Setup(t.Context(), primary))
	awaitReplay(t, primary, standby)
	if pause {
		_, err := standby.Exec(t.Context(), "SELECT pg_wal_replay_pause()")
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = standby.Exec(context.Background(), "SELECT pg_wal_replay_resume()") })
	}
	res, err := harness.RunCell(t.Context(), primary, w, onReplica(t, standby, names...), harness.Options{
		Workers: 4, Duration: 300 * time.Millisecond, Rounds: 2, Seed: 1,
	})
	require.NoError(t, err)
	require.Len(t, res, len(names))
	for _, r := range res {
		require.Positive(t, r.Commits, "%s committed nothing: %v", r.Impl, r.TopErrorKinds())
		t.Logf("%-24s commits=%5d errors=%4d counts=%v %v", r.Impl, r.Commits, r.Errors, r.Counts, r.TopErrorKinds())
	}
	return res
}

// With replay running, the session-routed implementation serves reads from the standby and every read sees its
// worker's writes; the primary-only one serves none there.
func TestReadHeavyWithSessionsReadsOnTheStandbyAndSeesItsWrites(t *testing.T) {
	primary := newPool(t, 8)
	standby := newStandby(t, primary)
	res := readHeavyCell(t, primary, standby, false, "pgxact", "pgxact-replica")
	for _, r := range res {
		require.True(t, r.InvariantOK, "%s: %s", r.Impl, r.Violation)
		require.Zero(t, r.Errors, "%s: %v", r.Impl, r.TopErrorKinds())
		require.Positive(t, r.Counts[workload.CountReads], r.Impl)
	}
	require.Zero(t, res[0].Counts[workload.CountStandbyReads], "pgxact uses the primary only")
	require.Positive(t, res[1].Counts[workload.CountStandbyReads], "pgxact-replica never read on the standby")
}

// The read-your-writes check must be able to fail: with replay paused on the standby, the bare Router sends a
// worker's read after its write to the standby, which has not seen it, and the cell is flagged. The same load
// through per-worker Sessions falls back to the primary and keeps the invariant.
func TestReadYourWritesCheckFlagsTheTokenlessRouterWhenReplayIsPaused(t *testing.T) {
	primary := newPool(t, 8)
	standby := newStandby(t, primary)
	res := readHeavyCell(t, primary, standby, true, "pgxact-replica-notoken", "pgxact-replica")
	require.False(t, res[0].InvariantOK, "no stale read in %d reads through the bare Router",
		res[0].Counts[workload.CountReads])
	require.Contains(t, res[0].Violation, "stale read")
	require.True(t, res[1].InvariantOK, "with sessions: %s", res[1].Violation)
	require.Zero(t, res[1].Errors, "%v", res[1].TopErrorKinds())
}
