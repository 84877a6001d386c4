package tx_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

const insertNote = "INSERT INTO log (note) VALUES ($1)"

// TestFuncTxIsClosedOnceItsFunctionReturns: the pgx.Tx that Func hands out, and every savepoint handle begun from it
// and left open, refuse every call with pgx.ErrTxClosed once the function has returned, as pgx's own Tx does once
// it has ended: the connection is back in the pool by then (or busy with the next step of the work), and a kept
// handle would run its statements there, outside the transaction.
func TestFuncTxIsClosedOnceItsFunctionReturns(t *testing.T) {
	cases := []struct {
		name string
		use  func(ctx context.Context, q pgx.Tx) error
	}{
		{"Exec", func(ctx context.Context, q pgx.Tx) error {
			_, err := q.Exec(ctx, insertNote, "late")
			return err
		}},
		{"Query", func(ctx context.Context, q pgx.Tx) error {
			rows, _ := q.Query(ctx, insertNote+" RETURNING id", "late") // pgx lets the error be read from the rows
			_, err := pgx.CollectRows(rows, pgx.RowTo[int])
			return err
		}},
		{"QueryRow", func(ctx context.Context, q pgx.Tx) error {
			var id int
			return q.QueryRow(ctx, insertNote+" RETURNING id", "late").Scan(&id)
		}},
		{"SendBatch", func(ctx context.Context, q pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue(insertNote, "late")
			return q.SendBatch(ctx, b).Close()
		}},
		{"CopyFrom", func(ctx context.Context, q pgx.Tx) error {
			_, err := q.CopyFrom(ctx, pgx.Identifier{"log"}, []string{"note"}, pgx.CopyFromRows([][]any{{"late"}}))
			return err
		}},
		{"Prepare", func(ctx context.Context, q pgx.Tx) error {
			_, err := q.Prepare(ctx, "late", insertNote)
			return err
		}},
		{"Begin", func(ctx context.Context, q pgx.Tx) error {
			_, err := q.Begin(ctx)
			return err
		}},
		{"LargeObjects", func(ctx context.Context, q pgx.Tx) error {
			lo := q.LargeObjects()
			_, err := lo.Create(ctx, 0)
			return err
		}},
		{"Commit", func(ctx context.Context, q pgx.Tx) error { return q.Commit(ctx) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, kept := range []string{"top level", "savepoint left open"} {
				pool := newPool(t, 1)
				ctx := ctxT(t)
				var q pgx.Tx
				_, err := tx.Run(ctx, pool, tx.Func(func(ctx context.Context, top pgx.Tx) (int, error) {
					q = top
					if kept == "savepoint left open" {
						sp, err := top.Begin(ctx)
						q = sp
						return 0, err
					}
					return 0, nil
				}))
				require.NoError(t, err)

				require.ErrorIs(t, c.use(ctx, q), pgx.ErrTxClosed, kept)
				require.Zero(t, count(t, pool, "SELECT count(*)::int FROM log"),
					"%s: a statement ran outside the transaction", kept)
				require.Zero(t, count(t, pool, "SELECT count(*)::int FROM pg_largeobject_metadata"), kept)
				require.NotNil(t, q.Conn(), "Conn still answers, as pgx's Tx does once ended")
			}
		})
	}
	t.Run("by a later Func of the same work", func(t *testing.T) {
		pool := newPool(t, 1)
		var kept pgx.Tx
		first := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			kept = q
			return 0, nil
		})
		second := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			_, err := kept.Exec(ctx, insertNote, "through the old handle")
			require.ErrorIs(t, err, pgx.ErrTxClosed)
			_, err = q.Exec(ctx, insertNote, "through its own")
			return 0, err
		})
		_, err := tx.Run(ctxT(t), pool, tx.Then(first, second))
		require.NoError(t, err)
		require.Equal(t, []string{"through its own"}, notes(t, pool))
	})
}

// TestLargeObjectsOnALostConnectionAreRetried: the connection is lost before COMMIT, and the work then asks for its
// large objects. That is an error like any other statement's on a lost connection, which Run retries; it was a panic.
func TestLargeObjectsOnALostConnectionAreRetried(t *testing.T) {
	pool := newPool(t, 1)
	ctx := ctxT(t)
	other := connTo(t, pool)
	attempts := 0
	work := tx.Func(func(ctx context.Context, q pgx.Tx) (uint32, error) {
		attempts++
		if attempts == 1 {
			var pid int
			if err := q.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				return 0, err
			}
			if _, err := other.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
				return 0, err
			}
		}
		lo := q.LargeObjects()
		return lo.Create(ctx, 0)
	})
	var oid uint32
	var err error
	require.NotPanics(t, func() { oid, err = tx.Run(ctx, pool, work) })
	require.NoError(t, err, "a connection lost before COMMIT is retried")
	require.Equal(t, 2, attempts)
	require.Equal(t, 1, count(t, pool, "SELECT count(*)::int FROM pg_largeobject_metadata WHERE oid = $1", oid))
}

// TestLargeObjectsLayout: Func's pgx.Tx makes its pgx.LargeObjects by setting the one field pgx keeps unexported (see
// largeObjectsOver). A pgx that changes the struct must fail here, with a message that says why, first.
func TestLargeObjectsLayout(t *testing.T) {
	const changed = "pgx.LargeObjects changed: tx.largeObjectsOver needs updating"
	lo := reflect.TypeFor[pgx.LargeObjects]()
	require.Equal(t, 1, lo.NumField(), changed)
	require.Equal(t, reflect.TypeFor[pgx.Tx](), lo.Field(0).Type, changed)
}

// TestTransactionControlInFunc: COMMIT AND CHAIN and ROLLBACK AND CHAIN leave the connection in a transaction (the
// next one, begun at once), so only the command tags of Func's statements tell that the work's transaction ended,
// however they were read. The work must then end with ErrTxControl, never be run again (what COMMIT AND CHAIN
// committed would be applied twice), nor succeed (what ROLLBACK AND CHAIN dropped would be lost silently).
// ROLLBACK TO SAVEPOINT answers with the same tag as ROLLBACK and must not count.
func TestTransactionControlInFunc(t *testing.T) {
	exec := func(sql string) func(context.Context, pgx.Tx) error {
		return func(ctx context.Context, q pgx.Tx) error {
			_, err := q.Exec(ctx, sql)
			return err
		}
	}
	batch := func(read func(pgx.BatchResults) error) func(context.Context, pgx.Tx) error {
		return func(ctx context.Context, q pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			b.Queue("COMMIT AND CHAIN")
			br := q.SendBatch(ctx, b)
			err := read(br)
			if cerr := br.Close(); err == nil {
				err = cerr
			}
			return err
		}
	}
	cases := []struct {
		name    string
		end     func(context.Context, pgx.Tx) error // runs after account 1 is credited
		control bool                                // the transaction ended: ErrTxControl
		want    int                                 // account 1's balance after, from 100
	}{
		{"COMMIT AND CHAIN through Exec", exec("COMMIT AND CHAIN"), true, 101},
		{"ROLLBACK AND CHAIN through Exec", exec("ROLLBACK AND CHAIN"), true, 100},
		{"COMMIT AND CHAIN through Query", func(ctx context.Context, q pgx.Tx) error {
			rows, err := q.Query(ctx, "COMMIT AND CHAIN")
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		}, true, 101},
		{"COMMIT AND CHAIN through QueryRow", func(ctx context.Context, q pgx.Tx) error {
			if err := q.QueryRow(ctx, "COMMIT AND CHAIN").Scan(); err != pgx.ErrNoRows {
				return err
			}
			return nil
		}, true, 101},
		{"COMMIT AND CHAIN in a batch read by Exec", batch(func(br pgx.BatchResults) error {
			_, err := br.Exec()
			if err == nil {
				_, err = br.Exec()
			}
			return err
		}), true, 101},
		{"COMMIT AND CHAIN in a batch read by Close", batch(func(pgx.BatchResults) error { return nil }), true, 101},
		{"COMMIT AND CHAIN in a batch read by a callback", func(ctx context.Context, q pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue("COMMIT AND CHAIN").Exec(func(pgconn.CommandTag) error { return nil })
			return q.SendBatch(ctx, b).Close()
		}, true, 101},
		{"ROLLBACK TO SAVEPOINT in SQL", func(ctx context.Context, q pgx.Tx) error {
			if _, err := q.Exec(ctx, "SAVEPOINT mine"); err != nil {
				return err
			}
			if _, err := q.Exec(ctx, insertNote, "undone"); err != nil {
				return err
			}
			_, err := q.Exec(ctx, "ROLLBACK TO SAVEPOINT mine")
			return err
		}, false, 101},
		{"a savepoint of Begin rolled back", func(ctx context.Context, q pgx.Tx) error {
			sp, err := q.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := sp.Exec(ctx, insertNote, "undone"); err != nil {
				return err
			}
			return sp.Rollback(ctx)
		}, false, 101},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := newPool(t, 1)
			attempts := 0
			work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				attempts++
				if _, err := q.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
					return 0, err
				}
				if err := c.end(ctx, q); err != nil {
					return 0, err
				}
				if attempts == 1 {
					return 0, &pgconn.PgError{Code: "40001", Message: "conflict"}
				}
				return 0, nil
			})
			_, err := tx.Run(ctxT(t), pool, work)
			if c.control {
				require.ErrorIs(t, err, tx.ErrTxControl)
				require.Equal(t, 1, attempts, "work that ended its transaction is never run again")
			} else {
				require.NoError(t, err)
				require.Equal(t, 2, attempts)
			}
			require.Equal(t, c.want, balance(t, pool, 1))
			require.Zero(t, count(t, pool, "SELECT count(*)::int FROM log"))
		})
	}
}

// TestFuncBatchCloseStopsAtTheFirstFailure: once a result read through the batch failed, Close runs the callbacks
// of the rest exactly as pgx's own batch does in the pool's mode (none in the default pipeline; the exec mode, used
// behind pgbouncer, runs them).
func TestFuncBatchCloseStopsAtTheFirstFailure(t *testing.T) {
	pool := newPool(t, 1)
	run := func(q pgx.Tx) bool {
		called := false
		b := &pgx.Batch{}
		b.Queue("SELECT 1")
		b.Queue("SELECT 1/0")
		b.Queue("SELECT 3").QueryRow(func(row pgx.Row) error { called = true; var n int; return row.Scan(&n) })
		br := q.SendBatch(ctxT(t), b)
		_, err := br.Exec()
		require.NoError(t, err)
		_, err = br.Exec()
		require.Error(t, err)
		require.Error(t, br.Close())
		return called
	}
	ptx, err := pool.Begin(ctxT(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = ptx.Rollback(context.Background()) }) // also when an assertion fails, or Close waits
	want := run(ptx)
	require.NoError(t, ptx.Rollback(ctxT(t)))
	if pool.Config().ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		require.False(t, want, "pgx's own pipelined batch runs no callback after a failure")
	}
	_, err = tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		require.Equal(t, want, run(q), "Func's batch as pgx's")
		return 0, nil
	}))
	require.Error(t, err, "the transaction failed")
}

// TestPreparedRollbackToInFunc: a ROLLBACK TO SAVEPOINT that Func code prepared by name and runs by that name answers
// "ROLLBACK" like the end of the transaction; its text, not its name, tells them apart.
func TestPreparedRollbackToInFunc(t *testing.T) {
	pool := newPool(t, 1)
	_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		if _, err := q.Exec(ctx, "SAVEPOINT mine"); err != nil {
			return 0, err
		}
		if _, err := q.Exec(ctx, "INSERT INTO log (note) VALUES ('undone')"); err != nil {
			return 0, err
		}
		if _, err := q.Prepare(ctx, "undo", "ROLLBACK TO SAVEPOINT mine"); err != nil {
			return 0, err
		}
		if _, err := q.Exec(ctx, "undo"); err != nil {
			return 0, err
		}
		_, err := q.Exec(ctx, "INSERT INTO log (note) VALUES ('kept')")
		return 0, err
	}))
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, notes(t, pool))
}

// A Func batch closed twice (an explicit Close, then a deferred one) judges its end once: the second Close must not
// read a status that later statements made, and take their failure, which a Recover handles, for one the batch hid.
func TestFuncBatchClosedTwiceJudgesOnce(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			_, err := pool.Exec(ctxT(t), "CREATE TABLE uniq (v int PRIMARY KEY); INSERT INTO uniq VALUES (1)")
			require.NoError(t, err)
			f := tx.Func(func(ctx context.Context, q pgx.Tx) (pgconn.CommandTag, error) {
				b := &pgx.Batch{}
				b.Queue("SELECT 'x'")
				br := q.SendBatch(ctx, b)
				defer br.Close()
				rows, err := br.Query()
				require.NoError(t, err)
				require.True(t, rows.Next())
				var n int
				require.Error(t, rows.Scan(&n), "text into int")
				_ = br.Close()                                    // the Scan's error in the pipelined modes; nil in the exec and simple ones, as pgx's
				return q.Exec(ctx, "INSERT INTO uniq VALUES (1)") // 23505, which the Recover below handles
			})
			work := tx.Then(tx.Exec(insertNote, "before"), tx.Recover(f, func(error) tx.Tx[pgconn.CommandTag] {
				return note("recovered")
			}))
			_, err = tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, []string{"before", "recovered"}, notes(t, pool))
		})
	}
}
