package harness_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/harness"
	"github.com/pgxact/pgxact/bench/internal/workload"
)

// The checker must be able to fail: transfers that write absolute balances at READ COMMITTED lose updates when
// they overlap, and with 16 workers on 3 accounts, each pausing 1ms between read and write, hundreds overlap.
func TestTransferCheckerCatchesLostUpdatesAtReadCommitted(t *testing.T) {
	pool := newPool(t, 16)
	w := workload.Transfer(workload.TransferConfig{Accounts: 3, Gap: time.Millisecond})
	require.NoError(t, w.Setup(t.Context(), pool))
	began := time.Now()
	defer func() { t.Logf("cell took %v", time.Since(began)) }()
	res, err := harness.RunCell(t.Context(), pool, w, impls(t, "unsafe-rc"), harness.Options{
		Workers: 16, Duration: 500 * time.Millisecond, Rounds: 1, Seed: 1,
	})
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Positive(t, res[0].Commits)
	require.False(t, res[0].InvariantOK, "%d transfers at READ COMMITTED kept the total", res[0].Commits)
	require.Contains(t, res[0].Violation, "in all")
}

// The same load at SERIALIZABLE keeps the total, so the violation above is the isolation level's doing.
func TestTransferCheckerPassesTheSameLoadAtSerializable(t *testing.T) {
	pool := newPool(t, 16)
	w := workload.Transfer(workload.TransferConfig{Accounts: 3, Gap: time.Millisecond})
	require.NoError(t, w.Setup(t.Context(), pool))
	res, err := harness.RunCell(t.Context(), pool, w, impls(t, "pgx", "pgxact"), harness.Options{
		Workers: 16, Duration: 500 * time.Millisecond, Rounds: 1, Seed: 1,
	})
	require.NoError(t, err)
	for _, r := range res {
		require.Positive(t, r.Commits, r.Impl)
		require.True(t, r.InvariantOK, "%s: %s", r.Impl, r.Violation)
	}
}
