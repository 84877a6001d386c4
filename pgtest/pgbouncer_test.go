package pgtest_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

func TestPgbouncerCarriesTransactions(t *testing.T) {
	ctx := t.Context()
	cluster, err := pgtest.Shared()
	require.NoError(t, err)
	connString := pgtest.ConnString(t)
	direct := connect(t, connString)
	_, err = direct.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)")
	require.NoError(t, err)

	bouncer, err := cluster.StartPgbouncer(ctx)
	if usesDatabaseURL(t) {
		require.ErrorIs(t, err, pgtest.ErrExternal)
		return
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bouncer.Stop()) })

	// The pgbouncer admin console exists only on pgbouncer, so answering it proves the port is pgbouncer's.
	console := connectThroughBouncer(t, bouncer.ConnString("pgbouncer"), true)
	_, err = console.Exec(ctx, "SHOW VERSION")
	require.NoError(t, err)

	conn := connectThroughBouncer(t, bouncer.ConnString(databaseName(t, connString)), !bouncer.PreparedStatements())
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO items VALUES ($1)", 7); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil {
			return err
		}
		require.Equal(t, 1, n)
		return nil
	})
	require.NoError(t, err)

	var id int
	require.NoError(t, direct.QueryRow(ctx, "SELECT id FROM items").Scan(&id))
	require.Equal(t, 7, id, "the transaction through pgbouncer did not commit on the server")
}

// connectThroughBouncer connects to pgbouncer, with the simple protocol when it cannot track prepared
// statements in transaction mode.
func connectThroughBouncer(t *testing.T, connString string, simple bool) *pgx.Conn {
	t.Helper()
	config, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	if simple {
		config.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	conn, err := pgx.ConnectConfig(t.Context(), config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(t.Context()) })
	return conn
}
