package replica_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// attempts records what tx.Run reports about each attempt.
type attempts struct {
	tx.NopObserver
	mu    sync.Mutex
	infos []tx.AttemptInfo
}

func (a *attempts) EndAttempt(_ context.Context, info tx.AttemptInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.infos = append(a.infos, info)
}

// TestRecoveryConflictIsRetried provokes a recovery conflict deterministically: a read on the standby takes its
// snapshot, the primary deletes and vacuums away the rows that snapshot sees, and the standby, told not to wait
// (max_standby_streaming_delay = 0), ends the reading session when it replays the vacuum. tx.Run restarts the read,
// which then sees the rows gone.
func TestRecoveryConflictIsRetried(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	_, err := p.replica.Exec(ctx, "ALTER SYSTEM SET max_standby_streaming_delay = 0")
	require.NoError(t, err)
	_, err = p.replica.Exec(ctx, "SELECT pg_reload_conf()")
	require.NoError(t, err)
	_, err = p.primary.Exec(ctx, "INSERT INTO items SELECT generate_series(1, 100)")
	require.NoError(t, err)
	p.waitForReplay(t)

	r := newRouter(t, p.primary, []*pgxpool.Pool{p.replica})
	var tries atomic.Int32
	read := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		var before int
		if err := q.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&before); err != nil {
			return 0, err
		}
		if tries.Add(1) == 1 {
			require.Equal(t, 100, before)
			_, err := p.primary.Exec(ctx, "DELETE FROM items")
			require.NoError(t, err)
			_, err = p.primary.Exec(ctx, "VACUUM items")
			require.NoError(t, err)
			p.waitForReplay(t) // replaying the vacuum cancels this transaction
		}
		var n int
		err := q.QueryRow(ctx, "SELECT count(*) FROM items WHERE pg_is_in_recovery()").Scan(&n)
		return n, err
	})
	obs := &attempts{}
	n, err := tx.Run(ctx, r, read, append(readOnly, tx.WithObserver(obs))...)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, obs.infos, 2)
	first := obs.infos[0]
	require.Equal(t, "40001", first.SQLState, "first attempt: %v", first.Err)
	require.Equal(t, retry.Serialization, first.Class)
	require.Contains(t, first.Err.Error(), "conflict with recovery")
	require.True(t, first.Retry)
}

// TestWriteOnAStandby: after a failover under a stable address, the "primary" pool may reach a standby. tx.Run's
// BEGIN says READ WRITE (and SERIALIZABLE by default), which a standby refuses at once with 0A000
// feature_not_supported — not 25006 — so no retry class covers it, not even retry.ReadOnlyTransaction. 25006
// read_only_sql_transaction is what a write gets on a standby inside a transaction that did not ask for READ WRITE.
func TestWriteOnAStandby(t *testing.T) {
	p := newPair(t)
	demoted := newRouter(t, p.replica, nil) // the primary pool reaches a standby
	ctx := ctxT(t)
	optIn := tx.WithPolicy(retry.New(retry.On(retry.ReadOnlyTransaction), retry.MaxAttempts(3)))

	for _, c := range []struct {
		name string
		iso  pgx.TxIsoLevel
		msg  string
	}{
		{"serializable", pgx.Serializable, "cannot use serializable mode in a hot standby"},
		{"repeatable read", pgx.RepeatableRead, "cannot set transaction read-write mode during recovery"},
	} {
		t.Run(c.name+": BEGIN fails with 0A000, class Other, not retried even when opted in to 25006", func(t *testing.T) {
			obs := &attempts{}
			_, err := tx.Run(ctx, demoted, insert(1), tx.WithIsolation(c.iso), optIn, tx.WithObserver(obs))
			requireSQLState(t, "0A000", err)
			require.Contains(t, err.Error(), c.msg)
			require.Equal(t, retry.Other, retry.Classify(err))
			require.Len(t, obs.infos, 1)
		})
	}
	t.Run("a write without READ WRITE fails with 25006, class ReadOnlyTransaction", func(t *testing.T) {
		_, err := p.replica.Exec(ctx, "INSERT INTO items VALUES (1)")
		requireSQLState(t, "25006", err)
		require.Equal(t, retry.ReadOnlyTransaction, retry.Classify(err))
	})
	t.Run("a session records no failed write", func(t *testing.T) {
		s := demoted.Session()
		_, err := tx.Run(ctx, s, insert(1))
		require.Error(t, err)
		require.Empty(t, s.Token())
	})
}

func requireSQLState(t *testing.T, want string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, want, pgErr.Code, "%v", err)
}

// TestSessionAcrossATimelineFork: two standbys of one primary, one of them stopped early so that it lags; the primary
// dies and the lagging standby is promoted, starting timeline 2, while the other stays readable on timeline 1, past
// the fork. A write on the new primary then has a log position the old-timeline standby has already replayed — with
// other contents. A token that is a position alone sends the session's read there, and the read misses the write;
// the token with its timeline does not, and a standby that follows the new timeline serves it.
func TestSessionAcrossATimelineFork(t *testing.T) {
	ctx := ctxT(t)
	f := newFork(t, true)
	db, oldPool, promoted := f.db, f.oldPool, f.promoted

	// The old primary moves on by a whole WAL segment, which the standby left behind replays.
	_, err := oldPool.Exec(ctx, "INSERT INTO items SELECT generate_series(1000, 1999)")
	require.NoError(t, err)
	var end string
	require.NoError(t, oldPool.QueryRow(ctx, "SELECT pg_switch_wal()::text").Scan(&end))
	_, err = oldPool.Exec(ctx, "INSERT INTO items VALUES (2000)")
	require.NoError(t, err)
	require.NoError(t, oldPool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&end))
	leftPool := newPool(t, f.left.ConnString(db), nil)
	waitFor(t, leftPool, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", end)
	primary := f.failOver(t)
	s := newRouter(t, primary, []*pgxpool.Pool{leftPool}).Session()
	_, err = tx.Run(ctx, s, insert(1))
	require.NoError(t, err)
	token := s.Token()
	timeline, position, ok := strings.Cut(token, ":")
	require.True(t, ok, "token %q has no timeline", token)
	require.Equal(t, "2", timeline)
	var passed bool
	require.NoError(t, leftPool.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", position).Scan(&passed))
	require.True(t, passed, "the old-timeline standby should be past the new primary's position %s", position)

	t.Run("a position alone: the old-timeline standby serves the read, which misses the write", func(t *testing.T) {
		bare, err := newRouter(t, primary, []*pgxpool.Pool{leftPool}).SessionFrom(position)
		require.NoError(t, err)
		seen, err := tx.Run(ctx, bare, lookFor(1), readOnly...)
		require.NoError(t, err)
		require.Equal(t, sighting{Found: false, OnStandby: true}, seen)
	})
	t.Run("with its timeline: the read goes to the primary", func(t *testing.T) {
		for range 3 { // the second and later reads use the position kept on the replica connection
			seen, err := tx.Run(ctx, s, lookFor(1), readOnly...)
			require.NoError(t, err)
			require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
		}
		again, err := newRouter(t, primary, []*pgxpool.Pool{leftPool}).SessionFrom(token)
		require.NoError(t, err)
		seen, err := tx.Run(ctx, again, lookFor(1), readOnly...)
		require.NoError(t, err)
		require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
	})
	t.Run("a standby on the new timeline serves it", func(t *testing.T) {
		follower, err := promoted.StartReplica(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { _ = follower.Stop() })
		on := newRouter(t, primary, []*pgxpool.Pool{newPool(t, follower.ConnString(db), nil)},
			replica.WithMaxWait(10*time.Second))
		next, err := on.SessionFrom(token)
		require.NoError(t, err)
		seen, err := tx.Run(ctx, next, lookFor(1), readOnly...)
		require.NoError(t, err)
		require.Equal(t, sighting{Found: true, OnStandby: true}, seen)
	})
}

// waitFor polls query on pool, bounded, until it returns true.
func waitFor(t *testing.T, pool *pgxpool.Pool, query string, args ...any) {
	t.Helper()
	require.Eventually(t, func() bool {
		var done bool
		err := pool.QueryRow(ctxT(t), query, args...).Scan(&done)
		return err == nil && done
	}, 20*time.Second, 5*time.Millisecond, "%s never held", query)
}

// TestOldTimelineTokenMovesToTheNewTimeline: a session wrote before a clean switchover (nothing lost). Afterwards
// every standby follows the new primary on timeline 2, and no standby reports timeline 1 again once it has made a
// restartpoint: the session's read from the primary moves its token onto the new timeline, so that later reads go
// to standbys again instead of to the primary for good.
func TestOldTimelineTokenMovesToTheNewTimeline(t *testing.T) {
	ctx := ctxT(t)
	old, db, oldPool := ownPrimary(t)
	next, err := old.StartReplica(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = next.Stop() })

	s := newRouter(t, oldPool, nil).Session()
	_, err = tx.Run(ctx, s, insert(1))
	require.NoError(t, err)
	token := s.Token()
	require.True(t, strings.HasPrefix(token, "1:"), token)
	_, position, _ := strings.Cut(token, ":")
	waitFor(t, newPool(t, next.ConnString(db), nil), "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", position)
	oldPool.Close()
	require.NoError(t, old.Stop()) // a clean switchover: nothing lost
	require.NoError(t, next.Promote(ctx))

	follower, err := next.StartReplica(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = follower.Stop() })
	followerPool := newPool(t, follower.ConnString(db), nil)
	primary := newPool(t, next.ConnString(db), nil)
	_, err = primary.Exec(ctx, "CHECKPOINT")
	require.NoError(t, err)
	var end string
	require.NoError(t, primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&end))
	waitFor(t, followerPool, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", end)
	_, err = followerPool.Exec(ctx, "CHECKPOINT") // a restartpoint: the follower now reports timeline 2
	require.NoError(t, err)

	again, err := newRouter(t, primary, []*pgxpool.Pool{followerPool}, replica.WithMaxWait(time.Second)).
		SessionFrom(token)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		seen, err := tx.Run(ctx, again, lookFor(1), readOnly...)
		require.NoError(t, err)
		require.True(t, seen.Found)
		return seen.OnStandby
	}, 20*time.Second, 50*time.Millisecond, "reads stayed on the primary; token %s", again.Token())
	require.True(t, strings.HasPrefix(again.Token(), "2:"), again.Token())
}

// TestLostTailIsNotCarriedOntoTheNewTimeline: a session's write on the old primary is lost in an asynchronous
// failover, far along the old timeline; its next write is on the new primary. The token must name that write's
// position on timeline 2, not the lost one's (which timeline 2 may not reach for a long time), so that a standby that
// has replayed the new primary serves the session.
func TestLostTailIsNotCarriedOntoTheNewTimeline(t *testing.T) {
	ctx := ctxT(t)
	f := newFork(t, false)
	oldPool := f.oldPool

	s := newRouter(t, oldPool, nil).Session()
	var sw string
	for i := range 3 { // the old primary moves far ahead: three WAL segments
		_, err := oldPool.Exec(ctx, "INSERT INTO items VALUES ($1)", 1000+i) // a switch with nothing written is none
		require.NoError(t, err)
		require.NoError(t, oldPool.QueryRow(ctx, "SELECT pg_switch_wal()::text").Scan(&sw))
	}
	_, err := tx.Run(ctx, s, insert(99)) // lost with the old primary
	require.NoError(t, err)
	primary := f.failOver(t)
	followerPool := newPool(t, startReplica(t, f.promoted).ConnString(f.db), nil)

	moved, err := newRouter(t, primary, []*pgxpool.Pool{followerPool}, replica.WithMaxWait(time.Second)).
		SessionFrom(s.Token())
	require.NoError(t, err)
	_, err = tx.Run(ctx, moved, insert(1))
	require.NoError(t, err)
	var end string
	require.NoError(t, primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&end))
	waitFor(t, followerPool, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", end)
	seen, err := tx.Run(ctx, moved, lookFor(1), readOnly...)
	require.NoError(t, err)
	require.Equal(t, sighting{Found: true, OnStandby: true}, seen, "token %s", moved.Token())
}

// TestAStandbyLeftBehindByAFailoverIsNotReadFrom: an asynchronous failover loses a session's write, which a second
// standby, left behind on the old timeline, had replayed. Once the Router has learnt the new primary's timeline (here
// from another session's commit), the old session's reads go to the primary, which moves its token onto the new
// timeline, instead of to the left-behind standby: that one still shows the lost write and will never show anything
// written since. A late report of a commit on the old timeline does not undo what the Router learnt.
func TestAStandbyLeftBehindByAFailoverIsNotReadFrom(t *testing.T) {
	ctx := ctxT(t)
	f := newFork(t, true) // the standby to promote will not have item 7

	s := newRouter(t, f.oldPool, nil).Session()
	_, err := tx.Run(ctx, s, insert(7))
	require.NoError(t, err)
	token := s.Token()
	require.True(t, strings.HasPrefix(token, "1:"), token)
	_, position, _ := strings.Cut(token, ":")
	leftPool := newPool(t, f.left.ConnString(f.db), nil)
	waitFor(t, leftPool, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", position)
	primary := f.failOver(t)

	r := newRouter(t, primary, []*pgxpool.Pool{leftPool}, replica.WithMaxWait(time.Second))
	_, err = tx.Run(ctx, r.Session(), insert(8)) // another session's commit: the Router learns timeline 2
	require.NoError(t, err)
	// A commit on the old primary reported late (it raced the failover): it must not set the Router back.
	r.Session().RecordTimelineCommit(ctx, 1, position)
	again, err := r.SessionFrom(token)
	require.NoError(t, err)
	for _, want := range []struct {
		id   int
		seen sighting
	}{{7, sighting{Found: false, OnStandby: false}}, {8, sighting{Found: true, OnStandby: false}}} {
		seen, err := tx.Run(ctx, again, lookFor(want.id), readOnly...)
		require.NoError(t, err)
		require.Equal(t, want.seen, seen, "item %d, token %s", want.id, again.Token())
	}
	require.True(t, strings.HasPrefix(again.Token(), "2:"), again.Token())
}

// fork is a primary of the test's own with a standby to promote, stopped (crashed) before the writes the failover
// will lose, and, if asked for, a second standby that keeps replaying the old primary and is left behind by the
// failover.
type fork struct {
	old, promoted, left *pgtest.Cluster // left is nil unless asked for
	db                  string
	oldPool             *pgxpool.Pool
}

func newFork(t *testing.T, withLeft bool) *fork {
	t.Helper()
	ctx := ctxT(t)
	f := &fork{}
	f.old, f.db, f.oldPool = ownPrimary(t)
	f.promoted = startReplica(t, f.old)
	if withLeft {
		f.left = startReplica(t, f.old)
	}
	require.NoError(t, f.promoted.Crash(ctx)) // it has the table, and will have nothing after it
	return f
}

// failOver crashes the old primary and promotes the standby that stopped early, and returns a pool on it.
func (f *fork) failOver(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := ctxT(t)
	f.oldPool.Close()
	require.NoError(t, f.old.Crash(ctx))
	require.NoError(t, f.promoted.Restart(ctx))
	require.NoError(t, f.promoted.Promote(ctx))
	return newPool(t, f.promoted.ConnString(f.db), nil)
}

func startReplica(t *testing.T, of *pgtest.Cluster) *pgtest.Cluster {
	t.Helper()
	c, err := of.StartReplica(ctxT(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	return c
}

// ownPrimary starts a primary of the test's own (the timeline tests crash and promote servers), with a database that
// has an items table, and returns it, the database's name and a pool on it.
func ownPrimary(t *testing.T) (*pgtest.Cluster, string, *pgxpool.Pool) {
	t.Helper()
	ctx := ctxT(t)
	c, err := pgtest.Start(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	connString, err := c.CreateDatabase(ctx, "")
	require.NoError(t, err)
	cfg, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	pool := newPool(t, connString, nil)
	_, err = pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)")
	require.NoError(t, err)
	return c, cfg.Database, pool
}
