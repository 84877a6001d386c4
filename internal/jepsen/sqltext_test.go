package jepsen_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// wiretap records the frontend messages that pass a proxy: the SQL text of queries and of statements parsed or
// bound, and a placeholder for the rest.
type wiretap struct {
	mu   sync.Mutex
	sqls []string
}

func (w *wiretap) rule(m faultproxy.Message) faultproxy.Action {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m.Type {
	case 'Q', 'P', 'B':
		w.sqls = append(w.sqls, m.SQL)
	default:
		w.sqls = append(w.sqls, "<"+string(m.Type)+">")
	}
	return faultproxy.Forward
}

func (w *wiretap) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.sqls
	w.sqls = nil
	return out
}

// marker stands for user input: it must only ever travel as a parameter.
const marker = "x'); DROP TABLE t; --mArKeR"

var savepointSQL = regexp.MustCompile(`^(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT) pgxact_sp_[0-9]+$`)

// TestUserTextNeverBecomesSQL sends transactions full of user strings — parameters, settings, errors — through
// every combinator that writes SQL of its own, and reads the SQL text off the wire: user text never appears in it,
// and every savepoint statement names a generated savepoint.
func TestUserTextNeverBecomesSQL(t *testing.T) {
	d := newDB(t)
	ctx := testCtx(t, time.Minute)
	_, err := d.admin.Exec(ctx, "CREATE TABLE t (s text UNIQUE)")
	require.NoError(t, err)
	proxy := d.startProxy(t)
	tap := &wiretap{}
	proxy.SetRule(tap.rule)
	pool := newPool(t, d.poolConfig(t, 2, proxy))

	insert := tx.Exec("INSERT INTO t VALUES ($1)", marker)
	failing := tx.Fail[pgconn.CommandTag](errors.New(marker))
	work := tx.Then(tx.SetLocal("app.note", marker), tx.Then(
		tx.Nested(insert),
		tx.Then(
			tx.Recover(tx.Then(insert, insert), func(error) tx.Tx[pgconn.CommandTag] { return failing }), // 23505, then a user error
			tx.Func(func(ctx context.Context, q pgx.Tx) (string, error) {
				sp, err := q.Begin(ctx)
				if err != nil {
					return "", err
				}
				_, err = sp.Exec(ctx, "SELECT $1::text", marker)
				return marker, errors.Join(err, sp.Rollback(ctx))
			}))))
	_, err = tx.Run(ctx, pool, work)
	require.ErrorContains(t, err, "mArKeR") // the user error comes back
	_, err = tx.Run(ctx, pool, tx.Then(tx.Nested(tx.Then(tx.SetLocal("app.note", marker), insert)),
		tx.Retry(retry.New(retry.On(retry.UniqueViolation), retry.MaxAttempts(2)), tx.Nested(insert))))
	require.ErrorContains(t, err, "23505")

	sqls := tap.take()
	require.NotEmpty(t, sqls)
	savepoints := 0
	for _, sql := range sqls {
		require.NotContains(t, strings.ToLower(sql), "marker", "user text in SQL: %q", sql)
		for _, stmt := range strings.Split(sql, "; ") {
			if strings.Contains(stmt, "SAVEPOINT") {
				savepoints++
				require.Regexp(t, savepointSQL, stmt)
			}
		}
	}
	require.Positive(t, savepoints)
	var rows int
	require.NoError(t, d.admin.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&rows))
	require.Zero(t, rows, "both transactions failed, so nothing may be left")
}

// TestUserTextNeverInPgStatActivity watches the server's own view of a session while it runs a transaction with
// user text in a setting and under a savepoint.
func TestUserTextNeverInPgStatActivity(t *testing.T) {
	d := newDB(t)
	ctx := testCtx(t, time.Minute)
	pool := newPool(t, d.poolConfig(t, 2, nil))
	done := make(chan error, 1)
	go func() {
		work := tx.Then(tx.SetLocal("app.note", marker),
			tx.Nested(tx.Exec("SELECT pg_sleep(0.5), $1::text", marker)))
		_, err := tx.Run(ctx, pool, work)
		done <- err
	}()
	var queries []string
	require.Eventually(t, func() bool {
		rows, err := d.admin.Query(ctx, `SELECT query FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query <> ''`)
		require.NoError(t, err)
		qs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		queries = append(queries, qs...)
		return strings.Contains(strings.Join(qs, "\n"), "pg_sleep")
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, <-done)
	for _, q := range queries {
		require.NotContains(t, strings.ToLower(q), "marker")
	}
}

// TestHostileSetLocalNames: a name that is not a parameter name is refused before anything reaches the server.
func TestHostileSetLocalNames(t *testing.T) {
	d := newDB(t)
	ctx := testCtx(t, time.Minute)
	proxy := d.startProxy(t)
	tap := &wiretap{}
	proxy.SetRule(tap.rule)
	pool := newPool(t, d.poolConfig(t, 2, proxy))
	require.NoError(t, pool.Ping(ctx))
	tap.take()

	for _, name := range hostileNames {
		t.Run(name, func(t *testing.T) {
			_, err := tx.Run(ctx, pool, tx.SetLocal(name, "v"))
			require.ErrorIs(t, err, tx.ErrInvalid)
			require.Empty(t, tap.take(), "nothing may be sent for invalid input")
		})
	}
}

var hostileNames = []string{
	"", " ", "app.tenant_id'; DROP TABLE t; --", "app.tenant_id = 'x'", "search_path TO evil", "app..x", ".app",
	"app.", "1app", "app-x", "app.x;", "app.x\x00", "app x", "$app", "\"app\".x", "app.x--", "app/*x*/.y",
	strings.Repeat("a", 128) + ".x",
}

// TestStatementsAfterAnInvalidSetLocalDoNotRun: Then(a, b) promises that b does not run if a fails, and ErrInvalid
// promises that nothing is sent for invalid input. A sequence shows whether b ran: nextval is not rolled back.
func TestStatementsAfterAnInvalidSetLocalDoNotRun(t *testing.T) {
	d := newDB(t)
	ctx := testCtx(t, time.Minute)
	_, err := d.admin.Exec(ctx, "CREATE SEQUENCE s")
	require.NoError(t, err)
	pool := newPool(t, d.poolConfig(t, 2, nil))

	cases := []struct {
		name string
		work tx.Tx[int64]
	}{
		{"Then", tx.Then(tx.SetLocal("app.x'; --", "v"), tx.QueryOne("SELECT nextval('s')", pgx.RowTo[int64]))},
		{"All", tx.Map(tx.All([]tx.Tx[int64]{
			tx.Map(tx.SetLocal("app.x'; --", "v"), func(struct{}) int64 { return 0 }),
			tx.QueryOne("SELECT nextval('s')", pgx.RowTo[int64]),
		}), func(vs []int64) int64 { return vs[1] })},
		{"Then after Fail", tx.Then(tx.Fail[int](errors.New("no")), tx.QueryOne("SELECT nextval('s')", pgx.RowTo[int64]))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.admin.Exec(ctx, "SELECT setval('s', 1, false)")
			require.NoError(t, err)
			_, err = tx.Run(ctx, pool, c.work)
			require.Error(t, err)
			var called bool
			require.NoError(t, d.admin.QueryRow(ctx, "SELECT is_called FROM s").Scan(&called))
			require.False(t, called, "the statement after the failure ran")
		})
	}
}
