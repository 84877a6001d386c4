package tx_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

// TestTransactionEndedInUserSQL: COMMIT, ROLLBACK (also AND CHAIN, which begins the next transaction at once, so the
// connection never looks idle) and a failure after them in the same round trip. Whatever user SQL committed must not
// run again, and the error must say that part of the work may have committed (ErrTxControl), never "nothing was
// committed".
func TestTransactionEndedInUserSQL(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name      string
		end       string
		after     tx.Tx[int]
		fuse      bool
		wantNotes []string // notes committed
		wantBal   int      // account 1's balance after, from 100
	}{
		{"COMMIT, then an error in the same round trip", "COMMIT", tx.Map(tx.Exec("SELECT 1/0"), zero), false,
			[]string{"a"}, 101},
		{"COMMIT, then a lost connection in the same round trip", "COMMIT",
			tx.Map(tx.Exec("SELECT pg_terminate_backend(pg_backend_pid())"), zero), false, []string{"a"}, 101},
		{"COMMIT AND CHAIN, then a Go error", "COMMIT AND CHAIN", tx.Fail[int](boom), false, []string{"a"}, 101},
		// The runner rolls back what ran after the chained COMMIT or ROLLBACK, unless it was fused with its own COMMIT.
		{"COMMIT AND CHAIN, then success", "COMMIT AND CHAIN", tx.Pure(0), false, []string{"a"}, 101},
		{"ROLLBACK AND CHAIN, then success", "ROLLBACK AND CHAIN", tx.Pure(0), false, nil, 100},
		{"COMMIT AND CHAIN, fused", "COMMIT AND CHAIN", tx.Pure(0), true, []string{"a", "b"}, 101},
		// "to" in a comment is no ROLLBACK TO; what ran after the ROLLBACK ran in autocommit mode.
		{"ROLLBACK with a comment saying to, fused", "ROLLBACK -- back to how it was", tx.Pure(0), true,
			[]string{"b"}, 100},
		{"ROLLBACK with a comment saying to", "ROLLBACK -- back to how it was", tx.Pure(0), false, []string{"b"}, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := newPool(t, 1)
			work := tx.Then(tx.All([]tx.Tx[pgconn.CommandTag]{
				tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = 1"), note("a"), tx.Exec(c.end)}), tx.Then(note("b"), c.after))
			opts := []tx.Option{}
			if c.fuse {
				opts = append(opts, tx.FuseCommit())
			}
			_, err := tx.Run(ctxT(t), pool, work, opts...)
			require.ErrorIs(t, err, tx.ErrTxControl)
			require.Equal(t, c.wantBal, balance(t, pool, 1), "applied once, never again")
			require.ElementsMatch(t, c.wantNotes, notes(t, pool))
		})
	}
	t.Run("ROLLBACK TO SAVEPOINT in user SQL does not end the transaction", func(t *testing.T) {
		for _, fuse := range []bool{false, true} {
			pool := newPool(t, 1)
			work := tx.All([]tx.Tx[pgconn.CommandTag]{tx.Exec("SAVEPOINT mine"), note("x"),
				tx.Exec("ROLLBACK TO mine"), note("y"), tx.Exec("RELEASE SAVEPOINT mine")})
			opts := []tx.Option{}
			if fuse {
				opts = append(opts, tx.FuseCommit())
			}
			_, err := tx.Run(ctxT(t), pool, work, opts...)
			require.NoError(t, err)
			require.Equal(t, []string{"y"}, notes(t, pool))
		}
	})
}

func zero[T any](T) int { return 0 }
