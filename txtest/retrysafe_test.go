package txtest_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

// outbox inserts an event and "publishes" it: unsafely from the body, or safely from an AfterCommit hook.
func outbox(published *atomic.Int32, safe bool) tx.Tx[struct{}] {
	insert := tx.Exec("INSERT INTO events (kind) VALUES ('order placed')")
	publish := func(context.Context) { published.Add(1) }
	if safe {
		return tx.Then(insert, tx.AfterCommit(publish))
	}
	return tx.Then(insert, tx.Func(func(ctx context.Context, _ pgx.Tx) (struct{}, error) {
		publish(ctx)
		return struct{}{}, nil
	}))
}

func TestRequireRetrySafe(t *testing.T) {
	pool := newPool(t)
	_, err := pool.Exec(ctxT(t), "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL)")
	require.NoError(t, err)
	var published atomic.Int32
	observe := func() txtest.Counts {
		var rows int
		require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&rows))
		return txtest.Counts{"published": int(published.Load()), "rows": rows}
	}

	t.Run("passes for side effects in AfterCommit hooks", func(t *testing.T) {
		require.Empty(t, failure(t, func(tb testing.TB) { txtest.RequireRetrySafe(tb, pool, outbox(&published, true), observe) }))
	})
	t.Run("fails for side effects in the body, naming them", func(t *testing.T) {
		msg := failure(t, func(tb testing.TB) { txtest.RequireRetrySafe(tb, pool, outbox(&published, false), observe) })
		require.Contains(t, msg, "side effects escaped")
		require.Contains(t, msg, "published: +1 / +2")
		require.NotContains(t, msg, "rows", "database rows are rolled back with the attempt")
	})
	t.Run("fails for work that sends no statement, which cannot be retried", func(t *testing.T) {
		msg := failure(t, func(tb testing.TB) { txtest.RequireRetrySafe(tb, pool, tx.Pure(1), observe) })
		require.Contains(t, msg, "made 1 attempts, want 2")
	})
	t.Run("fails clearly without an observe function", func(t *testing.T) {
		msg := failure(t, func(tb testing.TB) { txtest.RequireRetrySafe(tb, pool, outbox(&published, true), nil) })
		require.Contains(t, msg, "nil observe function")
	})
	t.Run("fails when a run fails", func(t *testing.T) {
		msg := failure(t, func(tb testing.TB) { txtest.RequireRetrySafe(tb, pool, tx.Exec("SELECT 1/0"), observe) })
		require.Contains(t, msg, "division by zero")
	})
}
