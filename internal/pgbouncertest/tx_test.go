package pgbouncertest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

func note(id int, s string) tx.Tx[pgconn.CommandTag] {
	return tx.Exec("INSERT INTO log VALUES ($1, $2)", id, s)
}

// TestPipelinedTransaction: independent statements travel with BEGIN in one round trip, and COMMIT in a second, all
// in one server transaction.
func TestPipelinedTransaction(t *testing.T) {
	s := newSetup(t)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			pool, trips := s.pool(t, mode)
			ctx := ctxT(t)
			same := tx.QueryOne("SELECT pg_backend_pid()::text || ' ' || pg_current_xact_id()::text", pgx.RowTo[string])
			work := tx.All([]tx.Tx[string]{
				same, same,
				tx.QueryOne("SELECT current_setting('transaction_isolation')", pgx.RowTo[string]),
				same,
			})
			_, err := tx.Run(ctx, pool, work) // warm-up: CacheDescribe describes new statements once
			require.NoError(t, err)
			before := trips.count()
			got, err := tx.Run(ctx, pool, work)
			require.NoError(t, err)
			require.Equal(t, 2, trips.count()-before, "round trips: BEGIN+statements, COMMIT")
			require.Equal(t, got[0], got[1], "one server session and one transaction")
			require.Equal(t, got[0], got[3])
			require.Equal(t, "serializable", got[2], "BEGIN ran first, on the same server connection")
		})
	}
}

func TestSavepoints(t *testing.T) {
	s := newSetup(t)
	for i, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			pool, _ := s.pool(t, mode)
			base := 10 * (i + 1)
			dup := tx.Recover(note(base, "duplicate"), func(error) tx.Tx[pgconn.CommandTag] {
				return note(base+1, "recovered from 23505")
			})
			failed := tx.Recover(tx.Nested(tx.Then(note(base+2, "rolled back"), tx.Exec("SELECT 1/0"))),
				func(error) tx.Tx[pgconn.CommandTag] { return note(base+3, "recovered from 22012") })
			_, err := tx.Run(ctxT(t), pool, tx.Then(note(base, "first"), tx.Then(dup, tx.Then(failed, tx.Nested(note(base+4, "nested ok"))))))
			require.NoError(t, err)
		})
	}
	require.Equal(t, []string{
		"first", "recovered from 23505", "recovered from 22012", "nested ok",
		"first", "recovered from 23505", "recovered from 22012", "nested ok",
		"first", "recovered from 23505", "recovered from 22012", "nested ok",
	}, s.notes(t))
}

// TestSetLocal: pgbouncer hands the same server connection to the next transaction, so what one transaction leaves
// in the server session, the next one sees. SetLocal leaves nothing; a session-level setting leaks.
func TestSetLocal(t *testing.T) {
	s := newSetup(t)
	type setting struct {
		PID   int
		Value string
	}
	get := func(name string) tx.Tx[setting] {
		return tx.QueryOne("SELECT pg_backend_pid(), coalesce(current_setting($1, true), '')", pgx.RowToStructByPos[setting], name)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			pool, _ := s.pool(t, mode)
			ctx := ctxT(t)

			set, err := tx.Run(ctx, pool, tx.Then(tx.SetLocal("app.tenant", "42"), get("app.tenant")))
			require.NoError(t, err)
			require.Equal(t, "42", set.Value)
			next := nextOnServer(t, pool, set.PID, get("app.tenant"), func(v setting) int { return v.PID })
			require.Empty(t, next.Value, "SET LOCAL ended with its transaction")

			leak, err := tx.Run(ctx, pool, tx.Then(tx.Exec("SELECT set_config('app.leak', 'from an earlier client', false)"), get("app.leak")))
			require.NoError(t, err)
			next = nextOnServer(t, pool, leak.PID, get("app.leak"), func(v setting) int { return v.PID })
			require.Equal(t, "from an earlier client", next.Value, "session state outlives the transaction on the server")
			_, err = tx.Run(ctx, pool, tx.Exec("RESET app.leak"))
			require.NoError(t, err)
		})
	}
}

// nextOnServer runs t until it lands on the server backend pid (pgbouncer reuses the last server connection, so this
// is normally the first run), bounded.
func nextOnServer[T any](t *testing.T, pool *pgxpool.Pool, pid int, work tx.Tx[T], pidOf func(T) int) T {
	t.Helper()
	for range 20 {
		v, err := tx.Run(ctxT(t), pool, work)
		require.NoError(t, err)
		if pidOf(v) == pid {
			return v
		}
	}
	require.FailNow(t, "pgbouncer never handed back server connection", "pid %d", pid)
	panic("unreachable")
}

func TestSerializationFailureIsRetried(t *testing.T) {
	s := newSetup(t)
	for i, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			pool, _ := s.pool(t, mode)
			var attempts atomic.Int32
			failOnce := tx.Func(func(ctx context.Context, q pgx.Tx) (int32, error) {
				n := attempts.Add(1)
				if n == 1 {
					_, err := q.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'synthetic' USING ERRCODE = '40001'; END $$")
					return n, err
				}
				return n, nil
			})
			got, err := tx.Run(ctxT(t), pool, tx.Then(note(100+i, "written once"), failOnce))
			require.NoError(t, err)
			require.Equal(t, int32(2), got)
		})
	}
	require.Equal(t, []string{"written once", "written once", "written once"}, s.notes(t))
}

// TestDefaultModeBreaks shows why the mode matters: with pgx's default QueryExecModeCacheStatement, clients that
// share a server connection through pgbouncer prepare the same statement names on it and collide.
func TestDefaultModeBreaks(t *testing.T) {
	s := newSetup(t)
	if s.bouncer.PreparedStatements() {
		t.Skip("this pgbouncer tracks prepared statements, so the default mode works")
	}
	var pools []*pgxpool.Pool
	for range 3 {
		pool, _ := s.pool(t, pgx.QueryExecModeCacheStatement)
		pools = append(pools, pool)
	}
	work := tx.QueryOne("SELECT $1::int", pgx.RowTo[int], 1)
	var failures int
	for i := range 9 { // one at a time: pgbouncer hands every client the same, last used, server connection
		_, err := tx.Run(ctxT(t), pools[i%len(pools)], work)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			require.Contains(t, []string{"42P05", "26000"}, pgErr.Code, "%v", err) // already exists / does not exist
			failures++
			continue
		}
		require.NoError(t, err)
	}
	require.NotZero(t, failures)
}
