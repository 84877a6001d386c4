package replica_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/retry"
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
			WHERE query LIKE '%pg_last_wal_replay_lsn() END%' AND pid <> pg_backend_pid()`).Scan(&n)
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

// TestUnknownCommitReadsFromThePrimary: a write whose COMMIT outcome could not be learned may have committed, so
// the session must read its next rows where it would see it: a replica that has not replayed it would say it is
// not there, and a caller checking whether the write happened would apply it twice.
func TestUnknownCommitReadsFromThePrimary(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	proxy, primary := proxied(t, p.primary.Config().ConnString())
	s := newRouter(t, primary, []*pgxpool.Pool{p.replica}).Session()
	p.pauseReplay(t)

	// COMMIT reaches the server, then every connection through the proxy is cut, the runner's status checks too.
	var committing, cutting atomic.Bool
	committing.Store(true)
	proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		switch {
		case !committing.Load():
			return faultproxy.Forward
		case cutting.Load():
			return faultproxy.CutBefore
		case faultproxy.IsCommit(m) && m.Type != 'P':
			cutting.Store(true)
			return faultproxy.CutAfter
		}
		return faultproxy.Forward
	})
	_, err := tx.Run(ctx, s, insert(42), tx.WithPolicy(retry.Never()))
	require.ErrorIs(t, err, tx.ErrCommitUnknown)
	committing.Store(false)
	var n int
	require.NoError(t, p.primary.QueryRow(ctx, "SELECT count(*) FROM items WHERE id = 42").Scan(&n))
	require.Equal(t, 1, n, "the COMMIT went through")

	seen, err := tx.Run(ctx, s, lookFor(42), readOnly...)
	require.NoError(t, err)
	require.Equal(t, sighting{Found: true, OnStandby: false}, seen, "read on the primary, where the write is")
}

// TestSessionReadAfterAStandbyRestart: a standby that restarts replays again from its last restartpoint and may
// answer below the position it answered before. A session read must still find its write: what the Router learnt
// about the standby before the restart must not send the read there unchecked. recovery_min_apply_delay holds the
// replay back after the restart, to make the window certain.
func TestSessionReadAfterAStandbyRestart(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	s := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}, replica.WithMaxWait(100*time.Millisecond)).Session()
	_, err := tx.Run(ctx, s, insert(7))
	require.NoError(t, err)
	p.waitForReplay(t)
	seen, err := tx.Run(ctx, s, lookFor(7), readOnly...)
	require.NoError(t, err)
	require.Equal(t, sighting{Found: true, OnStandby: true}, seen, "precondition: the standby served the session")

	_, err = p.replica.Exec(ctx, "ALTER SYSTEM SET recovery_min_apply_delay = '1h'")
	require.NoError(t, err)
	require.NoError(t, p.standby.Crash(ctx))
	require.NoError(t, p.standby.Restart(ctx))
	p.replica.Reset() // its connections died with the server

	seen, err = tx.Run(ctx, s, lookFor(7), readOnly...)
	require.NoError(t, err)
	require.True(t, seen.Found, "the session read missed its own write (on the standby: %v)", seen.OnStandby)
}

// TestPromotedReplicaIsLeftOut: a promoted server still answers pg_last_wal_replay_lsn() with where its recovery
// ended; it must count as "not a standby" and be left out, not waited for until MaxWait on every session read.
func TestPromotedReplicaIsLeftOut(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	require.NoError(t, p.standby.Promote(ctx))
	require.Eventually(t, func() bool {
		var recovering bool
		return p.replica.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovering) == nil && !recovering
	}, 20*time.Second, 10*time.Millisecond)
	const maxWait = 3 * time.Second
	s := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}, replica.WithMaxWait(maxWait)).Session()
	_, err := tx.Run(ctx, s, insert(1))
	require.NoError(t, err)
	for range 3 {
		start := time.Now()
		seen, err := tx.Run(ctx, s, lookFor(1), readOnly...)
		require.NoError(t, err)
		require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
		require.Less(t, time.Since(start), maxWait/2, "the promoted server was waited for")
	}
}

// TestReadsMentioningWritesKeepTheSessionOnReplicas: a read-only transaction whose text mentions a notification or
// READ WRITE is looked at more closely (package tx), but unless it did write, the session must not hear of a commit:
// an "unknown" position would send its every later read to the primary, and such a read mentions the same words.
func TestReadsMentioningWritesKeepTheSessionOnReplicas(t *testing.T) {
	p := newPair(t)
	s := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}).Session()
	ctx := ctxT(t)
	for _, sql := range []string{
		"SELECT pg_is_in_recovery() AS thread_writer",
		"SELECT pg_is_in_recovery() AS notify_me",
		"SELECT pg_is_in_recovery() /* read write */",
	} {
		for range 3 {
			onStandby, err := tx.Run(ctx, s, tx.QueryOne(sql, pgx.RowTo[bool]), readOnly...)
			require.NoError(t, err, sql)
			require.True(t, onStandby, "%s went to the primary", sql)
			require.Empty(t, s.Token(), "%s: the session heard of a commit", sql)
		}
	}
}

// TestReadYourWritesUnderLoad: many sessions at once, each writing and at once reading its own rows, with live
// replication. No read may miss its session's write, wherever it ran.
//
// pgtest's server runs with synchronous_commit = off, which leaves a commit unsent to standbys until the WAL writer
// flushes it (wal_writer_delay, 200 ms). The writes here commit with synchronous_commit = on (SetLocal, since
// pgbouncer refuses it as a startup parameter), as production servers do, so standbys hear of commits at once, and a
// generous MaxWait lets most reads wait for them.
func TestReadYourWritesUnderLoad(t *testing.T) {
	p := newPair(t)
	r := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}, replica.WithMaxWait(2*time.Second))
	ctx := ctxT(t)
	const sessions, rounds = 8, 25
	var onStandby atomic.Int32
	errs := make(chan error, sessions)
	for g := range sessions {
		go func() {
			errs <- func() error {
				s := r.Session()
				for i := range rounds {
					id := g*rounds + i
					if _, err := tx.Run(ctx, s, tx.Then(tx.SetLocal("synchronous_commit", "on"), insert(id))); err != nil {
						return err
					}
					seen, err := tx.Run(ctx, s, lookFor(id), readOnly...)
					if err != nil {
						return err
					}
					if !seen.Found {
						return fmt.Errorf("session %d missed its write %d (on standby: %v)", g, id, seen.OnStandby)
					}
					if seen.OnStandby {
						onStandby.Add(1)
					}
				}
				return nil
			}()
		}()
	}
	for range sessions {
		require.NoError(t, <-errs)
	}
	t.Logf("%d of %d reads ran on the standby", onStandby.Load(), sessions*rounds)
	require.NotZero(t, onStandby.Load(), "sessions never read from the caught-up standby")
}

// TestSessionForAnUnprivilegedRole: the commit position, its timeline and the standby's replay position and timeline
// are all read with functions every role may call, so a session of a plain role reads its writes on the replica.
func TestSessionForAnUnprivilegedRole(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	role := pgx.Identifier{fmt.Sprintf("pgxact_plain_%d", time.Now().UnixNano())}
	for _, sql := range []string{
		"CREATE ROLE " + role.Sanitize() + " LOGIN NOSUPERUSER",
		"GRANT SELECT, INSERT ON items TO " + role.Sanitize(),
	} {
		_, err := p.primary.Exec(ctx, sql)
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		_, _ = p.primary.Exec(context.Background(), "DROP OWNED BY "+role.Sanitize())
		_, _ = p.primary.Exec(context.Background(), "DROP ROLE "+role.Sanitize())
	})
	p.waitForReplay(t)
	as := func(c *pgxpool.Config) { c.ConnConfig.User = role[0] }
	primary := newPool(t, p.primary.Config().ConnString(), as)
	standby := newPool(t, p.replica.Config().ConnString(), as)
	s := newRouter(t, primary, []*pgxpool.Pool{standby}, replica.WithMaxWait(10*time.Second)).Session()
	_, err := tx.Run(ctx, s, insert(7))
	require.NoError(t, err)
	require.Regexp(t, `^[1-9][0-9]*:[0-9A-F]+/[0-9A-F]+$`, s.Token())
	seen, err := tx.Run(ctx, s, lookFor(7), readOnly...)
	require.NoError(t, err)
	require.Equal(t, sighting{Found: true, OnStandby: true}, seen)
}
