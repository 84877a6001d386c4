package replica_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

// TestSessionThroughPgbouncer: the primary and the replica each behind their own pgbouncer in transaction mode. The
// commit position rides on COMMIT's batch and the replay check runs outside any transaction, so both survive
// pgbouncer switching server connections between transactions.
func TestSessionThroughPgbouncer(t *testing.T) {
	p := newPair(t)
	cluster, err := pgtest.Shared()
	require.NoError(t, err)
	bouncedPrimary := bouncedPool(t, cluster, p.dbname)
	bouncedReplica := bouncedPool(t, p.standby, p.dbname)
	s := newRouter(t, bouncedPrimary, []*pgxpool.Pool{bouncedReplica}).Session()
	ctx := ctxT(t)

	p.pauseReplay(t)
	_, err = tx.Run(ctx, s, insert(1))
	require.NoError(t, err)
	require.NotEmpty(t, s.Token())
	seen, err := tx.Run(ctx, s, lookFor(1), readOnly...)
	require.NoError(t, err)
	require.Equal(t, sighting{Found: true, OnStandby: false}, seen, "replay paused: the primary answers")

	p.resumeReplay(t)
	require.Eventually(t, func() bool {
		seen, err := tx.Run(ctx, s, lookFor(1), readOnly...)
		require.NoError(t, err)
		require.True(t, seen.Found)
		return seen.OnStandby
	}, 10*time.Second, 10*time.Millisecond, "the replica never served the session")
}

// bouncedPool starts a pgbouncer in front of c and returns a pool through it in QueryExecModeExec.
func bouncedPool(t *testing.T, c *pgtest.Cluster, dbname string) *pgxpool.Pool {
	t.Helper()
	bouncer, err := c.StartPgbouncer(ctxT(t))
	if errors.Is(err, pgtest.ErrNoPgbouncer) {
		t.Fatal(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bouncer.Stop()) })
	return newPool(t, bouncer.ConnString(dbname), func(c *pgxpool.Config) {
		c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	})
}
