package tx_test

import (
	"context"
	"errors"
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

// replaced is a MapError function that keeps nothing of the error it is given.
func replaced(error) error { return errors.New("something went wrong") }

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
				// MapError may make anything of a 40001; Recover must still not take it.
				{"a 40001 that MapError replaced", func(_ bool, bump tx.Tx[int]) tx.Tx[int] {
					return tx.MapError(bump, replaced)
				}},
				{"a 40001 that MapError replaced around a Bind", func(_ bool, bump tx.Tx[int]) tx.Tx[int] {
					return tx.MapError(tx.Bind(tx.Pure(0), func(int) tx.Tx[int] { return bump }), replaced)
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
		require.NotContains(t, notes(t, pool), "fallback1", "the first attempt's fallback did not commit")
		return
	}
	t.Logf("Run failed (pgx did not return the server's error): %v", err)
	require.Empty(t, notes(t, pool), "nothing committed")
	require.Equal(t, 50, balance(t, pool, 1))
}

// A COMMIT AND CHAIN, or a COMMIT then a BEGIN, after a client-side failure leaves the connection in a transaction
// again: the status cannot tell that the work committed, the statements' texts do.
func TestACommitThatChainsAfterAClientSideFailureIsReported(t *testing.T) {
	noRows := tx.QueryOne("SELECT 1 WHERE false", pgx.RowTo[int])
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			for name, end := range map[string]tx.Tx[pgconn.CommandTag]{
				"COMMIT AND CHAIN":   tx.Exec("COMMIT AND CHAIN"),
				"COMMIT, then BEGIN": tx.Then(tx.Exec("COMMIT"), tx.Exec("BEGIN")),
			} {
				t.Run(name, func(t *testing.T) {
					pool := clientFailurePool(t, m.configure)
					_, err := tx.Run(ctxT(t), pool, tx.Then(note("committed"), tx.Then(noRows, end)))
					require.Equal(t, []string{"committed"}, notes(t, pool))
					require.ErrorIs(t, err, tx.ErrTxControl, "the work committed: Run must say so")
				})
			}
		})
	}
}

// A server's refusal that MapError turned into an error of the caller's is still the server's: Recover takes it, on
// every path a statement can go by (alone after a Bind, with a SAVEPOINT sent first, in a batch).
func TestAMappedServerErrorIsRecovered(t *testing.T) {
	errDup := errors.New("duplicate note")
	insert := func(note string) tx.Tx[string] {
		return tx.Map(tx.MapError(tx.Exec("INSERT INTO log (note) VALUES ($1)", note), func(error) error { return errDup }),
			func(pgconn.CommandTag) string { return "inserted" })
	}
	recoverDup := func(work tx.Tx[string]) tx.Tx[string] {
		return tx.Recover(work, func(err error) tx.Tx[string] {
			if errors.Is(err, errDup) {
				return tx.Pure("dup")
			}
			return tx.Fail[string](fmt.Errorf("not recovered as a duplicate: %w", err))
		})
	}
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			for name, work := range map[string]tx.Tx[string]{
				"the statement alone": recoverDup(insert("a")),
				"after a Bind": recoverDup(tx.Bind(tx.QueryOne("SELECT $1::text", pgx.RowTo[string], "a"),
					func(n string) tx.Tx[string] { return insert(n) })),
			} {
				t.Run(name, func(t *testing.T) {
					pool := clientFailurePool(t, m.configure)
					v, err := tx.Run(ctxT(t), pool, tx.Bind(note("a"), func(pgconn.CommandTag) tx.Tx[string] { return work }))
					require.NoError(t, err)
					require.Equal(t, "dup", v)
					require.Equal(t, []string{"a"}, notes(t, pool))
				})
			}
		})
	}
}

// Named arguments pgx cannot rewrite fail the round trip before anything is sent: not a transaction that ended, and
// under Recover the savepoint queued with it was never sent either.
func TestNamedArgumentsPgxCannotRewriteSendNothing(t *testing.T) {
	bad := tx.Exec("INSERT INTO log (note) VALUES (@n)", pgx.StrictNamedArgs{"m": "x"})
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			t.Run("first round trip", func(t *testing.T) {
				_, err := tx.Run(ctxT(t), clientFailurePool(t, m.configure), bad)
				require.ErrorContains(t, err, "StrictNamedArgs")
				require.NotErrorIs(t, err, tx.ErrTxControl)
			})
			t.Run("under Recover", func(t *testing.T) {
				pool := clientFailurePool(t, m.configure)
				_, err := tx.Run(ctxT(t), pool, tx.Then(note("a"),
					tx.Recover(bad, func(error) tx.Tx[pgconn.CommandTag] { return note("b") })))
				require.NoError(t, err)
				require.Equal(t, []string{"a", "b"}, notes(t, pool))
			})
		})
	}
}

// jsonDoc is a Go value pgx encodes for a jsonb parameter once the server has described it, but that an encoding
// without parameter types refuses.
type jsonDoc struct {
	N string `json:"n"`
}

// A round trip whose first statement fails in the client (no rows) went out whole, whatever a later statement's
// arguments would do in another mode: Recover rolls back what the server ran of it, and the failure names the
// statement that failed.
func TestAFailedFirstReadIsNotTakenForNothingSent(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, func(c *pgxpool.Config) {
				if m.configure != nil {
					m.configure(c)
				}
				c.MaxConns = 1 // the second Run finds the texts known to the connection
			})
			var recovered error
			work := func(found bool, note string) tx.Tx[int] {
				return tx.Bind(tx.QueryOne("SELECT 1", pgx.RowTo[int]), func(int) tx.Tx[int] {
					insert := tx.Exec("INSERT INTO log (note) SELECT $1::jsonb->>'n'", jsonDoc{N: note})
					return tx.Recover(
						tx.Then(tx.QueryOne("SELECT 1 WHERE $1", pgx.RowTo[int], found),
							tx.Map(insert, func(pgconn.CommandTag) int { return 0 })),
						func(err error) tx.Tx[int] { recovered = err; return tx.Pure(-1) })
				})
			}
			v, err := tx.Run(ctxT(t), pool, work(true, "first"))
			require.NoError(t, err)
			var se *tx.StatementError
			if pool.Config().ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeExec {
				// (the exec mode, also behind pgbouncer) Without parameter types pgx cannot encode the struct: nothing was sent, and the failure names the
				// statement it could not encode.
				require.Equal(t, -1, v)
				require.ErrorAs(t, recovered, &se)
				require.Contains(t, se.SQL, "INSERT")
				require.Empty(t, notes(t, pool))
				return
			}
			require.Equal(t, 0, v)
			v, err = tx.Run(ctxT(t), pool, work(false, "second"))
			require.NoError(t, err)
			require.Equal(t, -1, v)
			require.ErrorIs(t, recovered, pgx.ErrNoRows)
			require.ErrorAs(t, recovered, &se)
			require.Contains(t, se.SQL, "WHERE $1", "the statement that failed is named")
			require.Equal(t, []string{"first"}, notes(t, pool), "Recover rolled back the failed work")
		})
	}
}
