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

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

func note(s string) tx.Tx[pgconn.CommandTag] {
	return tx.Exec("INSERT INTO log(note) VALUES ($1)", s)
}

func notes(t *testing.T, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) []string {
	t.Helper()
	// In one round trip whatever the pool's mode: describe-exec's two would reach two backends through pgbouncer.
	rows, err := pool.Query(context.Background(), "SELECT note FROM log ORDER BY id", pgx.QueryExecModeExec)
	require.NoError(t, err)
	ns, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ns
}

func TestNested(t *testing.T) {
	ctx := ctxT(t)

	t.Run("an inner failure recovered leaves the outer writes committed", func(t *testing.T) {
		pool := newPool(t, 1)
		inner := tx.Then(note("inner"), tx.Fail[pgconn.CommandTag](errBoom))
		work := tx.Then(note("outer"), tx.Recover(inner, func(err error) tx.Tx[pgconn.CommandTag] {
			require.ErrorIs(t, err, errBoom)
			return note("recovered")
		}))
		_, err := tx.Run(ctx, pool, work)
		require.NoError(t, err)
		require.Equal(t, []string{"outer", "recovered"}, notes(t, pool))
	})
	t.Run("Nested returns the inner error and the outer decides", func(t *testing.T) {
		pool := newPool(t, 1)
		inner := tx.Nested(tx.Then(note("inner"), tx.Exec("SELECT 1/0")))
		work := tx.Then(note("outer"), tx.Bind(tx.Recover(tx.Map(inner, func(pgconn.CommandTag) bool { return true }),
			func(error) tx.Tx[bool] { return tx.Pure(false) }),
			func(ok bool) tx.Tx[pgconn.CommandTag] {
				return note("inner ok: " + map[bool]string{true: "yes", false: "no"}[ok])
			}))
		_, err := tx.Run(ctx, pool, work)
		require.NoError(t, err)
		require.Equal(t, []string{"outer", "inner ok: no"}, notes(t, pool))
	})
	t.Run("a Nested error that is not handled rolls everything back", func(t *testing.T) {
		pool := newPool(t, 1)
		_, err := tx.Run(ctx, pool, tx.Then(note("outer"), tx.Nested(tx.Exec("SELECT 1/0"))))
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "22012", pgErr.Code)
		require.Empty(t, notes(t, pool))
	})
	t.Run("a successful Nested keeps its writes", func(t *testing.T) {
		pool := newPool(t, 1)
		_, err := tx.Run(ctx, pool, tx.Then(tx.Nested(note("a")), tx.Nested(tx.Nested(note("b")))))
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, notes(t, pool))
	})
	t.Run("savepoints inside Func code work like pgx's", func(t *testing.T) {
		pool := newPool(t, 1)
		_, err := tx.Run(ctx, pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			sp, err := q.Begin(ctx)
			require.NoError(t, err)
			_, err = sp.Exec(ctx, "INSERT INTO log(note) VALUES ('dropped')")
			require.NoError(t, err)
			require.NoError(t, sp.Rollback(ctx))
			require.ErrorIs(t, q.Commit(ctx), tx.ErrTxControl)
			return 0, pgx.BeginFunc(ctx, q, func(q pgx.Tx) error {
				_, err := q.Exec(ctx, "INSERT INTO log(note) VALUES ('kept')")
				return err
			})
		}))
		require.NoError(t, err)
		require.Equal(t, []string{"kept"}, notes(t, pool))
	})
	t.Run("a thousand nested savepoints", func(t *testing.T) {
		pool := newPool(t, 1)
		work := note("deep")
		for range 1000 {
			work = tx.Nested(work)
		}
		_, err := tx.Run(ctx, pool, work)
		require.NoError(t, err)
		require.Equal(t, []string{"deep"}, notes(t, pool))
	})
}

func TestRecoverLeavesTransactionFatalErrorsToTheRunner(t *testing.T) {
	pool := newPool(t, 1)
	ctx := ctxT(t)
	var attempts, recovered atomic.Int32
	work := tx.Recover(tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		if attempts.Add(1) == 1 {
			_, err := q.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'synthetic' USING ERRCODE = '40001'; END $$")
			return 0, err
		}
		return 1, nil
	}), func(error) tx.Tx[int] { recovered.Add(1); return tx.Pure(-1) })
	v, err := tx.Run(ctx, pool, work)
	require.NoError(t, err)
	require.Equal(t, 1, v)
	require.Equal(t, int32(2), attempts.Load(), "the runner restarted the transaction")
	require.Zero(t, recovered.Load())
}

func TestScopedRetry(t *testing.T) {
	ctx := ctxT(t)
	uniq := retry.New(retry.On(retry.UniqueViolation), retry.MaxAttempts(3))

	t.Run("a unique violation is retried under a savepoint with a fresh key", func(t *testing.T) {
		pool := newPool(t, 1)
		var tries atomic.Int32
		insert := tx.Func(func(ctx context.Context, q pgx.Tx) (string, error) {
			key := []string{"taken", "taken", "fresh"}[tries.Add(1)-1]
			if _, err := q.Exec(ctx, "INSERT INTO log(note) VALUES ('attempt ' || $1)", key+string(rune('0'+tries.Load()))); err != nil {
				return "", err
			}
			_, err := q.Exec(ctx, "INSERT INTO log(note) VALUES ($1)", key)
			return key, err
		})
		v, err := tx.Run(ctx, pool, tx.Then(note("taken"), tx.Retry(uniq, insert)))
		require.NoError(t, err)
		require.Equal(t, "fresh", v)
		require.Equal(t, int32(3), tries.Load())
		require.Equal(t, []string{"taken", "attempt fresh3", "fresh"}, notes(t, pool), "failed tries rolled back")
	})
	t.Run("exhaustion returns a RetryError with the attempts", func(t *testing.T) {
		pool := newPool(t, 1)
		_, err := tx.Run(ctx, pool, tx.Then(note("taken"), tx.Retry(uniq, note("taken"))))
		requireRetryError(t, err, 3, "23505")
		require.Empty(t, notes(t, pool))
	})
	t.Run("a serialization failure escapes to the runner", func(t *testing.T) {
		pool := newPool(t, 1)
		var local, whole atomic.Int32
		body := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			if local.Add(1) == 1 {
				_, err := q.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'synthetic' USING ERRCODE = '40001'; END $$")
				return 0, err
			}
			return 7, nil
		})
		all := retry.New(retry.On(retry.Serialization, retry.UniqueViolation), retry.MaxAttempts(5))
		work := tx.Then(tx.Func(func(context.Context, pgx.Tx) (int, error) { whole.Add(1); return 0, nil }), tx.Retry(all, body))
		v, err := tx.Run(ctx, pool, work)
		require.NoError(t, err)
		require.Equal(t, 7, v)
		require.Equal(t, int32(2), whole.Load(), "the whole transaction ran again")
	})
	t.Run("errors the policy does not name are returned at once", func(t *testing.T) {
		pool := newPool(t, 1)
		var tries atomic.Int32
		_, err := tx.Run(ctx, pool, tx.Retry(uniq, tx.Func(func(context.Context, pgx.Tx) (int, error) {
			tries.Add(1)
			return 0, errBoom
		})))
		require.ErrorIs(t, err, errBoom)
		require.False(t, errors.As(err, new(*tx.RetryError)))
		require.Equal(t, int32(1), tries.Load())
	})
}

func TestRecoverFromAServerErrorThenCommit(t *testing.T) {
	pool := newPool(t, 1)
	work := tx.Then(note("outer"), tx.Recover(tx.Exec("SELECT 1/0"), func(error) tx.Tx[pgconn.CommandTag] {
		return tx.Pure(pgconn.CommandTag{})
	}))
	_, err := tx.Run(ctxT(t), pool, work)
	require.NoError(t, err)
	require.Equal(t, []string{"outer"}, notes(t, pool))
}

// TestRecoverFromAStatementThatCannotBePrepared: a statement the server refuses to prepare (an undefined table or
// column, a syntax error) fails before it runs, in a round trip of its own when it is new to the connection. Under a
// savepoint that must still be recoverable, whether or not the transaction had begun, in every exec mode and on
// the runner's own wire as on pgx's batch path (a Tracer).
func TestRecoverFromAStatementThatCannotBePrepared(t *testing.T) {
	modes := []struct {
		name      string
		configure func(*pgxpool.Config)
	}{
		{"wire", nil},
		{"pgx batch, tracer", func(c *pgxpool.Config) { c.ConnConfig.Tracer = &recordingTracer{} }},
		{"describe exec", func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec }},
		{"exec", func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec }},
	}
	bad := []string{
		"SELECT count(*)::int FROM no_such_table",
		"SELECT no_such_column FROM log",
		"SELEC 1",
	}
	fallbacks := []struct {
		name string
		f    func(n int) tx.Tx[int]
	}{
		{"statement fallback", func(n int) tx.Tx[int] {
			return tx.Map(note(fmt.Sprintf("fallback %d", n)), func(pgconn.CommandTag) int { return -1 })
		}},
		{"Go fallback", func(int) tx.Tx[int] { return tx.Pure(-1) }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			pool := wirePool(t, m.configure)
			ctx := ctxT(t)
			_, err := pool.Exec(ctx, "CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE)")
			require.NoError(t, err)
			n := 0
			for _, sql := range bad {
				for _, fb := range fallbacks {
					for _, first := range []bool{true, false} {
						n++
						before := fmt.Sprintf("before %d", n)
						var prepErr error
						fbSeen := func(err error) tx.Tx[int] { prepErr = err; return fb.f(n) }
						work := tx.Recover(tx.QueryOne(sql, pgx.RowTo[int]), fbSeen)
						if !first {
							work = tx.Then(note(before), work)
						}
						pool.Reset() // a fresh connection: every statement is new to it
						after := fmt.Sprintf("after %d", n)
						work = tx.Bind(work, func(v int) tx.Tx[int] {
							return tx.Map(note(after), func(pgconn.CommandTag) int { return v })
						})
						v, err := tx.Run(ctx, pool, work, tx.WithPolicy(retry.Never()))
						name := fmt.Sprintf("%q, %s, first step %v", sql, fb.name, first)
						require.NoError(t, err, name)
						require.Equal(t, -1, v, name)
						var pgErr *pgconn.PgError
						require.ErrorAs(t, prepErr, &pgErr, name)
						got := notes(t, pool)
						require.Contains(t, got, after, name)
						if !first {
							require.Contains(t, got, before, name)
						}
					}
				}
			}
			requireNoAcquired(t, pool)
		})
	}
}

// TestFuncSavepointsEndedOutOfOrder: pgx code may end its savepoints (Begin on the pgx.Tx Func gets) in any order.
// Ending an outer one ends the inner ones with it, as on the server; the inner handle is closed afterwards.
func TestFuncSavepointsEndedOutOfOrder(t *testing.T) {
	insert := func(ctx context.Context, q pgx.Tx, s string) error {
		_, err := q.Exec(ctx, "INSERT INTO log(note) VALUES ($1)", s)
		return err
	}
	cases := []struct {
		name  string
		outer func(context.Context, pgx.Tx) error
		want  []string
	}{
		{"outer rolled back", func(ctx context.Context, q pgx.Tx) error { return q.Rollback(ctx) }, []string{"top"}},
		{"outer released", func(ctx context.Context, q pgx.Tx) error { return q.Commit(ctx) }, []string{"top", "outer", "inner"}},
	}
	for _, c := range cases {
		for _, sendFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, savepoints sent %v", c.name, sendFirst), func(t *testing.T) {
				pool := newPool(t, 1)
				work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					if err := insert(ctx, q, "top"); err != nil {
						return 0, err
					}
					outer, err := q.Begin(ctx)
					require.NoError(t, err)
					inner, err := q.Begin(ctx)
					require.NoError(t, err)
					if sendFirst {
						require.NoError(t, insert(ctx, outer, "outer"))
						require.NoError(t, insert(ctx, inner, "inner"))
					}
					require.NoError(t, c.outer(ctx, outer))
					require.ErrorIs(t, inner.Commit(ctx), pgx.ErrTxClosed)
					require.ErrorIs(t, inner.Rollback(ctx), pgx.ErrTxClosed)
					_, err = inner.Begin(ctx)
					require.ErrorIs(t, err, pgx.ErrTxClosed)
					return 0, nil
				})
				_, err := tx.Run(ctxT(t), pool, tx.Then(work, note("after")))
				require.NoError(t, err)
				want := []string{"top", "after"}
				if sendFirst {
					want = append(c.want, "after")
				}
				require.Equal(t, want, notes(t, pool))
			})
		}
	}
}

// TestLargeObjectsUnderAFuncSavepoint: large-object calls of Func code go through the savepoint they are made under,
// so rolling it back removes the object, and releasing it keeps it.
func TestLargeObjectsUnderAFuncSavepoint(t *testing.T) {
	for _, rollback := range []bool{true, false} {
		t.Run(fmt.Sprintf("rolled back %v", rollback), func(t *testing.T) {
			pool := newPool(t, 1)
			ctx := ctxT(t)
			work := tx.Func(func(ctx context.Context, q pgx.Tx) (uint32, error) {
				sp, err := q.Begin(ctx)
				if err != nil {
					return 0, err
				}
				lo := sp.LargeObjects()
				oid, err := lo.Create(ctx, 0)
				if err != nil {
					return 0, err
				}
				if rollback {
					return oid, sp.Rollback(ctx)
				}
				return oid, sp.Commit(ctx)
			})
			oid, err := tx.Run(ctx, pool, work)
			require.NoError(t, err)
			var n int
			require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = $1", oid).Scan(&n))
			if rollback {
				require.Zero(t, n, "the object was created under the savepoint rolled back")
			} else {
				require.Equal(t, 1, n)
			}
		})
	}
}

// TestRecoverFromAnArgumentThatCannotBeEncoded: in the exec and simple-protocol modes pgx encodes a whole batch before
// sending any of it, so an argument it cannot encode fails the batch with nothing sent, the pending SAVEPOINT
// included. Recover must then not roll back to a savepoint the server never made.
func TestRecoverFromAnArgumentThatCannotBeEncoded(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			pool := wirePool(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			_, err := pool.Exec(ctxT(t), "CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE)")
			require.NoError(t, err)
			var recovered error
			unencodable := tx.Exec("SELECT $1::int", struct{ C chan int }{})
			work := tx.Then(note("before"), tx.Recover(unencodable, func(err error) tx.Tx[pgconn.CommandTag] {
				recovered = err
				return note("fallback")
			}))
			_, err = tx.Run(ctxT(t), pool, work, tx.WithPolicy(retry.Never()))
			require.NoError(t, err)
			require.Error(t, recovered)
			require.Equal(t, []string{"before", "fallback"}, notes(t, pool))
		})
	}
}
