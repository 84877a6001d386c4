package txtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

func TestHookCounter(t *testing.T) {
	t.Run("a hook registered in a retried body runs once", func(t *testing.T) {
		pool := newPool(t)
		hooks := txtest.NewHookCounter()
		work := tx.Then(tx.Exec("UPDATE accounts SET balance = balance - 1 WHERE id = 1"), tx.AfterCommit(hooks.Hook("email")))
		_, err := tx.Run(ctxT(t), txtest.Inject(pool, txtest.FailFirst(2)), work)
		require.NoError(t, err)
		hooks.RequireOnce(t, "email")
		require.Zero(t, hooks.Count("sms"))
	})
	t.Run("a hook inside a rolled-back savepoint does not run", func(t *testing.T) {
		pool := newPool(t)
		var hooks txtest.HookCounter // the zero value is ready
		failing := tx.Then(tx.AfterCommit(hooks.Hook("undone")), tx.Exec("SELECT 1/0"))
		work := tx.Recover(failing, func(error) tx.Tx[pgconn.CommandTag] { return tx.Pure(pgconn.CommandTag{}) })
		_, err := tx.Run(ctxT(t), txtest.Inject(pool), tx.Then(work, tx.AfterCommit(hooks.Hook("kept"))))
		require.NoError(t, err)
		hooks.RequireCount(t, "undone", 0)
		hooks.RequireOnce(t, "kept")
	})
	t.Run("RequireOnce fails for a hook that ran twice or never", func(t *testing.T) {
		var hooks txtest.HookCounter
		hooks.Hook("twice")(context.Background())
		hooks.Hook("twice")(context.Background())
		require.Equal(t, `txtest: AfterCommit hook "twice" ran 2 times, want 1`, failure(t, func(tb testing.TB) { hooks.RequireOnce(tb, "twice") }))
		require.Contains(t, failure(t, func(tb testing.TB) { hooks.RequireOnce(tb, "never") }), "ran 0 times")
	})
}
