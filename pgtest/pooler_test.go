package pgtest_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

const poolerEnv = "PGXACT_TEST_POOLER"

func TestPoolerModeGoesThroughPgbouncer(t *testing.T) {
	t.Setenv(poolerEnv, "pgbouncer")
	require.True(t, pgtest.Pooled())
	if usesDatabaseURL(t) {
		require.Contains(t, fatalOf(t, func(tb testing.TB) { pgtest.ConnString(tb) }), "unset DATABASE_URL")
		return
	}
	ctx := t.Context()
	connString := pgtest.ConnString(t)
	config, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	require.Equal(t, pgx.QueryExecModeExec, config.DefaultQueryExecMode)

	// The admin console exists only on pgbouncer, so answering it proves the port is pgbouncer's.
	console := connectThroughBouncer(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pgbouncer?sslmode=disable", config.Port), true)
	_, err = console.Exec(ctx, "SHOW VERSION")
	require.NoError(t, err)

	pooled := connect(t, connString)
	_, err = pooled.Exec(ctx, "CREATE TABLE made_through_pgbouncer (id int)")
	require.NoError(t, err)
	cluster, err := pgtest.Shared()
	require.NoError(t, err)
	direct := connect(t, cluster.ConnString(config.Database))
	require.True(t, tableExists(t, direct, "made_through_pgbouncer"), "pgbouncer reached another database")
}

func TestPoolerModeRefusesUnknownPoolers(t *testing.T) {
	t.Setenv(poolerEnv, "pgpool")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { pgtest.ConnString(tb) }), `PGXACT_TEST_POOLER="pgpool"`)
}

// fatalOf runs f with a testing.TB whose Fatalf ends f instead of t, and returns the message, empty if none.
func fatalOf(t *testing.T, f func(testing.TB)) string {
	t.Helper()
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	<-done
	return tb.fatal
}

type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
