package harness_test

import (
	"testing"

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
