package pgtest_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

// TestHA runs both replication modes side by side: most of each is waiting on pg_auto_failover's timers.
func TestHA(t *testing.T) {
	tests := []struct {
		name string
		opts pgtest.HAOptions
	}{
		{name: "asynchronous replication survives a switchover and a crash", opts: pgtest.HAOptions{}},
		{name: "synchronous replication survives a switchover and a crash", opts: pgtest.HAOptions{Synchronous: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testFailovers(t, tt.opts)
		})
	}
}

func testFailovers(t *testing.T, opts pgtest.HAOptions) {
	ctx := t.Context()
	ha := startHA(t, opts)
	first, err := ha.Primary(ctx)
	require.NoError(t, err)
	require.Equal(t, "node1", first.Name)

	connString, err := ha.CreateDatabase(ctx, "")
	require.NoError(t, err)
	pool := haPool(t, connString)
	_, err = pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)")
	require.NoError(t, err)
	insert(t, pool, 1)
	require.Equal(t, "00000001", timeline(t, pool))
	requireSynchronous(t, pool, opts.Synchronous)

	start := time.Now()
	require.NoError(t, ha.Switchover(ctx))
	t.Logf("switchover took %v", time.Since(start))
	requirePrimary(t, ha, "node2")
	insert(t, pool, 2) // the pool follows the primary
	require.Equal(t, "00000002", timeline(t, pool))

	start = time.Now()
	downtime, err := ha.CrashPrimary(ctx)
	require.NoError(t, err)
	t.Logf("crash failover: new primary took a write %v after the kill; rejoined after %v", downtime, time.Since(start))
	requirePrimary(t, ha, "node1")
	insert(t, pool, 3)
	require.Equal(t, "00000003", timeline(t, pool))
	requireSynchronous(t, pool, opts.Synchronous)
	// Every row was committed while the cluster was stable, so even asynchronous replication keeps them.
	require.Equal(t, []int{1, 2, 3}, ids(t, pool))

	standby, err := ha.Standby(ctx)
	require.NoError(t, err)
	direct := haPool(t, standby.ConnString(databaseName(t, connString)))
	require.Eventually(t, func() bool {
		var n int
		err := direct.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n)
		return err == nil && n == 3
	}, 10*time.Second, 20*time.Millisecond, "the rejoined standby does not have the rows")

	requireStableChecksTheServers(t, ha, pool)

	nodes := ha.Nodes()
	require.Equal(t, ha.ConnString("db"), ha.ConnStringVia("db", nodes[0].Addr, nodes[1].Addr))
	require.Equal(t,
		"postgres://postgres@127.0.0.1:1,127.0.0.1:2/db?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		ha.ConnStringVia("db", "127.0.0.1:1", "127.0.0.1:2"))

	require.NoError(t, ha.Stop())
	require.NoError(t, ha.Stop(), "Stop is idempotent")
	_, err = ha.CreateDatabase(ctx, "")
	require.ErrorIs(t, err, pgtest.ErrStopped)
	_, err = ha.Primary(ctx)
	require.ErrorIs(t, err, pgtest.ErrStopped)
}

// requireStableChecksTheServers stops the standby's WAL receiver (SIGSTOP), which neither the monitor nor the
// primary notices for a while, writes on the primary, and requires the cluster not to count as stable until the
// receiver runs again and has caught up.
func requireStableChecksTheServers(t *testing.T, ha *pgtest.HA, pool *pgxpool.Pool) {
	t.Helper()
	ctx := t.Context()
	var err error
	require.Eventually(t, func() bool {
		_, err = ha.StableNow(ctx)
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "not stable before the receiver stops: %v", err)
	standby, err := ha.Standby(ctx)
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, standby.ConnString("postgres"))
	require.NoError(t, err)
	var pid int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pid FROM pg_stat_wal_receiver").Scan(&pid))
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
		}
	}
	defer resume()

	// With synchronous replication the write waits for the stopped receiver: it is not waited for here.
	writeCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, _ = pool.Exec(writeCtx, "INSERT INTO items VALUES (4)")
	_, err = ha.Primary(ctx)
	require.NoError(t, err, "the monitor still sees a primary")
	_, err = ha.Standby(ctx)
	require.NoError(t, err, "the monitor still sees a healthy standby")
	_, err = ha.StableNow(ctx)
	require.ErrorContains(t, err, "has received", "stable with the standby's WAL receiver stopped")

	resume()
	require.Eventually(t, func() bool {
		_, err = ha.StableNow(ctx)
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "not stable once the receiver runs again: %v", err)
}

func startHA(t *testing.T, opts pgtest.HAOptions) *pgtest.HA {
	t.Helper()
	start := time.Now()
	ha, err := pgtest.StartHA(t.Context(), opts)
	require.NoError(t, err, "the HA cluster must start; install pg_auto_failover with scripts/ensure-postgres.sh")
	t.Logf("StartHA took %v", time.Since(start))
	t.Cleanup(func() { require.NoError(t, ha.Stop()) })
	return ha
}

// haPool is closed at cleanup, before the cluster stops.
func haPool(t *testing.T, connString string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), connString)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// insert retries briefly: the pool may still hold connections to the old primary, which fail once each.
func insert(t *testing.T, pool *pgxpool.Pool, id int) {
	t.Helper()
	var err error
	for range 5 {
		if _, err = pool.Exec(t.Context(), "INSERT INTO items VALUES ($1)", id); err == nil {
			return
		}
	}
	require.NoError(t, err)
}

func timeline(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var tli string
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)").Scan(&tli))
	return tli
}

func ids(t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT id FROM items ORDER BY id")
	require.NoError(t, err)
	var got []int
	for rows.Next() {
		var id int
		require.NoError(t, rows.Scan(&id))
		got = append(got, id)
	}
	require.NoError(t, rows.Err())
	return got
}

func requirePrimary(t *testing.T, ha *pgtest.HA, name string) {
	t.Helper()
	primary, err := ha.Primary(context.WithoutCancel(t.Context()))
	require.NoError(t, err)
	require.Equal(t, name, primary.Name)
}

// requireSynchronous checks the primary's synchronous_standby_names, which pg_auto_failover sets once the
// standby is up: with replication-quorum false on both nodes it stays empty.
func requireSynchronous(t *testing.T, pool *pgxpool.Pool, want bool) {
	t.Helper()
	var names string
	require.NoError(t, pool.QueryRow(t.Context(), "SHOW synchronous_standby_names").Scan(&names))
	require.Equal(t, want, names != "", "synchronous_standby_names = %q", names)
}
