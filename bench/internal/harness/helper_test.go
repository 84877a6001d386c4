package harness_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/impl"
	"github.com/pgxact/pgxact/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newPool returns a pool of at most maxConns connections on a new private database.
func newPool(t *testing.T, maxConns int32) *pgxpool.Pool {
	t.Helper()
	config := pgtest.Config(t)
	config.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(t.Context(), config)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// newStandby starts a streaming hot standby of the shared cluster, which must already hold primary's database, and
// returns a pool on that database there; both are stopped at cleanup. It skips t on a DATABASE_URL server.
func newStandby(t *testing.T, primary *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	cluster, err := pgtest.Shared()
	require.NoError(t, err)
	standby, err := cluster.StartReplica(t.Context())
	if errors.Is(err, pgtest.ErrExternal) {
		t.Fatal("a standby needs the embedded cluster: unset DATABASE_URL")
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, standby.Stop()) })
	config, err := pgxpool.ParseConfig(standby.ConnString(primary.Config().ConnConfig.Database))
	require.NoError(t, err)
	config.MaxConns = primary.Config().MaxConns
	pool, err := pgxpool.NewWithConfig(t.Context(), config)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// awaitReplay waits until standby has replayed everything primary has written so far.
func awaitReplay(t *testing.T, primary, standby *pgxpool.Pool) {
	t.Helper()
	var target string
	require.NoError(t, primary.QueryRow(t.Context(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&target))
	require.Eventually(t, func() bool {
		var done bool
		err := standby.QueryRow(t.Context(), "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target).Scan(&done)
		return err == nil && done
	}, 30*time.Second, 10*time.Millisecond, "the standby did not replay up to %s", target)
}

// onReplica looks implementations up by name and gives those that need one the standby.
func onReplica(t *testing.T, standby *pgxpool.Pool, names ...string) []impl.Impl {
	t.Helper()
	ims := impls(t, names...)
	for i := range ims {
		ims[i] = ims[i].OnReplica(standby)
	}
	return ims
}

// impls looks implementations up by name.
func impls(t *testing.T, names ...string) []impl.Impl {
	t.Helper()
	out := make([]impl.Impl, len(names))
	for i, name := range names {
		im, err := impl.ByName(name)
		require.NoError(t, err)
		out[i] = im
	}
	return out
}
