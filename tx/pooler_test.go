package tx_test

import (
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// TestServerRestartBehindAPooler: through pgbouncer's transaction pooling the client's connection outlives the
// server's restart, so a server history read on it before the restart says nothing about a transaction after it.
// Here a COMMIT that is slow (a deferred trigger sleeps) loses its answer after the restart; its id is past xmax
// because it is still running. Taken against the old history, that looks like "lost in a restart": retried, and
// applied twice once the first COMMIT finishes.
func TestServerRestartBehindAPooler(t *testing.T) {
	ctx := ctxT(t)
	c, err := pgtest.Start(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	cs, err := c.CreateDatabase(ctx, "")
	require.NoError(t, err)
	cfg, err := pgx.ParseConfig(cs)
	require.NoError(t, err)
	exec(t, cs, `CREATE TABLE ledger (id int NOT NULL);
		CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON ledger DEFERRABLE INITIALLY DEFERRED
			FOR EACH ROW WHEN (NEW.id = 2) EXECUTE FUNCTION slow()`)
	bouncer, err := c.StartPgbouncer(ctx) // fails on a DATABASE_URL server, before its settings are changed
	require.NoError(t, err)
	t.Cleanup(func() { _ = bouncer.Stop() })
	exec(t, c.ConnString("postgres"), "ALTER SYSTEM SET autovacuum = off") // no id for anyone else
	exec(t, c.ConnString("postgres"), "SELECT pg_reload_conf()")
	bcfg, err := pgx.ParseConfig(bouncer.ConnString(cfg.Database))
	require.NoError(t, err)
	proxy, err := faultproxy.Start(net.JoinHostPort(bcfg.Host, strconv.Itoa(int(bcfg.Port))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	pcfg, err := pgxpool.ParseConfig(bouncer.ConnString(cfg.Database))
	require.NoError(t, err)
	proxy.Route(&pcfg.ConnConfig.Config)
	pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pcfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	_, err = tx.Run(ctx, pool, tx.Exec("INSERT INTO ledger VALUES (1)")) // the client connection meets the server
	require.NoError(t, err)
	exec(t, cs, "CHECKPOINT")
	require.NoError(t, c.Crash(ctx))
	require.NoError(t, c.Restart(ctx)) // a new life; the client's connection to pgbouncer stays

	proxy.SetRule(onFirstCommit(faultproxy.CutAfter))
	policy := retry.New(retry.On(retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0)))
	_, err = tx.Run(ctx, pool, tx.Exec("INSERT INTO ledger VALUES (2)"), tx.WithPolicy(policy))
	proxy.SetRule(nil)
	// The first attempt's COMMIT finishes on the server whatever Run decided: wait for it before counting.
	waitFor(t, cs, "SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() "+
		"AND backend_xid IS NOT NULL", 0)
	var n int
	require.NoError(t, connect(t, cs).QueryRow(ctx, "SELECT count(*) FROM ledger WHERE id = 2").Scan(&n))
	t.Logf("Run: %v; inserts applied: %d", err, n)
	switch {
	case err == nil:
		require.Equal(t, 1, n, "Run succeeded: applied exactly once")
	case errors.Is(err, tx.ErrCommitUnknown):
		require.LessOrEqual(t, n, 1)
	default:
		require.Zero(t, n, "Run failed: %v", err)
	}
}
