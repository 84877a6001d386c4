package tx_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

// clientFailurePool is a pool in one of the ways round trips are sent (the runner's wire, or pgx.Batch in its modes),
// with the accounts and log tables, and boom(i, fire), which fails with 40001 at i = 3 when fire is set.
func clientFailurePool(t *testing.T, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	pool := onePool(t, func(c *pgxpool.Config) {
		c.MaxConns = 2 // one for the transaction, one for the update that makes it fail
		if configure != nil {
			configure(c)
		}
	})
	_, err := pool.Exec(context.Background(), `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
		CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE);
		INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 2) g;
		CREATE FUNCTION boom(i int, fire bool) RETURNS int LANGUAGE plpgsql AS $$
		BEGIN IF fire AND i = 3 THEN RAISE EXCEPTION 'boom' USING ERRCODE = '40001'; END IF; RETURN i; END $$`)
	require.NoError(t, err)
	return pool
}

var sendModes = []struct {
	name      string
	configure func(*pgxpool.Config)
}{
	{"wire", nil},
	{"pgx batch, traced", func(c *pgxpool.Config) { c.ConnConfig.Tracer = &recordingTracer{} }},
	{"exec mode", func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec }},
	{"describe exec mode", func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec }},
}

// A statement that fails in the client (no rows, a Scan error, too many rows) does not stop the server, which runs the
// rest of the round trip and of the statement's rows. What it did there must count: a serialization failure must
// never be rolled back to Recover's savepoint and the work committed on the refused snapshot (the transaction is run
// again, or, where pgx does not return the server's error, Run fails), and a COMMIT in user SQL is reported.
func TestServerOutcomesAfterAClientSideFailureInTheSameRoundTripCount(t *testing.T) {
	noRows := tx.QueryOne("SELECT 1 WHERE false", pgx.RowTo[int])
	scanFails := tx.QueryOne("SELECT NULL::int", pgx.RowTo[int])
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			for _, c := range []struct {
				name string
				work func(fire bool, bump tx.Tx[int]) tx.Tx[int]
			}{
				{"no rows, then a 40001", func(_ bool, bump tx.Tx[int]) tx.Tx[int] { return tx.Then(noRows, bump) }},
				{"a Scan error, then a 40001", func(_ bool, bump tx.Tx[int]) tx.Tx[int] { return tx.Then(scanFails, bump) }},
				{"too many rows, then a 40001 in the same result", func(fire bool, _ tx.Tx[int]) tx.Tx[int] {
					return tx.QueryOne("SELECT boom(g, $1) FROM generate_series(1, 3) g", pgx.RowTo[int], fire)
				}},
			} {
				t.Run(c.name, func(t *testing.T) {
					requireNeverRecoveredOnARefusedSnapshot(t, clientFailurePool(t, m.configure), c.work)
				})
			}
			for name, failing := range map[string]tx.Tx[int]{"no rows": noRows, "a Scan error": scanFails} {
				t.Run("a COMMIT after "+name+" is reported", func(t *testing.T) {
					pool := clientFailurePool(t, m.configure)
					_, err := tx.Run(ctxT(t), pool, tx.Then(note("committed"), tx.Then(failing, tx.Exec("COMMIT"))))
					require.Equal(t, []string{"committed"}, notes(t, pool))
					require.ErrorIs(t, err, tx.ErrTxControl, "the work committed: Run must say so")
				})
			}
		})
	}
}

// requireNeverRecoveredOnARefusedSnapshot runs, under Recover, work whose first attempt meets a serialization failure
// behind a client-side failure: a committed update of account 1 after the transaction's snapshot makes its own
// update of it fail (bump), or boom fires (fire). The fallback must not commit on the first attempt.
func requireNeverRecoveredOnARefusedSnapshot(t *testing.T, pool *pgxpool.Pool, work func(fire bool, bump tx.Tx[int]) tx.Tx[int]) {
	t.Helper()
	var attempts atomic.Int32
	run := tx.Bind(tx.QueryOne("SELECT balance FROM accounts WHERE id = 2", pgx.RowTo[int]), func(int) tx.Tx[int] {
		first := attempts.Add(1) == 1
		if first {
			_, err := pool.Exec(context.Background(), "UPDATE accounts SET balance = 50 WHERE id = 1")
			require.NoError(t, err)
		}
		bump := tx.Map(tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = 1"),
			func(pgconn.CommandTag) int { return 0 })
		return tx.Recover(work(first, bump), func(error) tx.Tx[int] {
			return tx.Map(note(fmt.Sprint("fallback", attempts.Load())), func(pgconn.CommandTag) int { return -1 })
		})
	})
	_, err := tx.Run(ctxT(t), pool, run)
	if err == nil {
		require.Equal(t, int32(2), attempts.Load(), "the 40001 restarted the transaction")
		require.Equal(t, []string{"fallback2"}, notes(t, pool))
		return
	}
	t.Logf("Run failed (pgx did not return the server's error): %v", err)
	require.Empty(t, notes(t, pool), "nothing committed")
	require.Equal(t, 50, balance(t, pool, 1))
}
