package pgbench_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/pgbench"
	"github.com/pgxact/pgxact/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgbench -i makes the four tables on the pool's database, and both scripts run on them: every transaction they
// report is in the history, its deltas added to the balances, and every one has a latency in the log.
func TestInitAndRunBothScripts(t *testing.T) {
	ctx, pool := t.Context(), pgtest.Pool(t)
	c, err := pgbench.For(ctx, pool)
	require.NoError(t, err)
	require.NoError(t, c.Init(ctx, 1))
	var accounts, branches int64
	require.NoError(t, pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM pgbench_accounts), "+
		"(SELECT count(*) FROM pgbench_branches)").Scan(&accounts, &branches))
	require.Equal(t, int64(100_000), accounts)
	require.Equal(t, int64(1), branches)
	for _, script := range []pgbench.Script{pgbench.Builtin, pgbench.Pipeline} {
		_, err := pool.Exec(ctx, "TRUNCATE pgbench_history")
		require.NoError(t, err)
		var before int64
		require.NoError(t, pool.QueryRow(ctx, "SELECT sum(bbalance) FROM pgbench_branches").Scan(&before))
		r, err := c.Run(ctx, pgbench.Options{Script: script, Clients: 2, Duration: time.Second, Scale: 1})
		require.NoError(t, err)
		t.Logf("script %d: %d transactions, %.0f tps, latency average %v", script, r.Transactions, r.TPS, r.LatencyAvg)
		require.Positive(t, r.Transactions)
		require.Positive(t, r.TPS)
		require.Len(t, r.Latencies, int(r.Transactions))
		var n, deltas, after int64
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*), coalesce(sum(delta), 0), "+
			"(SELECT sum(bbalance) FROM pgbench_branches) FROM pgbench_history").Scan(&n, &deltas, &after))
		require.Equal(t, r.Transactions, n)
		require.Equal(t, deltas, after-before)
	}
}

func TestRunNeedsAClient(t *testing.T) {
	_, err := pgbench.Client{Bin: "pgbench"}.Run(t.Context(), pgbench.Options{})
	require.Error(t, err)
}
