package tx_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// A serialization failure met by Func code dooms the transaction whatever the code, or a MapError, makes of the error:
// Recover must not roll it back to its savepoint and commit on the refused snapshot.
func TestASerializationFailureInFuncCodeIsNeverRecovered(t *testing.T) {
	bump := func(wrap func(error) error) tx.Tx[int] {
		return tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			if _, err := q.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
				return 0, wrap(err)
			}
			return 0, nil
		})
	}
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			t.Run("replaced by MapError", func(t *testing.T) {
				requireNeverRecoveredOnARefusedSnapshot(t, clientFailurePool(t, m.configure), func(bool, tx.Tx[int]) tx.Tx[int] {
					return tx.MapError(bump(func(err error) error { return err }), replaced)
				})
			})
			t.Run("wrapped with %v", func(t *testing.T) {
				requireNeverRecoveredOnARefusedSnapshot(t, clientFailurePool(t, m.configure), func(bool, tx.Tx[int]) tx.Tx[int] {
					return bump(func(err error) error { return fmt.Errorf("bump: %v", err) })
				})
			})
		})
	}
}

// What MapError makes of a server failure is what Run returns and Recover sees, also for the classes that doom the
// transaction; and a read-only transaction's refused write (25006), which a savepoint undoes, is recovered.
func TestMapErrorOfAServerFailureKeepsItsResult(t *testing.T) {
	errMine := errors.New("mine")
	mapped := func(error) error { return errMine }
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			t.Run("25006", func(t *testing.T) {
				_, err := tx.Run(ctxT(t), clientFailurePool(t, m.configure), tx.Then(tx.QueryOne("SELECT 1", pgx.RowTo[int]),
					tx.MapError(note("x"), mapped)), tx.ReadOnly())
				require.ErrorIs(t, err, errMine)
			})
			t.Run("40001, not retried", func(t *testing.T) {
				_, err := tx.Run(ctxT(t), clientFailurePool(t, m.configure), tx.MapError(tx.Exec("SELECT boom(3, true)"), mapped),
					tx.WithPolicy(retry.Never()))
				require.ErrorIs(t, err, errMine)
			})
			t.Run("25006 recovered", func(t *testing.T) {
				work := tx.Then(
					tx.Recover(tx.MapError(note("audit"), mapped), func(err error) tx.Tx[pgconn.CommandTag] {
						if errors.Is(err, errMine) {
							return tx.Pure(pgconn.CommandTag{})
						}
						return tx.Fail[pgconn.CommandTag](err)
					}),
					tx.QueryOne("SELECT balance FROM accounts WHERE id = 1", pgx.RowTo[int]))
				v, err := tx.Run(ctxT(t), clientFailurePool(t, m.configure), work, tx.ReadOnly())
				require.NoError(t, err)
				require.Equal(t, 100, v)
			})
		})
	}
}

// Preparing a statement takes its table's locks, and can deadlock. A deadlock met there dooms the transaction like
// any other, though the statement never ran: Recover must not take what a MapError made of it.
func TestADeadlockWhilePreparingIsNeverRecovered(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			ctx := ctxT(t)
			_, err := pool.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (1); CREATE TABLE y (v int)")
			require.NoError(t, err)
			other := connTo(t, pool)
			var attempts atomic.Int32
			done := make(chan error, 1)
			work := tx.Bind(tx.Exec("UPDATE x SET v = v + 1"), func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] {
				if attempts.Add(1) == 1 {
					// The other transaction holds y and waits for x, which this one holds; it waits 20 s before it
					// looks for a deadlock, this one 1 s (the default): this one is the victim, when it wants y.
					_, err := other.Exec(ctx, "BEGIN; SET LOCAL deadlock_timeout = '20s'; LOCK TABLE y IN ACCESS EXCLUSIVE MODE")
					require.NoError(t, err)
					var pid int // the server's, asked in the transaction: through pgbouncer the connection's is not
					require.NoError(t, other.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
					go func() {
						_, err := other.Exec(ctx, "UPDATE x SET v = v + 10")
						if err == nil {
							_, err = other.Exec(ctx, "COMMIT")
						}
						done <- err
					}()
					require.Eventually(t, func() bool {
						return count(t, pool, "SELECT count(*)::int FROM pg_locks WHERE pid = $1 AND NOT granted", pid) > 0
					}, 10*time.Second, 20*time.Millisecond)
				}
				read := tx.Map(tx.QueryOne("SELECT count(*) FROM y", pgx.RowTo[int]), func(int) pgconn.CommandTag {
					return pgconn.CommandTag{}
				})
				return tx.Recover(tx.MapError(read, replaced), func(error) tx.Tx[pgconn.CommandTag] { return note("fallback") })
			})
			_, err = tx.Run(ctx, pool, work)
			t.Logf("Run: %v after %d attempts", err, attempts.Load())
			select {
			case err := <-done:
				require.NoError(t, err, "the other transaction went on once this one gave way")
			case <-time.After(30 * time.Second):
				t.Fatal("the other transaction is still waiting")
			}
			require.NotContains(t, notes(t, pool), "fallback", "Recover took a deadlock")
		})
	}
}

// What pgx returns to Func code may hide the server's failure (a Scan's error first, a batch callback's): the
// transaction the server failed is doomed all the same.
func TestAServerFailureHiddenFromFuncCodeIsNeverRecovered(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			t.Run("a Scan error, then a 40001 in the same result", func(t *testing.T) {
				requireNeverRecoveredOnARefusedSnapshot(t, clientFailurePool(t, m.configure), func(fire bool, _ tx.Tx[int]) tx.Tx[int] {
					return tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
						rows, err := q.Query(ctx, "SELECT boom(g, $1), NULL::int FROM generate_series(1, 3) g", fire)
						if err != nil {
							return 0, err
						}
						defer rows.Close()
						for rows.Next() {
							var a, b int
							if err := rows.Scan(&a, &b); err != nil {
								return 0, err
							}
						}
						return 0, rows.Err()
					})
				})
			})
			t.Run("a batch callback's error, then a 40001", func(t *testing.T) {
				requireNeverRecoveredOnARefusedSnapshot(t, clientFailurePool(t, m.configure), func(fire bool, _ tx.Tx[int]) tx.Tx[int] {
					return tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
						b := &pgx.Batch{}
						b.Queue("SELECT 1").QueryRow(func(pgx.Row) error { return errors.New("a check in the client") })
						b.Queue("SELECT boom(3, $1)", fire)
						return 0, q.SendBatch(ctx, b).Close()
					})
				})
			})
		})
	}
}

// A deadlock or serialization failure dooms the transaction even when Func code rolls back a savepoint of its own
// over it (deferred, as pgx code does, or to handle it): Run restarts the transaction rather than going on, and a
// later Recover does not take what follows from it. Here the deadlock happens on the first attempt only.
func TestAFailureUnderAFuncSavepointStillRestarts(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			ctx := ctxT(t)
			_, err := pool.Exec(ctx, `CREATE SEQUENCE calls;
				CREATE FUNCTION deadlocks_once() RETURNS int LANGUAGE plpgsql AS $$
				BEGIN IF nextval('calls') = 1 THEN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END IF;
				RETURN 1; END $$;
				INSERT INTO log (note) VALUES ('taken')`)
			require.NoError(t, err)
			var attempts atomic.Int32
			handled := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				attempts.Add(1)
				sp, err := q.Begin(ctx)
				if err != nil {
					return 0, err
				}
				defer sp.Rollback(ctx) //nolint:errcheck // after Commit it reports ErrTxClosed
				if _, err := sp.Exec(ctx, "SELECT deadlocks_once()"); err != nil {
					return 0, sp.Rollback(ctx) // handled, as its code sees it
				}
				return 0, sp.Commit(ctx)
			})
			insertOrNote := tx.Recover(note("taken"), func(error) tx.Tx[pgconn.CommandTag] { return note("fallback") })
			_, err = tx.Run(ctx, pool, tx.Then(handled, insertOrNote))
			require.NoError(t, err)
			require.Equal(t, int32(2), attempts.Load(), "the deadlock restarted the transaction")
			require.Equal(t, []string{"taken", "fallback"}, notes(t, pool), "the second attempt's Recover took the 23505")
		})
	}
}

// A deferred Rollback of Func code's own savepoint, on the way out with the failure it wrapped, must not make a
// serialization failure recoverable.
func TestADeferredSavepointRollbackKeepsTheDoom(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			requireNeverRecoveredOnARefusedSnapshot(t, clientFailurePool(t, m.configure), func(bool, tx.Tx[int]) tx.Tx[int] {
				return tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					sp, err := q.Begin(ctx)
					if err != nil {
						return 0, err
					}
					defer sp.Rollback(ctx) //nolint:errcheck // after Commit it reports ErrTxClosed
					if _, err := sp.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
						return 0, fmt.Errorf("bump: %v", err)
					}
					return 0, sp.Commit(ctx)
				})
			})
		})
	}
}

// A batch callback that makes a domain error of its statement's 23505 is an ordinary mapping: Recover takes it.
func TestABatchCallbackMappingAServerFailureIsRecovered(t *testing.T) {
	errDup := errors.New("duplicate")
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			_, err := pool.Exec(context.Background(), "INSERT INTO log (note) VALUES ('dup')")
			require.NoError(t, err)
			insert := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				b := &pgx.Batch{}
				b.Queue("INSERT INTO log (note) VALUES ('dup') RETURNING id").QueryRow(asDuplicate(errDup))
				return 0, q.SendBatch(ctx, b).Close()
			})
			work := tx.Recover(insert, func(err error) tx.Tx[int] {
				if !errors.Is(err, errDup) {
					return tx.Fail[int](err)
				}
				return tx.Map(note("fallback"), func(pgconn.CommandTag) int { return -1 })
			})
			_, err = tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, []string{"dup", "fallback"}, notes(t, pool))
		})
	}
}

// Func code that ignores a statement's serialization failure meets 25P02 at its next statement: Run restarts on the
// serialization failure, not fails on the 25P02.
func TestASerializationFailureIgnoredByFuncCodeRestarts(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			var attempts atomic.Int32
			work := tx.Bind(tx.QueryOne("SELECT 1", pgx.RowTo[int]), func(int) tx.Tx[int] {
				fire := attempts.Add(1) == 1
				return tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					_, _ = q.Exec(ctx, "SELECT boom(3, $1)", fire) // best effort, as its code sees it
					var n int
					return n, q.QueryRow(ctx, "SELECT 2").Scan(&n)
				})
			})
			v, err := tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, 2, v)
			require.Equal(t, int32(2), attempts.Load())
		})
	}
}

// A MapError that replaces a serialization failure restarts the transaction whatever the shape of the Tx under it.
func TestAMappedSerializationFailureRestartsWhateverTheShape(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			for name, mk := range map[string]func(fire bool) tx.Tx[pgconn.CommandTag]{
				"a statement": func(fire bool) tx.Tx[pgconn.CommandTag] {
					return tx.MapError(tx.Exec("SELECT boom(3, $1)", fire), replaced)
				},
				"a Bind": func(fire bool) tx.Tx[pgconn.CommandTag] {
					return tx.MapError(tx.Bind(tx.Exec("SELECT boom(3, $1)", fire), tx.Pure[pgconn.CommandTag]), replaced)
				},
				"a Func": func(fire bool) tx.Tx[pgconn.CommandTag] {
					return tx.MapError(tx.Func(func(ctx context.Context, q pgx.Tx) (pgconn.CommandTag, error) {
						return q.Exec(ctx, "SELECT boom(3, $1)", fire)
					}), replaced)
				},
			} {
				t.Run(name, func(t *testing.T) {
					pool := clientFailurePool(t, m.configure)
					var attempts atomic.Int32
					work := tx.Bind(tx.QueryOne("SELECT 1", pgx.RowTo[int]), func(int) tx.Tx[pgconn.CommandTag] {
						return mk(attempts.Add(1) == 1)
					})
					_, err := tx.Run(ctxT(t), pool, work)
					require.NoError(t, err)
					require.Equal(t, int32(2), attempts.Load(), "restarted once")
				})
			}
		})
	}
}

// Rows that failed in the client and are closed later (deferred) are judged when they failed, not by the status
// statements sent since left: a later 23505 is recovered.
func TestRowsClosedLaterAreJudgedWhenTheyFailed(t *testing.T) {
	pool := clientFailurePool(t, nil)
	work := tx.Func(func(ctx context.Context, q pgx.Tx) (string, error) {
		rows, err := q.Query(ctx, "SELECT 'not a number'::text")
		if err != nil {
			return "", err
		}
		defer rows.Close()
		for rows.Next() {
			var n int
			if rows.Scan(&n) != nil {
				break // a bad row: skip the lookup
			}
		}
		_, err = q.Exec(ctx, "INSERT INTO log (note) VALUES ('a')")
		return "inserted", err
	})
	recovered := tx.Recover(work, func(err error) tx.Tx[string] {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return tx.Pure("dup")
		}
		return tx.Fail[string](err)
	})
	v, err := tx.Run(ctxT(t), pool, tx.Bind(note("a"), func(pgconn.CommandTag) tx.Tx[string] { return recovered }))
	require.NoError(t, err)
	require.Equal(t, "dup", v)
}

// A server failure of the work's own, after a serialization failure its code handled under a savepoint, is what Run
// reports, reachable with errors.As, and decides the retry as before.
func TestTheWorksOwnServerFailureDecidesAfterAHandledDoom(t *testing.T) {
	pool := clientFailurePool(t, nil)
	_, err := pool.Exec(context.Background(), "INSERT INTO log (note) VALUES ('a')")
	require.NoError(t, err)
	attempts := 0
	work := tx.Func(func(ctx context.Context, q pgx.Tx) (string, error) {
		attempts++
		sp, err := q.Begin(ctx)
		if err != nil {
			return "", err
		}
		if _, err := sp.Exec(ctx, "SELECT boom(3, true)"); err != nil {
			_ = sp.Rollback(ctx)
		} else {
			_ = sp.Commit(ctx)
		}
		_, err = q.Exec(ctx, "INSERT INTO log (note) VALUES ('a')")
		return "inserted", err
	})
	_, err = tx.Run(ctxT(t), pool, work)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "23505", pgErr.Code)
	require.Equal(t, 1, attempts, "a unique violation is not retried by default")
}

// Func code reading rows of a pgx.Batch meets a Scan error; the server then fails the same result with a serialization
// failure, which pgx's batch drops for the Scan's error. Read as rows, as one row, or in a callback, it dooms the
// transaction: Recover does not take it.
func TestAServerFailureHiddenInFuncBatchRowsIsNeverRecovered(t *testing.T) {
	const sql = "SELECT boom(g, $1), NULL::int FROM generate_series(1, 3) g"
	reads := map[string]func(ctx context.Context, q pgx.Tx, fire bool) error{
		"rows": func(ctx context.Context, q pgx.Tx, fire bool) error {
			b := &pgx.Batch{}
			b.Queue(sql, fire)
			br := q.SendBatch(ctx, b)
			defer br.Close()
			rows, err := br.Query()
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var a, b int
				if err := rows.Scan(&a, &b); err != nil {
					return err
				}
			}
			return rows.Err()
		},
		"one row": func(ctx context.Context, q pgx.Tx, fire bool) error {
			b := &pgx.Batch{}
			b.Queue(sql, fire)
			br := q.SendBatch(ctx, b)
			var a, c int
			err := br.QueryRow().Scan(&a, &c)
			if cerr := br.Close(); err == nil {
				err = cerr
			}
			return err
		},
		"a callback": func(ctx context.Context, q pgx.Tx, fire bool) error {
			b := &pgx.Batch{}
			b.Queue(sql, fire).QueryRow(func(row pgx.Row) error {
				var a, c int
				return row.Scan(&a, &c)
			})
			return q.SendBatch(ctx, b).Close()
		},
	}
	for _, m := range sendModes {
		for name, read := range reads {
			t.Run(m.name+"/"+name, func(t *testing.T) {
				requireNeverRecoveredOnARefusedSnapshot(t, clientFailurePool(t, m.configure), func(fire bool, _ tx.Tx[int]) tx.Tx[int] {
					return tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) { return 0, read(ctx, q, fire) })
				})
			})
		}
	}
}

// Func code that handles a serialization failure under a savepoint of its own and goes on to succeed does not commit
// on the snapshot SERIALIZABLE refused: Run restarts the transaction.
func TestWorkThatWentOnAfterADoomIsNotCommitted(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			var attempts atomic.Int32
			work := tx.Bind(tx.QueryOne("SELECT balance FROM accounts WHERE id = 2", pgx.RowTo[int]), func(int) tx.Tx[int] {
				if attempts.Add(1) == 1 { // a concurrent update of the row this snapshot predates: first updater wins
					_, err := pool.Exec(context.Background(), "UPDATE accounts SET balance = 50 WHERE id = 1")
					require.NoError(t, err)
				}
				return tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					sp, err := q.Begin(ctx)
					if err != nil {
						return 0, err
					}
					if _, err := sp.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
						_ = sp.Rollback(ctx)
						_, err = q.Exec(ctx, "INSERT INTO log (note) VALUES ($1)", fmt.Sprint("fallback ", attempts.Load()))
						return -1, err
					}
					return 0, sp.Commit(ctx)
				})
			})
			v, err := tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, 0, v)
			require.Equal(t, int32(2), attempts.Load(), "restarted once")
			require.Empty(t, notes(t, pool), "the first attempt's fallback was not committed")
			require.Equal(t, 51, balance(t, pool, 1))

			_, err = tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				sp, err := q.Begin(ctx)
				if err != nil {
					return 0, err
				}
				if _, err := sp.Exec(ctx, "SELECT boom(3, true)"); err != nil {
					return 0, sp.Rollback(ctx)
				}
				return 0, sp.Commit(ctx)
			}), tx.WithPolicy(retry.Never()))
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr, "the server's failure is reachable when the retries are spent")
			require.Equal(t, "40001", pgErr.Code)
		})
	}
}

// Under FuseCommit as without it, a MapError that replaces a serialization failure restarts the transaction, and its
// error keeps the server's when it fails for good.
func TestAMappedSerializationFailureRestartsWhenFused(t *testing.T) {
	errMine := errors.New("mine")
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			_, err := pool.Exec(context.Background(), `CREATE SEQUENCE calls;
				CREATE FUNCTION fails_once() RETURNS int LANGUAGE plpgsql AS $$
				BEGIN IF nextval('calls') = 1 THEN RAISE EXCEPTION 'once' USING ERRCODE = '40001'; END IF;
				RETURN 1; END $$`)
			require.NoError(t, err)
			bumpThen := func(sql string) tx.Tx[pgconn.CommandTag] {
				return tx.Then(tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = 1"),
					tx.MapError(tx.Exec(sql), func(error) error { return errMine }))
			}
			_, err = tx.Run(ctxT(t), pool, bumpThen("SELECT fails_once()"), tx.FuseCommit())
			require.NoError(t, err, "the mapped 40001 restarted the transaction")
			require.Equal(t, 101, balance(t, pool, 1))

			_, err = tx.Run(ctxT(t), pool, bumpThen("SELECT boom(3, true)"), tx.FuseCommit(), tx.WithPolicy(retry.Never()))
			require.ErrorIs(t, err, errMine)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr, "the server's 40001 is reachable")
			require.Equal(t, "40001", pgErr.Code)
			require.Equal(t, 101, balance(t, pool, 1))
		})
	}
}

// An argument pgx cannot encode sends nothing of its round trip: a COMMIT text queued after it never ran, and the
// failure is the encoding's, not ErrTxControl.
func TestAnUnsentCommitTextIsNotTransactionControl(t *testing.T) {
	unencodable := func() tx.Tx[pgconn.CommandTag] {
		return tx.Then(tx.Exec("INSERT INTO log (note) VALUES ($1)", make(chan int)), tx.Exec("COMMIT"))
	}
	for _, m := range sendModes {
		for name, work := range map[string]tx.Tx[pgconn.CommandTag]{
			"first round trip": unencodable(),
			"after a Bind":     tx.Bind(note("a"), func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] { return unencodable() }),
		} {
			t.Run(m.name+"/"+name, func(t *testing.T) {
				pool := clientFailurePool(t, m.configure)
				_, err := tx.Run(ctxT(t), pool, work)
				require.Error(t, err)
				require.NotErrorIs(t, err, tx.ErrTxControl, "nothing was sent: the transaction did not end")
				require.ErrorContains(t, err, "chan int")
				require.Empty(t, notes(t, pool), "nothing committed")
			})
		}
	}
}

// Func code whose batch meets no rows at a first callback and a 23505 at a second, mapped by it, handles the first
// under its own savepoint: pgx runs no callback after one has failed, and a 23505 dooms nothing, so the work
// commits.
func TestACallbackAfterAFailedCallbackDoesNotRun(t *testing.T) {
	errDup := errors.New("duplicate")
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			_, err := pool.Exec(context.Background(), "INSERT INTO log (note) VALUES ('dup')")
			require.NoError(t, err)
			var second atomic.Int32
			work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				sp, err := q.Begin(ctx)
				if err != nil {
					return 0, err
				}
				b := &pgx.Batch{}
				b.Queue("SELECT 1 WHERE false").QueryRow(func(row pgx.Row) error {
					var n int
					return row.Scan(&n)
				})
				dup := asDuplicate(errDup)
				b.Queue("INSERT INTO log (note) VALUES ('dup') RETURNING id").QueryRow(func(row pgx.Row) error {
					second.Add(1)
					return dup(row)
				})
				if err := q.SendBatch(ctx, b).Close(); !errors.Is(err, pgx.ErrNoRows) {
					return 0, fmt.Errorf("want no rows, got %w", err)
				}
				if err := sp.Rollback(ctx); err != nil {
					return 0, err
				}
				_, err = q.Exec(ctx, "INSERT INTO log (note) VALUES ('after')")
				return 1, err
			})
			_, err = tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, []string{"dup", "after"}, notes(t, pool))
			require.Zero(t, second.Load(), "no callback ran after one failed, as with pgx")
		})
	}
}

// A Scan error in a batch's rows is judged on the status the batch leaves, not on the one before it: a batch that
// rolls back to Func code's own savepoint after a 23505 and then fails a Scan dooms nothing.
func TestBatchRowsAreJudgedOnTheBatchsStatus(t *testing.T) {
	pool := clientFailurePool(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec })
	_, err := pool.Exec(context.Background(), "INSERT INTO log (note) VALUES ('dup')")
	require.NoError(t, err)
	work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		if _, err := q.Exec(ctx, "SAVEPOINT mine"); err != nil {
			return 0, err
		}
		if _, err := q.Exec(ctx, "INSERT INTO log (note) VALUES ('dup')"); err == nil {
			return 0, errors.New("want a unique violation")
		}
		b := &pgx.Batch{}
		b.Queue("ROLLBACK TO SAVEPOINT mine")
		b.Queue("SELECT 'not a number'")
		br := q.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			return 0, err
		}
		var n int
		if err := br.QueryRow().Scan(&n); err == nil {
			return 0, errors.New("want a Scan error")
		}
		if err := br.Close(); err != nil {
			return 0, err
		}
		_, err := q.Exec(ctx, "INSERT INTO log (note) VALUES ('after')")
		return 1, err
	})
	_, err = tx.Run(ctxT(t), pool, work)
	require.NoError(t, err)
	require.Equal(t, []string{"dup", "after"}, notes(t, pool))
}

// asDuplicate is a batch callback that scans an id and makes errDup of a unique violation.
func asDuplicate(errDup error) func(pgx.Row) error {
	return func(row pgx.Row) error {
		var id int
		var pgErr *pgconn.PgError
		err := row.Scan(&id)
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return errDup
		}
		return err
	}
}

// A server failure that a batch returned to Func code hid nothing, whatever pgx's Close returns after it (in the exec
// mode it runs the callbacks left, whose errors are not the server's): the code rolls back its savepoint and commits.
func TestABatchFailureGivenToFuncCodeHidesNothing(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			errMine := errors.New("mine")
			work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				sp, err := q.Begin(ctx)
				if err != nil {
					return 0, err
				}
				b := &pgx.Batch{}
				b.Queue("SELECT 1/0")
				b.Queue("SELECT 3").QueryRow(func(row pgx.Row) error {
					var n int
					if row.Scan(&n) != nil {
						return errMine
					}
					return nil
				})
				br := q.SendBatch(ctx, b)
				var pgErr *pgconn.PgError
				if _, err := br.Exec(); !errors.As(err, &pgErr) || pgErr.Code != "22012" {
					return 0, fmt.Errorf("want a division by zero, got %w", err)
				}
				_ = br.Close() // pgx's, in the pool's mode
				if err := sp.Rollback(ctx); err != nil {
					return 0, err
				}
				_, err = q.Exec(ctx, "INSERT INTO log (note) VALUES ('after')")
				return 1, err
			})
			_, err := tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, []string{"after"}, notes(t, pool))
		})
	}
}
