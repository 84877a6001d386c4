package tx_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

// Statements that must be prepared before their round trip can run: pgx's caching modes and the wire prepare them
// in a round trip of their own, where a failing Parse aborts an open transaction before anything queued behind it
// (a SAVEPOINT) has run.

// A statement pgx has run on the connection, then forgotten because it failed (its table was dropped), is prepared
// again: the SAVEPOINT of a Recover around it must go first on every Run after the drop, not only the first.
func TestRecoverAroundAStatementPgxForgot(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			ctx := ctxT(t)
			_, err := pool.Exec(ctx, "CREATE TABLE p (v int)")
			require.NoError(t, err)
			conn := connTo(t, pool)
			work := func(n string) tx.Tx[pgconn.CommandTag] {
				return tx.Then(tx.Exec("UPDATE accounts SET balance = balance WHERE id = $1", 1),
					tx.Recover(tx.Exec("INSERT INTO p VALUES ($1)", 1), func(error) tx.Tx[pgconn.CommandTag] {
						return note(n)
					}))
			}
			_, err = tx.Run(ctx, conn, work("before"))
			require.NoError(t, err)
			_, err = pool.Exec(context.Background(), "DROP TABLE p")
			require.NoError(t, err)
			for _, n := range []string{"first", "second", "third"} {
				_, err = tx.Run(ctx, conn, work(n))
				require.NoError(t, err, "the %s run after the drop", n)
			}
			require.Equal(t, []string{"first", "second", "third"}, notes(t, pool))
		})
	}
}

// DDL and its use in one round trip: the table does not exist when the statement using it would be prepared, ahead
// of the batch. The runner splits the round trip in front of it, with FuseCommit or without, and the work commits.
func TestDDLAndItsUseInOneRoundTrip(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			for _, fuse := range []bool{false, true} {
				pool := clientFailurePool(t, m.configure)
				_, err := pool.Exec(ctxT(t), "CREATE TABLE typed (c int); CREATE TABLE nt (v int); INSERT INTO nt VALUES (1)")
				require.NoError(t, err)
				works := []tx.Tx[pgconn.CommandTag]{
					tx.Then(tx.Exec("CREATE TABLE made (v int)"), tx.Exec("INSERT INTO made VALUES ($1)", 1)),
					// The literal is typed at Parse: prepared before the ALTER has run, it fails with 22P02.
					tx.Then(tx.Exec("ALTER TABLE typed ALTER COLUMN c TYPE text"), tx.Exec("INSERT INTO typed VALUES ('abc')")),
					// pgx reports the failed statement by the text its NamedArgs rewrite made.
					tx.Then(tx.Exec("CREATE TABLE named (v int)"), tx.Exec("INSERT INTO named VALUES (@v)", pgx.NamedArgs{"v": 1})),
					// The failed text, "SELECT @x FROM nt" (@ the absolute value, x the new column), is also the own
					// text of the first statement, which pgx prepared as its rewrite: the failure is the third's.
					tx.Then(tx.Exec("SELECT @x FROM nt", pgx.NamedArgs{"x": "5"}),
						tx.Then(tx.Exec("ALTER TABLE nt ADD COLUMN x int"), tx.Exec("SELECT @x FROM nt"))),
				}
				var opts []tx.Option
				if fuse {
					opts = append(opts, tx.FuseCommit())
				}
				for _, w := range works {
					_, err := tx.Run(ctxT(t), pool, w, opts...)
					require.NoError(t, err, "FuseCommit: %v", fuse)
				}
				require.Equal(t, 1, count(t, pool, "SELECT count(*) FROM made"), "FuseCommit: %v", fuse)
				require.Equal(t, 1, count(t, pool, "SELECT count(*) FROM typed"), "FuseCommit: %v", fuse)
				require.Equal(t, 1, count(t, pool, "SELECT count(*) FROM named"), "FuseCommit: %v", fuse)
			}
		})
	}
}

// The same in a transaction already open, where a Parse failing ahead of the round trip would abort it: the round
// trip is split after a statement that may change what later ones refer to.
func TestSchemaChangeAndItsUseInAnOpenTransaction(t *testing.T) {
	first := tx.Exec("UPDATE accounts SET balance = balance WHERE id = $1", 1)
	cases := []struct {
		name  string
		setup string
		then  tx.Tx[pgconn.CommandTag]
		check string
	}{
		{"create table", "", tx.Then(tx.Exec("CREATE TABLE made (v int)"), tx.Exec("INSERT INTO made VALUES ($1)", 1)),
			"SELECT count(*) FROM made"},
		{"select into", "", tx.Then(tx.Exec("SELECT 1 AS v INTO made"), tx.Exec("INSERT INTO made VALUES ($1)", 2)),
			"SELECT count(*) FROM made"},
		{"search_path", "CREATE SCHEMA other; CREATE TABLE other.elsewhere (v int)",
			tx.Then(tx.SetLocal("search_path", "other"), tx.Exec("INSERT INTO elsewhere VALUES ($1)", 1)),
			"SELECT count(*) FROM other.elsewhere"},
	}
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					pool := clientFailurePool(t, m.configure)
					if c.setup != "" {
						_, err := pool.Exec(ctxT(t), c.setup)
						require.NoError(t, err)
					}
					work := tx.Bind(first, func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] { return c.then })
					_, err := tx.Run(ctxT(t), pool, work)
					require.NoError(t, err)
					require.Positive(t, count(t, pool, c.check))
				})
			}
		})
	}
}

// A Recover's fallback after a Go-side failure (no rows), where the failed part dropped a table: the ROLLBACK TO that
// brings it back is pending, and must run before the fallback's statement, new to the connection, is prepared.
func TestFallbackAfterARollbackThatBringsATableBack(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			_, err := pool.Exec(ctxT(t), "CREATE TABLE gone (v int)")
			require.NoError(t, err)
			part := tx.Then(tx.Exec("DROP TABLE gone"), tx.QueryOne("SELECT 1 WHERE false", pgx.RowTo[int]))
			work := tx.Then(tx.Exec("UPDATE accounts SET balance = balance WHERE id = $1", 1),
				tx.Recover(part, func(error) tx.Tx[int] {
					return tx.Map(tx.Exec("INSERT INTO gone VALUES ($1)", 7), func(pgconn.CommandTag) int { return 7 })
				}))
			v, err := tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, 7, v)
			require.Equal(t, 1, count(t, pool, "SELECT count(*) FROM gone"))
		})
	}
}

// The same with the savepoint Func code makes itself (q.Begin): its ROLLBACK TO, pending when f returns, brings back
// the table that the statement after f names, and goes first.
func TestFuncSavepointRollbackBringsATableBack(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			_, err := pool.Exec(ctxT(t), "CREATE TABLE gone (v int)")
			require.NoError(t, err)
			f := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				sp, err := q.Begin(ctx)
				if err != nil {
					return 0, err
				}
				if _, err := sp.Exec(ctx, "DROP TABLE gone"); err != nil {
					return 0, err
				}
				return 0, sp.Rollback(ctx)
			})
			work := tx.Then(tx.Exec("UPDATE accounts SET balance = balance WHERE id = $1", 1),
				tx.Then(f, tx.Exec("INSERT INTO gone VALUES ($1)", 7)))
			_, err = tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, 1, count(t, pool, "SELECT count(*) FROM gone"))
		})
	}
}
