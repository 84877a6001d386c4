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
	t.Run("timeline tokens round-trip in canonical form", func(t *testing.T) {
		for in, want := range map[string]string{"3:16/b374d848": "3:16/B374D848", "4294967295:0/1": "4294967295:0/1",
			"007:A/0": "7:A/0"} {
			s, err := r.SessionFrom(in)
			require.NoError(t, err, in)
			require.Equal(t, want, s.Token())
		}
	})
	t.Run("the token keeps the latest timeline and the highest position", func(t *testing.T) {
		s := r.Session()
		s.RecordTimelineCommit(ctx, 1, "0/20")
		s.RecordTimelineCommit(ctx, 1, "0/10")
		require.Equal(t, "1:0/20", s.Token())
		// A promotion: its history holds what survived of timeline 1 below where it began, and 0/20 of timeline 1
		// may be a tail it lost, which means nothing on timeline 2.
		s.RecordTimelineCommit(ctx, 2, "0/18")
		require.Equal(t, "2:0/18", s.Token())
		s.RecordTimelineCommit(ctx, 2, "0/30")
		require.Equal(t, "2:0/30", s.Token())
	})
	t.Run("a commit on an earlier timeline, or on none, counts as lost", func(t *testing.T) {
		for _, tl := range []uint32{1, 0} {
			s, err := r.SessionFrom("2:0/30")
			require.NoError(t, err)
			s.RecordTimelineCommit(ctx, tl, "0/40")
			require.Equal(t, "FFFFFFFF/FFFFFFFF", s.Token(), "timeline %d", tl)
		}
	})
	t.Run("a position without a timeline keeps the timeline known", func(t *testing.T) {
		s, err := r.SessionFrom("2:0/30")
		require.NoError(t, err)
		s.RecordCommit(ctx, "0/40")
		require.Equal(t, "2:0/40", s.Token())
	})
	for _, bad := range []string{"x", "0/", "/0", "0/0/0", "-1/0", " 0/0", "100000000/0", "0/0; DROP TABLE items",
		"0:0/10", ":0/10", "1:", "x:0/10", "+1:0/10", "-1:0/10", "4294967296:0/10", "12345678901:0/10", "1:2:0/10",
		" 1:0/10"} {
		t.Run("rejects token "+bad, func(t *testing.T) {
			s, err := r.SessionFrom(bad)
			require.ErrorIs(t, err, replica.ErrInvalidToken)
			require.Nil(t, s)
		})
	}
}
