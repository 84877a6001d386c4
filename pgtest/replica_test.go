package pgtest_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

func TestReplicaStreamsPrimaryWrites(t *testing.T) {
	ctx := t.Context()
	cluster, err := pgtest.Shared()
	require.NoError(t, err)
	connString := pgtest.ConnString(t)
	primary := connect(t, connString)
	_, err = primary.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)")
	require.NoError(t, err)

	replica, err := cluster.StartReplica(ctx)
	if usesDatabaseURL(t) {
		require.ErrorIs(t, err, pgtest.ErrExternal)
		return
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, replica.Stop()) })

	standby := connect(t, replica.ConnString(databaseName(t, connString)))
	var inRecovery bool
	require.NoError(t, standby.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	require.True(t, inRecovery, "replica is not a standby")

	_, err = primary.Exec(ctx, "INSERT INTO items VALUES (42)")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int
		err := standby.QueryRow(ctx, "SELECT count(*) FROM items WHERE id = 42").Scan(&n)
		return err == nil && n == 1
	}, 10*time.Second, 20*time.Millisecond, "row inserted on the primary never reached the replica")
}

func databaseName(t *testing.T, connString string) string {
	t.Helper()
	config, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	return config.Database
}
