package tx

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

// The runner reads pgx's statement caches (pgxcache.go). A pgx that moved them would make every Recover in the
// caching modes pay a round trip of its own, silently: this test says so instead.
func TestPgxCachesAreRead(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg, err := pgx.ParseConfig(pgtest.ConnString(t))
			require.NoError(t, err)
			if pgtest.Pooled() { // pgtest's pooled strings ask for exec mode: the caches need the cluster itself
				cluster, err := pgtest.Shared()
				require.NoError(t, err)
				cfg, err = pgx.ParseConfig(cluster.ConnString(cfg.Database))
				require.NoError(t, err)
			}
			cfg.DefaultQueryExecMode = mode
			conn, err := pgx.ConnectConfig(ctx, cfg)
			require.NoError(t, err)
			defer conn.Close(context.Background())

			const sql = "SELECT $1::int + 1"
			cache := pgxCache(conn, mode)
			require.NotNil(t, cache, "pgx.Conn's cache for %v cannot be read", mode)
			require.Nil(t, cache.Get(sql))
			br := conn.SendBatch(ctx, &pgx.Batch{QueuedQueries: []*pgx.QueuedQuery{{SQL: sql, Arguments: []any{1}}}})
			_, err = br.Exec()
			require.NoError(t, err)
			require.NoError(t, br.Close())
			require.NotNil(t, cache.Get(sql), "a statement pgx ran is not seen in its cache")
		})
	}
}
