package replica_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/replica"
)

// offline is a Router whose pools are never dialled: sessions can be built and inspected without a server.
func offline(t *testing.T) *replica.Router {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/never?sslmode=disable")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return newRouter(t, pool, nil)
}

func TestTokens(t *testing.T) {
	r := offline(t)
	ctx := context.Background()

	t.Run("a new session has the empty token", func(t *testing.T) {
		require.Empty(t, r.Session().Token())
		s, err := r.SessionFrom("")
		require.NoError(t, err)
		require.Empty(t, s.Token())
	})
	t.Run("the token is the highest commit position recorded", func(t *testing.T) {
		s := r.Session()
		for _, at := range []string{"0/10", "1/0", "0/FFFFFFFF", "A/0", "9/FFFFFFFF"} {
			s.RecordCommit(ctx, at)
		}
		require.Equal(t, "A/0", s.Token())
	})
	t.Run("tokens round-trip in canonical form", func(t *testing.T) {
		s, err := r.SessionFrom("16/b374d848")
		require.NoError(t, err)
		require.Equal(t, "16/B374D848", s.Token())
		again, err := r.SessionFrom(s.Token())
		require.NoError(t, err)
		require.Equal(t, s.Token(), again.Token())
	})
	t.Run("a lost position makes the token unknown, and survives export", func(t *testing.T) {
		s := r.Session()
		s.RecordCommit(ctx, "0/10")
		s.RecordCommit(ctx, "")
		unknown := s.Token()
		require.NotEqual(t, "0/10", unknown)
		s.RecordCommit(ctx, "5/0") // a later known position does not cover the lost one: it is settled on the primary
		require.Equal(t, unknown, s.Token())
		again, err := r.SessionFrom(unknown)
		require.NoError(t, err)
		require.Equal(t, unknown, again.Token())
	})
	t.Run("a malformed position counts as lost", func(t *testing.T) {
		s := r.Session()
		s.RecordCommit(ctx, "not a position")
		require.NotEmpty(t, s.Token())
	})
	for _, bad := range []string{"x", "0/", "/0", "0/0/0", "-1/0", " 0/0", "100000000/0", "0/0; DROP TABLE items"} {
		t.Run("rejects token "+bad, func(t *testing.T) {
			s, err := r.SessionFrom(bad)
			require.ErrorIs(t, err, replica.ErrInvalidToken)
			require.Nil(t, s)
		})
	}
}
