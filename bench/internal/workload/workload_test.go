package workload_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/workload"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Each checker must pass a consistent state and report a tampered one with ErrInvariant.
func TestCheckersCatchTampering(t *testing.T) {
	cases := []struct {
		name   string
		w      workload.Workload
		tamper string
	}{
		{"single", workload.Single(), "UPDATE bench_items SET n = n + 1 WHERE id = 7"},
		{"chain", workload.Chain(3), "UPDATE bench_links SET hits = hits + 1 WHERE id = 7"},
		{"transfer", workload.Transfer(workload.TransferConfig{Accounts: 4}),
			"UPDATE bench_accounts SET balance = balance + 1 WHERE id = 1"},
		{"transfer negative balance", workload.Transfer(workload.TransferConfig{Accounts: 4}),
			"UPDATE bench_accounts SET balance = CASE id WHEN 0 THEN -1 WHEN 1 THEN 2001 ELSE balance END"},
		{"readheavy", workload.ReadHeavy(3), "INSERT INTO bench_rh_sessions VALUES (999, 1)"},
		{"tpcb balance without history", workload.TPCB(1), "UPDATE pgbench_tellers SET tbalance = tbalance + 1 WHERE tid = 3"},
		{"tpcb history without balances", workload.TPCB(1),
			"INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES (1, 1, 1, 0)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, pool := t.Context(), pgtest.Pool(t)
			require.NoError(t, c.w.Setup(ctx, pool))
			require.NoError(t, c.w.Reset(ctx, pool))
			require.NoError(t, c.w.Check(ctx, pool, 0))
			_, err := pool.Exec(ctx, c.tamper)
			require.NoError(t, err)
			require.ErrorIs(t, c.w.Check(ctx, pool, 0), workload.ErrInvariant)
			require.NoError(t, c.w.Reset(ctx, pool))
			require.NoError(t, c.w.Check(ctx, pool, 0), "Reset restores the starting state")
		})
	}
}

// Both forms of a workload's transaction do the same work: n transactions of either form leave the checker content
// with n commits, and reads and chains check what they read.
func TestBothFormsCommitTheSameWork(t *testing.T) {
	ctx, pool := t.Context(), pgtest.Pool(t)
	for _, name := range append(workload.Names(), workload.Optional()...) {
		w, err := workload.New(name, workload.Config{Accounts: 3, K: 4})
		require.NoError(t, err)
		require.NoError(t, w.Setup(ctx, pool))
		forms := map[string]func(r *rand.Rand) error{
			"tx":   func(r *rand.Rand) error { _, err := tx.Run(ctx, pool, w.Tx(r)); return err },
			"body": func(r *rand.Rand) error { return runBody(ctx, pool, w.Body(r)) },
		}
		for form, run := range forms {
			t.Run(name+"/"+form, func(t *testing.T) {
				require.NoError(t, w.Reset(ctx, pool))
				r := rand.New(rand.NewPCG(1, 2))
				const n = 20
				for range n {
					require.NoError(t, run(r))
				}
				require.NoError(t, w.Check(ctx, pool, n))
			})
		}
	}
}

// runBody runs a Body the way the pgx implementation does.
func runBody(ctx context.Context, pool *pgxpool.Pool, body workload.Body) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(q pgx.Tx) error { return body(ctx, q) })
}

func TestNewRejectsBadInput(t *testing.T) {
	_, err := workload.New("nope", workload.Config{Accounts: 3, K: 1})
	require.ErrorContains(t, err, "unknown workload")
	_, err = workload.New("reads", workload.Config{Accounts: 3, K: 0})
	require.Error(t, err)
	_, err = workload.New("transfer", workload.Config{Accounts: 2, K: 1})
	require.ErrorContains(t, err, "at least 3 accounts", "two accounts cannot show a lost update in the total")
}
