package workload_test

import (
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/workload"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

// A flow's steps, run in order on one server, read their own writes; Check and Counts agree with what committed.
func TestReadHeavyFlowsReadTheirWritesOnOneServer(t *testing.T) {
	ctx, pool := t.Context(), pgtest.Pool(t)
	w := workload.ReadHeavy(3)
	require.NoError(t, w.Setup(ctx, pool))
	require.NoError(t, w.Reset(ctx, pool))
	r := rand.New(rand.NewPCG(1, 2))
	flows := []workload.Flow{w.NewFlow(), w.NewFlow()}
	const n = 200
	for i := range n {
		require.NoError(t, runStep(t, pool, flows[i%2].Next(r)))
	}
	require.NoError(t, w.Check(ctx, pool, n))
	counts := w.(workload.Counter).Counts()
	require.Greater(t, counts[workload.CountReads], int64(n/2), "about 90%% of the steps read")
	require.Less(t, counts[workload.CountReads], int64(n))
	require.Zero(t, counts[workload.CountStandbyReads], "there is no standby here")
}

// The read-your-writes check can fail: a read that finds the worker's counter below its last committed write, as
// a lagging standby would show it, fails with ErrInvariant.
func TestReadHeavyReadThatMissesItsWriteIsAViolation(t *testing.T) {
	ctx, pool := t.Context(), pgtest.Pool(t)
	w := workload.ReadHeavy(3)
	require.NoError(t, w.Setup(ctx, pool))
	r := rand.New(rand.NewPCG(3, 4))
	f := w.NewFlow()
	wrote := false
	for !wrote {
		step := f.Next(r)
		wrote = len(step.Options) == 0 // reads are the steps with options (read-only, REPEATABLE READ)
		require.NoError(t, runStep(t, pool, step))
	}
	_, err := pool.Exec(ctx, "UPDATE bench_rh_sessions SET n = n - 1")
	require.NoError(t, err)
	for {
		step := f.Next(r)
		if len(step.Options) > 0 {
			require.ErrorIs(t, runStep(t, pool, step), workload.ErrInvariant)
			return
		}
	}
}

// runStep runs a flow's step as the pgxact runners do.
func runStep(t *testing.T, pool *pgxpool.Pool, step workload.Step) error {
	t.Helper()
	if _, err := tx.Run(t.Context(), pool, step.Tx, step.Options...); err != nil {
		return err
	}
	if step.Committed != nil {
		step.Committed()
	}
	return nil
}
