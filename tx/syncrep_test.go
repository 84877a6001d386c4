package tx_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

// nowhereConn reports a remote address nothing listens on, so that pgx's CancelRequest, sent when a read is
// interrupted, cannot reach the server, as in a network partition.
type nowhereConn struct{ net.Conn }

func (nowhereConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }

// TestCommitWaitingForASynchronousStandbyIsNotForcedThrough: with a synchronous standby named that never connects,
// COMMIT waits in SyncRep after writing its record locally, and pg_xact_status says "in progress". The runner must
// not end that backend to settle the outcome: ending it makes the server report "committed" for a transaction no
// standby confirmed. The outcome stays unknown.
func TestCommitWaitingForASynchronousStandbyIsNotForcedThrough(t *testing.T) {
	bg := context.Background()
	c, err := pgtest.Start(bg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	cfg, err := pgxpool.ParseConfig(c.ConnString("postgres"))
	require.NoError(t, err)
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return nowhereConn{conn}, nil
	}
	pool, err := pgxpool.NewWithConfig(bg, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	for _, sql := range []string{"CREATE TABLE sr (n int)", "ALTER SYSTEM SET synchronous_standby_names = 'ghost'",
		"ALTER SYSTEM SET synchronous_commit = on", "SELECT pg_reload_conf()"} {
		_, err = pool.Exec(bg, sql)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		var names string
		return pool.QueryRow(bg, "SHOW synchronous_standby_names").Scan(&names) == nil && names == "ghost"
	}, 10*time.Second, 10*time.Millisecond)

	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	_, err = tx.Run(ctx, pool, tx.Exec("INSERT INTO sr VALUES (1)"))
	require.ErrorIs(t, err, tx.ErrCommitUnknown)
	var waiting int
	require.NoError(t, pool.QueryRow(bg, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").
		Scan(&waiting))
	require.Equal(t, 1, waiting, "the committing backend still waits for a standby")
}
