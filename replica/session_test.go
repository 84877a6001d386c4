package replica_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
)

// TestReadYourWrites shows the anomaly a plain Router allows and the Session prevents. Replay on the standby is
// paused, so the standby certainly lags: no timing is involved.
func TestReadYourWrites(t *testing.T) {
	p := newPair(t)
	r := newRouter(t, p.primary, []*pgxpool.Pool{p.replica})
	ctx := ctxT(t)
	p.pauseReplay(t)

	t.Run("without a session a read misses the write just committed", func(t *testing.T) {
		_, err := tx.Run(ctx, r, insert(1))
		require.NoError(t, err)
		seen, err := tx.Run(ctx, r, lookFor(1), readOnly...)
		require.NoError(t, err)
		require.Equal(t, sighting{Found: false, OnStandby: true}, seen)
	})

	s := r.Session()
	t.Run("a session that wrote nothing reads from the replica", func(t *testing.T) {
		require.Empty(t, s.Token())
		require.True(t, where(t, s, readOnly...))
	})
	t.Run("with a session the read falls back to the primary and sees the write", func(t *testing.T) {
		_, err := tx.Run(ctx, s, insert(2))
		require.NoError(t, err)
		require.NotEmpty(t, s.Token())
		seen, err := tx.Run(ctx, s, lookFor(2), readOnly...)
		require.NoError(t, err)
		require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
	})
	t.Run("the token carries read-your-writes to another session", func(t *testing.T) {
		next, err := r.SessionFrom(s.Token())
		require.NoError(t, err)
		require.Equal(t, s.Token(), next.Token())
		seen, err := tx.Run(ctx, next, lookFor(2), readOnly...)
		require.NoError(t, err)
		require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
	})
	t.Run("once the replica has replayed the write, the read goes there", func(t *testing.T) {
		p.resumeReplay(t)
		require.Eventually(t, func() bool {
			seen, err := tx.Run(ctx, s, lookFor(2), readOnly...)
			require.NoError(t, err)
			require.True(t, seen.Found, "a session read missed its own write")
			return seen.OnStandby
		}, 10*time.Second, 10*time.Millisecond)
	})
	t.Run("reads through the session keep going to the caught-up replica", func(t *testing.T) {
		for range 3 {
			seen, err := tx.Run(ctx, s, lookFor(2), readOnly...)
			require.NoError(t, err)
			require.Equal(t, sighting{Found: true, OnStandby: true}, seen)
		}
	})
}

// TestSessionWaitsForAReplicaThatCatchesUp: a replica that lags by less than MaxWait serves the read.
func TestSessionWaitsForAReplicaThatCatchesUp(t *testing.T) {
	p := newPair(t)
	s := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}, replica.WithMaxWait(10*time.Second)).Session()
	ctx := ctxT(t)
	p.pauseReplay(t)
	_, err := tx.Run(ctx, s, insert(1))
	require.NoError(t, err)

	// Replay resumes only once the read is waiting on the replica: the read cannot have found it caught up at once.
	watcher := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
	resumed := make(chan error, 1)
	go func() { resumed <- resumeOncePolled(ctx, watcher) }()
	seen, err := tx.Run(ctx, s, lookFor(1), readOnly...)
	require.NoError(t, err)
	require.NoError(t, <-resumed)
	require.Equal(t, sighting{Found: true, OnStandby: true}, seen)
}

// resumeOncePolled waits, bounded, until another session on the standby has asked for its replay position, then
// resumes replay. It runs on its own goroutine, so it returns its failure instead of failing the test.
func resumeOncePolled(ctx context.Context, watcher *pgxpool.Pool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		var n int
		err := watcher.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE query LIKE '%pg_last_wal_replay_lsn()::text%' AND pid <> pg_backend_pid()`).Scan(&n)
		if err != nil {
			return fmt.Errorf("no read polled the standby: %w", err)
		}
		if n > 0 {
			_, err := watcher.Exec(ctx, "SELECT pg_wal_replay_resume()")
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestLostCommitPosition: when tx.Run could not learn where a commit ended, the session reads from the primary, learns
// a position there, and then uses replicas again.
func TestLostCommitPosition(t *testing.T) {
	p := newPair(t)
	s := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}).Session()
	ctx := ctxT(t)
	_, err := tx.Run(ctx, s, insert(1))
	require.NoError(t, err)
	p.waitForReplay(t)
	require.True(t, where(t, s, readOnly...), "caught up: the replica serves the session")

	s.RecordCommit(ctx, "") // what tx.Run reports when the position was lost
	require.Equal(t, "FFFFFFFF/FFFFFFFF", s.Token())
	require.False(t, where(t, s, readOnly...), "position unknown: the primary serves the session")
	require.NotEqual(t, "FFFFFFFF/FFFFFFFF", s.Token(), "the read on the primary settled the position")
	p.waitForReplay(t)
	require.True(t, where(t, s, readOnly...))
}
