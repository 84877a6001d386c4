package pgtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConnStringGivesIsolatedDatabases(t *testing.T) {
	ctx := t.Context()
	first := connect(t, pgtest.ConnString(t))
	second := connect(t, pgtest.ConnString(t))

	require.NotEqual(t, currentDatabase(t, first), currentDatabase(t, second))
	_, err := first.Exec(ctx, "CREATE TABLE only_in_first (id int)")
	require.NoError(t, err)
	require.True(t, tableExists(t, first, "only_in_first"))
	require.False(t, tableExists(t, second, "only_in_first"))
}

func TestPoolAnswersQueries(t *testing.T) {
	pool := pgtest.Pool(t)
	var one int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT 1").Scan(&one))
	require.Equal(t, 1, one)
}

func TestServerListensOnLoopbackOnly(t *testing.T) {
	conn := connect(t, pgtest.ConnString(t))
	var listen string
	require.NoError(t, conn.QueryRow(t.Context(), "SHOW listen_addresses").Scan(&listen))
	if !usesDatabaseURL(t) {
		require.Equal(t, "127.0.0.1", listen)
	}
	require.NoError(t, pgtest.CheckLoopback(pgtest.ConnString(t)))
}

func TestDatabaseDroppedAtCleanup(t *testing.T) {
	var dropped string
	t.Run("uses a database", func(t *testing.T) {
		conn := connect(t, pgtest.ConnString(t))
		dropped = currentDatabase(t, conn)
	})
	observer := connect(t, pgtest.ConnString(t))
	var count int
	err := observer.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", dropped).Scan(&count)
	require.NoError(t, err)
	require.Zero(t, count, "database %s still exists after its test's cleanup", dropped)
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		name       string
		connString string
		loopback   bool
	}{
		{"accepts 127.0.0.1", "postgres://u@127.0.0.1:5432/db", true},
		{"accepts the whole 127/8 block", "host=127.3.2.1 dbname=db", true},
		{"accepts ::1", "postgres://u@[::1]:5432/db", true},
		{"accepts localhost", "postgres://u@localhost/db", true},
		{"accepts a unix socket directory", "host=/var/run/postgresql dbname=db", true},
		{"refuses a private address", "postgres://u@10.0.0.1:5432/db", false},
		{"refuses a host name", "postgres://u@db.example.com/db", false},
		{"refuses a non-loopback IPv6 address", "host=2001:db8::1 dbname=db", false},
		{"refuses a remote host among loopback ones", "postgres://u@127.0.0.1:5432,db.example.com:5432/db", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pgtest.CheckLoopback(tt.connString)
			if tt.loopback {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, pgtest.ErrNotLoopback)
			}
		})
	}
}

func TestConnStringIsSafeInParallel(t *testing.T) {
	for i := range 8 {
		t.Run(fmt.Sprintf("test %d", i), func(t *testing.T) {
			t.Parallel()
			conn := connect(t, pgtest.ConnString(t))
			_, err := conn.Exec(t.Context(), "CREATE TABLE mine (id int)")
			require.NoError(t, err)
		})
	}
}

func TestWithDatabaseKeepsOtherSettings(t *testing.T) {
	tests := []struct {
		name, connString, want string
	}{
		{"replaces a URL path", "postgres://u:p@127.0.0.1:5432/old?sslmode=disable", "postgres://u:p@127.0.0.1:5432/new?sslmode=disable"},
		{"adds a missing URL path", "postgresql://u@localhost", "postgresql://u@localhost/new"},
		{"keeps a socket host in the query", "postgres:///old?host=/tmp", "postgres:///new?host=/tmp"},
		{"keeps multiple hosts", "postgres://127.0.0.1:1,127.0.0.2:2/old", "postgres://127.0.0.1:1,127.0.0.2:2/new"},
		{"overrides a keyword/value dbname", "host=/tmp dbname=old", "host=/tmp dbname=old dbname='new'"},
		{"drops a dbname parameter, which would override the path", "postgres://u@127.0.0.1/postgres?dbname=other&sslmode=disable",
			"postgres://u@127.0.0.1/new?sslmode=disable"},
		{"drops a database parameter alone", "postgres://u@127.0.0.1/postgres?database=other", "postgres://u@127.0.0.1/new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pgtest.WithDatabase(tt.connString, "new")
			require.Equal(t, tt.want, got)
			config, err := pgconn.ParseConfig(got)
			require.NoError(t, err)
			require.Equal(t, "new", config.Database)
		})
	}
}

// TestInterruptedCommandDoesNotHang: a command whose context ends is killed with what it forked, and its run ends
// even if a child it left behind still held its output (pg_basebackup's WAL streamer did, and hung txbench on
// Ctrl-C).
func TestInterruptedCommandDoesNotHang(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	marker := fmt.Sprintf("%d.25", 60+os.Getpid()%1000) // a sleep nothing else runs, to look for afterwards
	err := pgtest.RunInterruptible(ctx, "sh", "-c", "sleep "+marker+" & exec sleep 60")
	require.Error(t, err)
	require.Less(t, time.Since(start), 10*time.Second)
	require.Eventually(t, func() bool {
		return exec.Command("pgrep", "-f", "sleep "+marker).Run() != nil // pgrep fails when nothing matches
	}, 5*time.Second, 50*time.Millisecond, "the forked child was killed with the command")
}
