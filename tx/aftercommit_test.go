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

func TestAfterCommit(t *testing.T) {
	ctx := ctxT(t)
	record := func(got *[]string, s string) tx.Tx[struct{}] {
		return tx.AfterCommit(func(context.Context) { *got = append(*got, s) })
	}

	t.Run("hooks run once, in order, after the commit", func(t *testing.T) {
		pool := newPool(t, 1)
		var got []string
		seen := -1
		work := tx.Then(record(&got, "a"), tx.Then(note("x"), tx.Then(record(&got, "b"),
			tx.AfterCommit(func(context.Context) { seen = count(t, pool, "SELECT count(*) FROM log") }))))
		_, err := tx.Run(ctx, pool, work)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, got)
		require.Equal(t, 1, seen, "the hook sees committed data")
	})
	t.Run("hooks of a failed run never run", func(t *testing.T) {
		pool := newPool(t, 1)
		var got []string
		_, err := tx.Run(ctx, pool, tx.Then(record(&got, "a"), tx.Exec("SELECT 1/0")))
		require.Error(t, err)
		require.Empty(t, got)
	})
	t.Run("hooks inside a rolled-back savepoint are dropped", func(t *testing.T) {
		pool := newPool(t, 1)
		var got []string
		inner := tx.Then(record(&got, "inner"), tx.Fail[struct{}](errBoom))
		work := tx.Then(record(&got, "before"), tx.Then(tx.Recover(inner, func(error) tx.Tx[struct{}] {
			return record(&got, "recovered")
		}), record(&got, "after")))
		_, err := tx.Run(ctx, pool, work)
		require.NoError(t, err)
		require.Equal(t, []string{"before", "recovered", "after"}, got)
	})
	t.Run("hooks of a failed attempt are dropped, those of the committed one run once", func(t *testing.T) {
		pool := newPool(t, 1)
		var attempts atomic.Int32
		var got []string
		work := tx.Bind(tx.Func(func(ctx context.Context, q pgx.Tx) (int32, error) { return attempts.Add(1), nil }),
			func(n int32) tx.Tx[struct{}] {
				hook := tx.AfterCommit(func(context.Context) { got = append(got, "attempt "+string(rune('0'+n))) })
				if n == 1 {
					return tx.Then(hook, tx.Map(tx.Exec("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$"),
						func(pgconn.CommandTag) struct{} { return struct{}{} }))
				}
				return hook
			})
		_, err := tx.Run(ctx, pool, work)
		require.NoError(t, err)
		require.Equal(t, []string{"attempt 2"}, got)
	})
	t.Run("a hook's panic does not undo the commit and later hooks still run", func(t *testing.T) {
		pool := newPool(t, 1)
		var got []string
		work := tx.Then(note("kept"), tx.Then(tx.AfterCommit(func(context.Context) { panic("hook bug") }), record(&got, "later")))
		require.PanicsWithValue(t, "hook bug", func() { _, _ = tx.Run(ctx, pool, work) })
		require.Equal(t, []string{"kept"}, notes(t, pool))
		require.Equal(t, []string{"later"}, got)
		requireNoAcquired(t, pool)
	})
}

func TestSetLocal(t *testing.T) {
	ctx := ctxT(t)
	pool := newPool(t, 1)
	get := tx.QueryOne("SELECT coalesce(current_setting('app.tenant_id', true), '')", pgx.RowTo[string])

	t.Run("the setting holds inside the transaction", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.Then(tx.SetLocal("app.tenant_id", "t-42"), get))
		require.NoError(t, err)
		require.Equal(t, "t-42", v)
	})
	t.Run("values travel as parameters", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.Then(tx.SetLocal("app.tenant_id", "x'; DROP TABLE log; --"), get))
		require.NoError(t, err)
		require.Equal(t, "x'; DROP TABLE log; --", v)
		require.Zero(t, count(t, pool, "SELECT count(*) FROM log"))
	})
	t.Run("nothing is left on the pooled connection", func(t *testing.T) {
		for range 5 { // the pool reuses its connections
			v, err := tx.Run(ctx, pool, get)
			require.NoError(t, err)
			require.Empty(t, v)
		}
	})
	t.Run("server parameters work too", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.Then(tx.SetLocal("statement_timeout", "1234"),
			tx.QueryOne("SHOW statement_timeout", pgx.RowTo[string])))
		require.NoError(t, err)
		require.Equal(t, "1234ms", v)
	})
	for _, name := range []string{"", "1abc", "a b", "a;b", "a.'b'", "x'; DROP TABLE log; --", "a..b", string(make([]byte, 200))} {
		t.Run("rejects name "+name, func(t *testing.T) {
			_, err := tx.Run(ctx, pool, tx.SetLocal(name, "1"))
			require.ErrorIs(t, err, tx.ErrInvalid)
		})
	}
}
