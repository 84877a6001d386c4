package tx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

// TestTxControlInFuncSQL: COMMIT or ROLLBACK sent as SQL from Func code ends the transaction behind the runner's
// back; Run must say so with ErrTxControl instead of reporting an atomic success.
func TestTxControlInFuncSQL(t *testing.T) {
	for _, sql := range []string{"COMMIT", "ROLLBACK"} {
		t.Run(sql, func(t *testing.T) {
			pool := newPool(t, 2)
			ctx := ctxT(t)
			_, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS ctl (n int)")
			require.NoError(t, err)
			work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				_, err := q.Exec(ctx, sql)
				return 0, err
			})
			_, err = tx.Run(ctx, pool, tx.Then(tx.Exec("INSERT INTO ctl VALUES (1)"), work))
			require.ErrorIs(t, err, tx.ErrTxControl)
			requireNoAcquired(t, pool)
		})
		t.Run(sql+", then an error of the work's own", func(t *testing.T) {
			// Whatever the work returns after ending the transaction, the caller must learn that statements may have
			// been committed, and nothing may be retried: not even a serialization failure.
			pool := newPool(t, 2)
			ctx := ctxT(t)
			own := &pgconn.PgError{Code: "40001", Message: "the work's own"}
			attempts := 0
			work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				attempts++
				if _, err := q.Exec(ctx, "INSERT INTO log(note) VALUES ('before')"); err != nil {
					return 0, err
				}
				if _, err := q.Exec(ctx, sql); err != nil {
					return 0, err
				}
				return 0, own
			})
			_, err := tx.Run(ctx, pool, work)
			require.ErrorIs(t, err, tx.ErrTxControl)
			require.Contains(t, err.Error(), "the work's own")
			require.Equal(t, 1, attempts, "not retried")
			requireNoAcquired(t, pool)
		})
	}
}

// TestTxControlUnderASavepoint: a COMMIT in user SQL under Recover, Nested or Retry ends the transaction and with it
// the savepoint; the error must stay ErrTxControl, not become a recovery or a failed ROLLBACK TO.
func TestTxControlUnderASavepoint(t *testing.T) {
	fallback := func(error) tx.Tx[pgconn.CommandTag] { return note("fallback") }
	cases := []struct {
		name string
		wrap func(tx.Tx[pgconn.CommandTag]) tx.Tx[pgconn.CommandTag]
	}{
		{"Recover", func(w tx.Tx[pgconn.CommandTag]) tx.Tx[pgconn.CommandTag] { return tx.Recover(w, fallback) }},
		{"Nested", tx.Nested[pgconn.CommandTag]},
		{"Retry", func(w tx.Tx[pgconn.CommandTag]) tx.Tx[pgconn.CommandTag] {
			return tx.Retry(retry.New(retry.On(retry.LockNotAvailable)), w)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := newPool(t, 1)
			work := tx.Then(note("before"), c.wrap(tx.Then(note("inner"), tx.Exec("COMMIT"))))
			_, err := tx.Run(ctxT(t), pool, work)
			require.ErrorIs(t, err, tx.ErrTxControl)
			require.NotContains(t, notes(t, pool), "fallback")
			requireNoAcquired(t, pool)
		})
	}
}

// TestConstantFailureStopsTheBatch: statements that could only run after a Fail are never sent: the whole
// transaction then costs no round trip at all, and a sequence shows that nothing after the failure ran.
func TestConstantFailureStopsTheBatch(t *testing.T) {
	tc := newTripCounter(t)
	ctx := ctxT(t)
	_, err := tc.conn.Exec(ctx, "CREATE SEQUENCE IF NOT EXISTS stop_seq")
	require.NoError(t, err)
	boom := errors.New("boom")
	next := tx.QueryOne("SELECT nextval('stop_seq')", pgx.RowTo[int64])
	cases := []struct {
		name string
		work tx.Tx[int64]
	}{
		{"Then", tx.Then(tx.Fail[int](boom), next)},
		{"All", tx.Map(tx.All([]tx.Tx[int64]{tx.Fail[int64](boom), next}), func(vs []int64) int64 { return vs[1] })},
		{"Map then Then", tx.Then(tx.Map(tx.Fail[int](boom), func(int) string { return "" }), next)},
		{"invalid SetLocal", tx.Then(tx.SetLocal("no such;name", "v"), next)},
		{"zero Tx in Then", tx.Then(tx.Tx[int]{}, next)},
		{"zero Tx in All", tx.Map(tx.All([]tx.Tx[int64]{{}, next}), func(vs []int64) int64 { return vs[1] })},
		{"zero Tx under Map", tx.Then(tx.Map(tx.Tx[int]{}, func(int) string { return "" }), next)},
		{"zero Tx under Nested", tx.Then(tx.Nested(tx.Tx[int]{}), next)},
		{"zero Tx under MapError", tx.Then(tx.MapError(tx.Tx[int]{}, func(err error) error { return err }), next)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tc.conn.Exec(ctx, "SELECT setval('stop_seq', 1, false)")
			require.NoError(t, err)
			trips := tc.measureFailing(t, func() error { _, err := tx.Run(ctx, tc.conn, c.work); return err })
			require.Zero(t, trips, "nothing may be sent")
			var called bool
			require.NoError(t, tc.conn.QueryRow(ctx, "SELECT is_called FROM stop_seq").Scan(&called))
			require.False(t, called, "the statement after the failure ran")
		})
	}
	// A failure after statements still sends those statements, and only those.
	_, err = tc.conn.Exec(ctx, "SELECT setval('stop_seq', 1, false)")
	require.NoError(t, err)
	work := tx.Then(tx.Then(tx.Exec("SELECT 1"), tx.Fail[pgconn.CommandTag](boom)), next)
	_, err = tx.Run(ctx, tc.conn, work)
	require.ErrorIs(t, err, boom)
	var called bool
	require.NoError(t, tc.conn.QueryRow(ctx, "SELECT is_called FROM stop_seq").Scan(&called))
	require.False(t, called)
}

// measureFailing counts the round trips of one call of f, which must fail.
func (tc *tripCounter) measureFailing(t *testing.T, f func() error) int {
	t.Helper()
	tc.mu.Lock()
	before := tc.trips
	tc.mu.Unlock()
	require.Error(t, f())
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.trips - before
}

// TestFuncCommitThenLostConnectionIsNotRetried: Func code that sends COMMIT and then loses the connection has
// committed its work; a retry would apply it again. The connection keeps the status of its last answer ('I' after
// that COMMIT), which still shows the transaction ended.
func TestFuncCommitThenLostConnectionIsNotRetried(t *testing.T) {
	pool := newPool(t, 1)
	ctx := ctxT(t)
	attempts := 0
	work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		attempts++
		if _, err := q.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
			return 0, err
		}
		if _, err := q.Exec(ctx, "COMMIT"); err != nil {
			return 0, err
		}
		_, err := q.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
		return 1, err
	})
	retrying := retry.New(retry.On(retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0)))
	_, err := tx.Run(ctx, pool, work, tx.WithPolicy(retrying))
	require.ErrorIs(t, err, tx.ErrTxControl)
	require.Equal(t, 1, attempts, "work that committed through SQL must not run again")
	require.Equal(t, 101, balance(t, pool, 1))
}

// Transaction control whose results Func code leaves open: the server has run it, though nothing read its answer,
// and the COMMIT of the runner cannot go out on the busy connection. Run says the transaction ended inside its work,
// not that COMMIT was not sent, which would invite running the work again.
func TestTxControlLeftOpenByFuncCode(t *testing.T) {
	leave := []struct {
		name  string
		leave func(ctx context.Context, q pgx.Tx) error
	}{
		{"rows of COMMIT", func(ctx context.Context, q pgx.Tx) error {
			_, err := q.Query(ctx, "COMMIT")
			return err
		}},
		{"rows of COMMIT AND CHAIN", func(ctx context.Context, q pgx.Tx) error {
			_, err := q.Query(ctx, "COMMIT AND CHAIN")
			return err
		}},
		{"rows of COMMIT, then a query refused as busy", func(ctx context.Context, q pgx.Tx) error {
			if _, err := q.Query(ctx, "COMMIT"); err != nil {
				return err
			}
			var n int
			return q.QueryRow(ctx, "SELECT 1").Scan(&n)
		}},
		{"rows of COMMIT, then a cached query refused as busy, its error dropped", func(ctx context.Context, q pgx.Tx) error {
			var n int
			if err := q.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil { // now in pgx's caches
				return err
			}
			if _, err := q.Query(ctx, "COMMIT"); err != nil {
				return err
			}
			_ = q.QueryRow(ctx, "SELECT 1").Scan(&n)
			return nil
		}},
		{"a batch", func(ctx context.Context, q pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO log (note) VALUES ('b')")
			b.Queue("COMMIT AND CHAIN")
			_ = q.SendBatch(ctx, b) // never closed
			return nil
		}},
		{"a batch read in part", func(ctx context.Context, q pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO log (note) VALUES ('b')")
			b.Queue("COMMIT")
			_, err := q.SendBatch(ctx, b).Exec()
			return err
		}},
	}
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			for _, l := range leave {
				t.Run(l.name, func(t *testing.T) {
					pool := clientFailurePool(t, m.configure)
					_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
						if _, err := q.Exec(ctx, "INSERT INTO log (note) VALUES ('a')"); err != nil {
							return 0, err
						}
						return 0, l.leave(ctx, q)
					}))
					require.ErrorIs(t, err, tx.ErrTxControl)
					requireNoAcquired(t, pool)
				})
			}
		})
	}
}

// Run on a *pgx.Conn whose caller has rows open on it refuses, as pgx's Begin does, and leaves the connection and the
// caller's rows alone.
func TestRunOnABusyConnRefuses(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			ctx := ctxT(t)
			c, err := pool.Acquire(ctx)
			require.NoError(t, err)
			defer c.Release()
			conn := c.Conn()
			rows, err := conn.Query(ctx, "SELECT g FROM generate_series(1, 3) g")
			require.NoError(t, err)
			_, err = tx.Run(ctx, conn, tx.Exec("INSERT INTO log (note) VALUES ($1)", "x"))
			require.ErrorIs(t, err, tx.ErrInvalid)
			require.False(t, conn.IsClosed())
			var got []int
			for rows.Next() {
				var n int
				require.NoError(t, rows.Scan(&n))
				got = append(got, n)
			}
			require.NoError(t, rows.Err())
			require.Equal(t, []int{1, 2, 3}, got)
			_, err = tx.Run(ctx, conn, tx.Exec("INSERT INTO log (note) VALUES ($1)", "y"))
			require.NoError(t, err)
			require.Equal(t, []string{"y"}, notes(t, pool))
		})
	}
}

// The same open COMMIT behind what Run would otherwise report first: a serialization failure that Func code handled
// under its own savepoint (Run would restart work that has committed), or a ctx done as the work returns (Run would
// say only that its own COMMIT was not sent).
func TestTxControlLeftOpenComesFirst(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			t.Run("after a handled 40001", func(t *testing.T) {
				pool := clientFailurePool(t, m.configure)
				attempts := 0
				_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					attempts++
					if attempts > 3 {
						return 0, nil // bounds the test when the work is restarted
					}
					sp, err := q.Begin(ctx)
					if err != nil {
						return 0, err
					}
					_, _ = sp.Exec(ctx, "SELECT boom(3, true)") // 40001, handled here
					if err := sp.Rollback(ctx); err != nil {
						return 0, err
					}
					if _, err := q.Exec(ctx, insertNote, "once"); err != nil {
						return 0, err
					}
					_, err = q.Query(ctx, "COMMIT") // left open
					return 0, err
				}))
				require.ErrorIs(t, err, tx.ErrTxControl)
				require.Equal(t, 1, attempts)
				require.Equal(t, []string{"once"}, notes(t, pool))
			})
			t.Run("ctx done", func(t *testing.T) {
				pool := clientFailurePool(t, m.configure)
				ctx, cancel := context.WithCancel(ctxT(t))
				defer cancel()
				_, err := tx.Run(ctx, pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					if _, err := q.Exec(ctx, insertNote, "a"); err != nil {
						return 0, err
					}
					_, err := q.Query(ctx, "COMMIT")
					cancel() // the caller gives up as the work returns
					return 0, err
				}))
				require.ErrorIs(t, err, tx.ErrTxControl)
			})
		})
	}
}

// A COMMIT sent as SQL whose answer the network loses (the connection cut right after it goes out): the work may
// have committed, so Run says ErrTxControl and does not run it again, even under a policy that retries lost
// connections. Warm, the COMMIT is prepared and runs; cold, the cut takes its Parse and nothing runs.
func TestTxControlWhoseAnswerIsLost(t *testing.T) {
	works := []struct {
		name string
		work tx.Tx[int]
	}{
		{"Exec", tx.Then(tx.Exec("INSERT INTO ledger VALUES ($1)", 1), tx.Then(tx.Exec("COMMIT"), tx.Pure(0)))},
		{"Func Exec", tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			if _, err := q.Exec(ctx, "INSERT INTO ledger VALUES ($1)", 1); err != nil {
				return 0, err
			}
			_, err := q.Exec(ctx, "COMMIT")
			return 0, err
		})},
		{"Func Exec, its error ignored", tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			if _, err := q.Exec(ctx, "INSERT INTO ledger VALUES ($1)", 1); err != nil {
				return 0, err
			}
			_, _ = q.Exec(ctx, "COMMIT")
			return 0, nil
		})},
		{"Func Query", tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			if _, err := q.Exec(ctx, "INSERT INTO ledger VALUES ($1)", 1); err != nil {
				return 0, err
			}
			rows, err := q.Query(ctx, "COMMIT")
			if err != nil {
				return 0, err
			}
			rows.Close()
			return 0, rows.Err()
		})},
	}
	for _, w := range works {
		for _, c := range []struct {
			warm, plain bool // plain: Run on a DB that only begins (a pgx.Tx of its own, no round trips counted)
		}{{false, false}, {true, false}, {false, true}, {true, true}} {
			t.Run(fmt.Sprintf("%s/warm=%v/plain=%v", w.name, c.warm, c.plain), func(t *testing.T) {
				pool, check, proxy := ledgerPools(t, 1)
				var db tx.DB = pool
				if c.plain {
					db = beginOnly{pool}
				}
				if c.warm {
					_, err := tx.Run(ctxT(t), db, w.work)
					require.ErrorIs(t, err, tx.ErrTxControl)
					_, err = check.Exec(ctxT(t), "DELETE FROM ledger")
					require.NoError(t, err)
				}
				proxy.SetRule(onFirstCommit(faultproxy.CutAfter))
				policy := retry.New(retry.On(retry.Serialization, retry.ConnectionLost), retry.MaxAttempts(3),
					retry.WithBackoff(retry.Constant(0)))
				_, err := tx.Run(ctxT(t), db, w.work, tx.WithPolicy(policy))
				require.Error(t, err)
				n := count(t, check, "SELECT count(*) FROM ledger")
				require.LessOrEqual(t, n, 1, "applied twice")
				if n == 1 {
					require.ErrorIs(t, err, tx.ErrTxControl, "committed, but Run says %v", err)
				}
			})
		}
	}
}

// A COMMIT first in a text of several statements, which pgx runs whole over the simple protocol and answers with the
// last statement's tag: the text tells that the transaction ended ("COMMIT; BEGIN" leaves the connection in a new
// one, whose status says nothing).
func TestTxControlFirstInSeveralStatements(t *testing.T) {
	for _, sql := range []string{"COMMIT; BEGIN", "COMMIT; SELECT 1",
		// After a routine body whose CASE ends on a number written with a trailing decimal point.
		"CREATE FUNCTION two() RETURNS numeric LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 ELSE 2. END; END; " +
			"COMMIT; BEGIN",
	} {
		t.Run(sql, func(t *testing.T) {
			pool := newPool(t, 1)
			_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				if _, err := q.Exec(ctx, insertNote, "a"); err != nil {
					return 0, err
				}
				_, err := q.Exec(ctx, sql)
				return 0, err
			}))
			require.ErrorIs(t, err, tx.ErrTxControl)
		})
	}
}

// A SQL-standard function body whose statements name a column "end" (p.end, AS end) is one statement, and a sound
// Func that creates it commits: the word END there closes no block, so no COMMIT or END is read after the body.
func TestAnAtomicBodyThatNamesEndIsNoTxControl(t *testing.T) {
	pool := newPool(t, 1)
	_, err := pool.Exec(ctxT(t), `CREATE TABLE periods (id int, "end" timestamptz)`)
	require.NoError(t, err)
	for _, sql := range []string{
		`CREATE FUNCTION last_end() RETURNS timestamptz LANGUAGE sql
			BEGIN ATOMIC SELECT p.end FROM periods p ORDER BY 1 DESC LIMIT 1; END`,
		`CREATE OR REPLACE FUNCTION last_id() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT p.id AS end FROM periods p; END`,
	} {
		_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			_, err := q.Exec(ctx, sql)
			return 0, err
		}))
		require.NoError(t, err, sql)
	}
	require.Equal(t, 2, count(t, pool, "SELECT count(*) FROM pg_proc WHERE proname IN ('last_end', 'last_id')"))
}

// A routine body whose statement selects a field named case or end (of a row in parentheses, of a parameter, of an
// array element) or labels a column with the bare keyword: the words open or close no block, so a COMMIT after the
// body is seen and a sound body is no transaction control.
func TestRoutineBodyNamingCaseOrEnd(t *testing.T) {
	const create = "CREATE FUNCTION f%d(p pair, a pair[]) RETURNS int LANGUAGE sql BEGIN ATOMIC %s; END"
	setup := func(t *testing.T, pool interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}) {
		t.Helper()
		_, err := pool.Exec(ctxT(t), `CREATE TYPE pair AS ("case" int, "end" int)`)
		require.NoError(t, err)
	}
	hiding := []string{"SELECT (p).case", "SELECT $1.case", "SELECT a[1].case", "SELECT 1 case"}
	sound := []string{"SELECT (p).end", "SELECT $1.end", "SELECT a[1].end", "SELECT 1 end", "SELECT (p).case + (p).end"}
	t.Run("a COMMIT after the body", func(t *testing.T) {
		for i, body := range hiding {
			pool := newPool(t, 1)
			setup(t, pool)
			sql := fmt.Sprintf(create, i, body) + "; COMMIT; BEGIN"
			_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				if _, err := q.Exec(ctx, insertNote, "a"); err != nil {
					return 0, err
				}
				_, err := q.Exec(ctx, sql)
				return 0, err
			}))
			require.ErrorIs(t, err, tx.ErrTxControl, "%s: committed in two transactions, Run says %v", body, err)
		}
	})
	t.Run("its answer lost", func(t *testing.T) {
		for i, body := range hiding {
			pool, check, proxy := ledgerPools(t, 1)
			setup(t, check)
			sql := fmt.Sprintf(create, i, body) + "; COMMIT"
			proxy.SetRule(cutAfterRoundTripOf(sql))
			policy := retry.New(retry.On(retry.Serialization, retry.ConnectionLost), retry.MaxAttempts(3),
				retry.WithBackoff(retry.Constant(0)))
			_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				if _, err := q.Exec(ctx, "INSERT INTO ledger VALUES ($1)", 1); err != nil {
					return 0, err
				}
				_, err := q.Exec(ctx, sql)
				return 0, err
			}), tx.WithPolicy(policy))
			n := count(t, check, "SELECT count(*) FROM ledger")
			require.LessOrEqual(t, n, 1, "%s: applied twice", body)
			if n == 1 { // (a cut may also take the text before the server reads it)
				require.ErrorIs(t, err, tx.ErrTxControl, "%s: committed, but Run says %v", body, err)
			}
		}
	})
	t.Run("a sound body", func(t *testing.T) {
		pool := newPool(t, 1)
		setup(t, pool)
		for i, body := range sound {
			sql := fmt.Sprintf(create, i, body)
			_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				_, err := q.Exec(ctx, sql)
				return 0, err
			}))
			require.NoError(t, err, "Func: %s", body)
			_, err = tx.Run(ctxT(t), pool, tx.Exec(strings.Replace(sql, "FUNCTION", "OR REPLACE FUNCTION", 1)))
			require.NoError(t, err, "Exec: %s", body)
		}
		require.Equal(t, len(sound), count(t, pool, "SELECT count(*) FROM pg_proc WHERE proname ~ '^f[0-9]$'"))
	})
}

// cutAfterRoundTripOf is a rule that cuts the connection right after the Sync (or the simple query) of the first
// round trip whose text holds sql: the server runs all of it, and its answer is lost.
func cutAfterRoundTripOf(sql string) faultproxy.Rule {
	var mu sync.Mutex
	seen, done := false, false
	return func(m faultproxy.Message) faultproxy.Action {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case done:
		case m.Type == 'Q' && strings.Contains(m.SQL, sql):
			done = true
			return faultproxy.CutAfter
		case m.Type == 'B' && strings.Contains(m.SQL, sql): // a Bind: the round trip that runs it, not one preparing it
			seen = true
		case m.Type == 'S' && seen:
			done = true
			return faultproxy.CutAfter
		}
		return faultproxy.Forward
	}
}

// Func code sends COMMIT as SQL, loses its answer with the connection, goes on, and pgx refuses its next statement
// before sending it (an argument it cannot encode): the COMMIT went out, so Run must not say nothing was committed.
func TestFuncCommitLostThenARefusedStatement(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool, check, proxy := ledgerPools(t, 1, configured(m.configure)...)
			proxy.SetRule(onFirstCommit(faultproxy.CutAfter))
			policy := retry.New(retry.On(retry.Serialization, retry.ConnectionLost), retry.MaxAttempts(3),
				retry.WithBackoff(retry.Constant(0)))
			_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				if _, err := q.Exec(ctx, "INSERT INTO ledger VALUES ($1)", 1); err != nil {
					return 0, err
				}
				_, _ = q.Exec(ctx, "COMMIT")
				b := &pgx.Batch{}
				b.Queue("INSERT INTO ledger VALUES ($1)", make(chan int))
				br := q.SendBatch(ctx, b)
				_, err := br.Exec()
				_ = br.Close()
				return 0, err
			}), tx.WithPolicy(policy))
			n := count(t, check, "SELECT count(*) FROM ledger")
			require.LessOrEqual(t, n, 1, "applied twice")
			if n == 1 {
				require.ErrorIs(t, err, tx.ErrTxControl, "committed, but Run says %v", err)
			}
		})
	}
}

// Under FuseCommit a COMMIT in user SQL goes out in the one round trip: when its answer is lost, the statements after
// it may have run on their own, read-only or not, so Run says ErrTxControl and does not run the work again.
func TestFusedTxControlWhoseAnswerIsLost(t *testing.T) {
	for _, readOnly := range []bool{true, false} {
		for _, m := range allSendModes() {
			t.Run(fmt.Sprintf("read-only=%v/%s", readOnly, m.name), func(t *testing.T) {
				pool, check, proxy := ledgerPools(t, 1, configured(m.configure)...)
				proxy.SetRule(cutAfterRoundTripOf("INSERT INTO ledger"))
				opts := []tx.Option{tx.FuseCommit(), tx.WithPolicy(retry.New(retry.On(retry.Serialization,
					retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0))))}
				if readOnly {
					opts = append(opts, tx.ReadOnly())
				}
				work := tx.Then(tx.Exec("COMMIT"), tx.Exec("INSERT INTO ledger VALUES (1)"))
				_, err := tx.Run(ctxT(t), pool, work, opts...)
				n := count(t, check, "SELECT count(*) FROM ledger")
				require.LessOrEqual(t, n, 1, "applied twice")
				require.ErrorIs(t, err, tx.ErrTxControl, "ledger rows %d", n)
			})
		}
	}
}

// configured is f as a list of pool options, empty for a nil f (the default mode).
func configured(f func(*pgxpool.Config)) []func(*pgxpool.Config) {
	if f == nil {
		return nil
	}
	return []func(*pgxpool.Config){f}
}

// A COMMIT text in a round trip that pgx refused before sending any of it (an argument it cannot encode) never ran,
// even where pgx closed the connection after refusing: Recover's fallback failing on that connection is no
// "may have committed".
func TestRefusedCommitTextIsNotSent(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool, check, _ := ledgerPools(t, 1, configured(m.configure)...)
			work := tx.Recover(
				tx.Then(tx.Exec("INSERT INTO ledger VALUES ($1)", struct{ X chan int }{}), tx.Then(tx.Exec("COMMIT"), tx.Pure(0))),
				func(error) tx.Tx[int] { return tx.Then(tx.Exec("INSERT INTO ledger VALUES (2)"), tx.Pure(0)) })
			_, err := tx.Run(ctxT(t), pool, work, tx.WithPolicy(retry.Never()))
			require.NotErrorIs(t, err, tx.ErrTxControl)
			n := count(t, check, "SELECT count(*) FROM ledger")
			if err == nil {
				require.Equal(t, 1, n, "the fallback committed")
			} else {
				require.Zero(t, n)
			}
		})
	}
}

// With standard_conforming_strings off a backslash escapes in every string, and in SJIS a character may end in the
// byte of a backslash: the runner's reading of SQL text would not be the server's, and a COMMIT after such a string
// could go unseen. Run refuses such a connection before sending anything, whichever way it gets one.
func TestUnreadableTextIsRefused(t *testing.T) {
	for _, param := range [][2]string{{"standard_conforming_strings", "off"}, {"client_encoding", "SJIS"}} {
		t.Run(param[0], func(t *testing.T) {
			pool := newPool(t, 1)
			cfg := pool.Config()
			cfg.ConnConfig.RuntimeParams[param[0]] = param[1]
			off, err := pgxpool.NewWithConfig(ctxT(t), cfg)
			require.NoError(t, err)
			t.Cleanup(off.Close)
			work := tx.Then(tx.Exec(insertNote, "a"), tx.Pure(0))
			c, err := off.Acquire(ctxT(t))
			require.NoError(t, err)
			release := sync.OnceFunc(c.Release)
			defer release() // before the pool's Close, which waits for it, on a failure too
			for name, db := range map[string]tx.DB{"conn": c.Conn(), "injector": txtest.Inject(c.Conn(), txtest.FailFirst(0))} {
				_, err = tx.Run(ctxT(t), db, work)
				require.ErrorIs(t, err, tx.ErrInvalid, name)
				require.False(t, c.Conn().IsClosed(), "%s: a caller's connection is the caller's", name)
				require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus(), name)
			}
			release()
			for name, db := range map[string]tx.DB{"pool": off, "plain db": beginOnly{off}} {
				_, err := tx.Run(ctxT(t), db, work)
				require.ErrorIs(t, err, tx.ErrInvalid, name)
				require.ErrorContains(t, err, param[0], name)
			}
			require.Zero(t, count(t, pool, "SELECT count(*) FROM log"))
			_, err = tx.Run(ctxT(t), pool, work)
			require.NoError(t, err, "with the server's defaults")
		})
	}
}

// A work that turns standard_conforming_strings off (SET LOCAL, SET, set_config) sends nothing more, and does not
// commit: what it sent after may have ended the transaction where the runner could not see it. The rollback takes
// the setting back with it, so the pooled connection serves the next Run.
func TestWorkTurningStandardStringsOff(t *testing.T) {
	sets := []string{"SET LOCAL standard_conforming_strings = off", "SET standard_conforming_strings = off",
		"SELECT set_config('standard_conforming_strings', 'off', false)"}
	for _, set := range sets {
		t.Run(set, func(t *testing.T) {
			pool := newPool(t, 1)
			then := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				if _, err := q.Exec(ctx, set); err != nil {
					return 0, err
				}
				_, err := q.Exec(ctx, `INSERT INTO log (note) VALUES ('a\''); COMMIT; BEGIN; --'`)
				return 0, err
			})
			_, err := tx.Run(ctxT(t), pool, then)
			require.ErrorIs(t, err, tx.ErrInvalid)
			require.Zero(t, count(t, pool, "SELECT count(*) FROM log"), "part of the work committed")

			quiet := tx.Then(tx.Exec(insertNote, "b"), tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				_, err := q.Exec(ctx, set)
				return 0, err
			}))
			_, err = tx.Run(ctxT(t), pool, quiet)
			require.ErrorIs(t, err, tx.ErrInvalid, "at COMMIT")
			_, err = tx.Run(ctxT(t), pool, tx.Then(tx.Exec(insertNote, "c"), tx.Pure(0)))
			require.NoError(t, err, "the pool's connection is as it was")
			require.Equal(t, 1, count(t, pool, "SELECT count(*) FROM log"))
		})
	}
}
