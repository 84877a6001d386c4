package tx_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

// A statement that fails in the client (QueryOne's no rows) does not stop the server from running the statements
// after it in the same round trip. What they did must still count: a serialization failure restarts the whole
// transaction rather than being rolled back to Recover's savepoint, and a COMMIT in user SQL is reported.
func TestServerOutcomesAfterAClientSideFailureInTheSameRoundTripCount(t *testing.T) {
	ctx := ctxT(t)
	none := tx.QueryOne("SELECT 1 WHERE false", pgx.RowTo[int])
	t.Run("a serialization failure after it restarts the transaction", func(t *testing.T) {
		pool := newPool(t, 2)
		var attempts, recovered atomic.Int32
		work := tx.Bind(tx.QueryOne("SELECT balance FROM accounts WHERE id = 2", pgx.RowTo[int]), func(int) tx.Tx[int] {
			if attempts.Add(1) == 1 { // a committed update after this transaction's snapshot: its UPDATE meets 40001
				_, err := pool.Exec(context.Background(), "UPDATE accounts SET balance = 50 WHERE id = 1")
				require.NoError(t, err)
			}
			bump := tx.Map(tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = 1"),
				func(pgconn.CommandTag) int { return 0 })
			return tx.Recover(tx.Then(none, bump), func(error) tx.Tx[int] {
				recovered.Add(1)
				return tx.Map(note("fallback"), func(pgconn.CommandTag) int { return -1 })
			})
		})
		_, err := tx.Run(ctx, pool, work)
		require.NoError(t, err)
		require.Equal(t, int32(2), attempts.Load(), "the UPDATE's 40001 must restart the transaction")
		require.Equal(t, int32(1), recovered.Load(), "only the second attempt's no rows is recovered")
		require.Equal(t, 50, balance(t, pool, 1), "the failed attempt's UPDATE was not committed")
	})
	t.Run("a COMMIT after it is reported", func(t *testing.T) {
		pool := newPool(t, 1)
		_, err := tx.Run(ctx, pool, tx.Then(note("committed"), tx.Then(none, tx.Exec("COMMIT"))))
		require.Equal(t, []string{"committed"}, notes(t, pool))
		require.ErrorIs(t, err, tx.ErrTxControl, "the work committed: Run must say so")
	})
}
