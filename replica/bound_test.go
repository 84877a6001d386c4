package replica_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
)

// proxied returns a pool on connString through a fault proxy of its own.
func proxied(t *testing.T, connString string) (*faultproxy.Proxy, *pgxpool.Pool) {
	t.Helper()
	return proxiedWith(t, connString, nil)
}

// proxiedWith is proxied with the pool's configuration edited, after it was routed through the proxy, by edit.
func proxiedWith(t *testing.T, connString string, edit func(*pgxpool.Config)) (*faultproxy.Proxy, *pgxpool.Pool) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(connString)
	require.NoError(t, err)
	proxy, err := faultproxy.Start(net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.Route(&cfg.ConnConfig.Config)
	if edit != nil {
		edit(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return proxy, pool
}

// TestSessionReadsAreBoundedOnAStuckReplica: a replica that lends no connection (its pool exhausted by long reads)
// or stops answering on a connection already open (a frozen server, a partition) must not hold a session read until
// its context ends: after MaxWait (at least replicaFloor) the read goes to the primary. The caller's context here is
// 5 s, the replica stays stuck for 10 s.
func TestSessionReadsAreBoundedOnAStuckReplica(t *testing.T) {
	cases := map[string]func(t *testing.T, p *pair) *pgxpool.Pool{
		"pool exhausted": func(t *testing.T, p *pair) *pgxpool.Pool {
			pool := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
			held, err := pool.Acquire(ctxT(t))
			require.NoError(t, err)
			time.AfterFunc(10*time.Second, held.Release)
			return pool
		},
		"replica stops answering": func(t *testing.T, p *pair) *pgxpool.Pool {
			proxy, pool := proxied(t, p.standby.ConnString(p.dbname))
			require.NoError(t, pool.Ping(ctxT(t)))
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
				if strings.Contains(m.SQL, "pg_last_wal_replay_lsn") {
					select {
					case <-release:
					case <-time.After(10 * time.Second):
					}
				}
				return faultproxy.Forward
			})
			return pool
		},
	}
	for name, stick := range cases {
		t.Run(name, func(t *testing.T) {
			p := newPair(t)
			stuck := stick(t, p)
			s := newRouter(t, p.primary, []*pgxpool.Pool{stuck}, replica.WithMaxWait(50*time.Millisecond)).Session()
			_, err := tx.Run(ctxT(t), s, insert(1))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			seen, err := tx.Run(ctx, s, lookFor(1), readOnly...)
			require.NoError(t, err, "the read should have gone to the primary")
			require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
		})
	}
}

// TestLaggingReplicaIsNotLeftOut: a replica that is only behind (replay paused) when a session read gives up waiting
// for it is healthy: token-less reads still go there, whatever MaxWait is (the bound of choosing a replica used to
// fire before the wait's own deadline when MaxWait was 250 ms or more, and left the replica out as broken).
func TestLaggingReplicaIsNotLeftOut(t *testing.T) {
	for _, wait := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond} {
		t.Run(wait.String(), func(t *testing.T) {
			p := newPair(t)
			r := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}, replica.WithMaxWait(wait),
				replica.WithCooldown(time.Minute))
			require.True(t, where(t, r, readOnly...))
			p.pauseReplay(t)
			s := r.Session()
			_, err := tx.Run(ctxT(t), s, insert(1))
			require.NoError(t, err)
			seen, err := tx.Run(ctxT(t), s, lookFor(1), readOnly...)
			require.NoError(t, err)
			require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
			require.True(t, where(t, r, readOnly...), "the lagging standby was left out")
		})
	}
}

// TestBusyReplicaPoolDoesNotHideAnIdleOne: of two replica pools, the first exhausted (busy, not broken), reads go to
// the idle second one, not to the primary.
func TestBusyReplicaPoolDoesNotHideAnIdleOne(t *testing.T) {
	p := newPair(t)
	busy := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
	held, err := busy.Acquire(ctxT(t))
	require.NoError(t, err)
	t.Cleanup(held.Release)
	r := newRouter(t, p.primary, []*pgxpool.Pool{busy, p.replica})
	for i := range 4 {
		require.True(t, where(t, r, readOnly...), "read %d went to the primary", i)
	}
}

// TestCancelledCallerGetsAnError: a read whose ctx has ended fails; it is not served by the primary instead.
func TestCancelledCallerGetsAnError(t *testing.T) {
	p := newPair(t)
	r := newRouter(t, p.primary, []*pgxpool.Pool{p.replica})
	s := r.Session()
	_, err := tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = tx.Run(ctx, s, lookFor(1), readOnly...)
	require.ErrorIs(t, err, context.Canceled)
	_, err = tx.Run(ctx, r, lookFor(1), readOnly...)
	require.ErrorIs(t, err, context.Canceled)
}

// TestACallerDeadlineInsideMaxWaitIsServedByThePrimary: a read whose caller's deadline comes before MaxWait is over
// waits on a lagging replica only part of the time left, and then the primary serves it, as it would for a MaxWait
// that ran out; a replica still behind when a wait was cut short that way is not marked slow, so the next read with
// time to spare still waits for it.
func TestACallerDeadlineInsideMaxWaitIsServedByThePrimary(t *testing.T) {
	p := newPair(t)
	s := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}, replica.WithMaxWait(10*time.Second)).Session()
	p.pauseReplay(t)
	_, err := tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)

	seen, err := readWithin(t, s, 400*time.Millisecond)
	require.NoError(t, err, "the primary could serve the read within the caller's deadline")
	require.Equal(t, sighting{Found: true, OnStandby: false}, seen)

	watcher := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
	resumed := make(chan error, 1)
	go func() { resumed <- resumeOncePolled(ctxT(t), watcher) }()
	seen, err = tx.Run(ctxT(t), s, lookFor(1), readOnly...)
	require.NoError(t, err)
	require.NoError(t, <-resumed)
	require.Equal(t, sighting{Found: true, OnStandby: true}, seen, "the replica was not marked slow")
}

// TestFarOffTokensDoNotHoldEveryReplicaConnection: tokens are not signed, and reads whose tokens the replica is far
// from (forged, here) wait at most MaxWait each, holding a replica connection meanwhile. One of the replica pool's
// connections is never held by a wait: a read whose commit the replica has replayed still gets one, and the replica
// serves it.
func TestFarOffTokensDoNotHoldEveryReplicaConnection(t *testing.T) {
	p := newPair(t)
	pool := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 2 })
	r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithMaxWait(3*time.Second))
	honest := r.Session()
	_, err := tx.Run(ctxT(t), honest, insert(1))
	require.NoError(t, err)
	p.waitForReplay(t)
	timeline, _, _ := strings.Cut(honest.Token(), ":")

	var forged sync.WaitGroup
	for i := range 4 {
		s, err := r.SessionFrom(fmt.Sprintf("%s:FFFFFFFF/%X", timeline, 0xFFFF0000-i))
		require.NoError(t, err)
		forged.Go(func() { _, _ = tx.Run(ctxT(t), s, lookFor(1), readOnly...) })
	}
	t.Cleanup(forged.Wait)
	watcher := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
	require.Eventually(t, func() bool { // a forged read is waiting on the replica
		var n int
		err := watcher.QueryRow(ctxT(t), `SELECT count(*) FROM pg_stat_activity
			WHERE query LIKE '%pg_last_wal_replay_lsn() END%' AND pid <> pg_backend_pid()`).Scan(&n)
		return err == nil && n > 0
	}, 2*time.Second, 2*time.Millisecond)

	seen, err := tx.Run(ctxT(t), honest, lookFor(1), readOnly...)
	require.NoError(t, err)
	require.Equal(t, sighting{Found: true, OnStandby: true}, seen, "the replica served the read it could serve")
}

// TestACallerDeadlineNearMaxWaitStillMarksTheReplicaSlow: a wait cut by the caller's deadline to more than half of
// MaxWait counts as one that ran out: the replica still behind is marked slow, and the next reads look once instead
// of each waiting out its own deadline's share again.
func TestACallerDeadlineNearMaxWaitStillMarksTheReplicaSlow(t *testing.T) {
	p := newPair(t)
	s := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}, replica.WithMaxWait(300*time.Millisecond)).Session()
	p.pauseReplay(t)
	_, err := tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)
	read := func() {
		seen, err := readWithin(t, s, 500*time.Millisecond) // the wait is cut from 300 to 250 ms
		require.NoError(t, err)
		require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
	}
	read()
	start := time.Now()
	for range 5 {
		read()
	}
	require.Less(t, time.Since(start), 500*time.Millisecond, "five reads after the first waited again (250 ms each)")
}

// TestACutWaitLeavesThePrimaryItsReserve: once a wait cut by the caller's deadline is over, the read goes to the
// primary rather than to another lagging replica, whose exhausted pool would take the primary's reserve in waiting
// for a connection.
func TestACutWaitLeavesThePrimaryItsReserve(t *testing.T) {
	p := newPair(t)
	busy := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
	held, err := busy.Acquire(ctxT(t))
	require.NoError(t, err)
	defer held.Release()
	// The first read of a Router tries its replicas from the second: the lagging one, then the exhausted one.
	s := newRouter(t, p.primary, []*pgxpool.Pool{busy, p.replica}, replica.WithMaxWait(10*time.Second)).Session()
	p.pauseReplay(t)
	_, err = tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)

	seen, err := readWithin(t, s, 260*time.Millisecond) // wait 130 ms, then 130 ms for the primary
	require.NoError(t, err, "the busy pool's lend (up to 125 ms) took the primary's reserve")
	require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
}

// TestAnExhaustedReplicaPoolLeavesThePrimaryItsReserve: waiting to lend a connection from an exhausted replica pool
// stops where the primary's reserve begins, so that a caller with a short deadline is still served, by the primary.
func TestAnExhaustedReplicaPoolLeavesThePrimaryItsReserve(t *testing.T) {
	p := newPair(t)
	busy := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
	held, err := busy.Acquire(ctxT(t))
	require.NoError(t, err)
	defer held.Release()
	r := newRouter(t, p.primary, []*pgxpool.Pool{busy})
	_, err = p.primary.Exec(ctxT(t), "INSERT INTO items VALUES (1)")
	require.NoError(t, err)
	for _, d := range []time.Duration{150 * time.Millisecond, 250 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(ctxT(t), d)
		seen, err := tx.Run(ctx, r, lookFor(1), readOnly...)
		cancel()
		require.NoError(t, err, "deadline %v", d)
		require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
	}
}

// TestAShortDeadlineNeitherHidesNorLeavesOutAHealthyReplica: under a caller's short deadline, a busy replica pool
// tried first takes only its share of the time before the primary's reserve, so an idle one tried next still serves
// the read; and a replica whose dial that share cut short is not left out for the cooldown.
func TestAShortDeadlineNeitherHidesNorLeavesOutAHealthyReplica(t *testing.T) {
	p := newPair(t)
	read := func(r *replica.Router, d time.Duration) bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctxT(t), d)
		defer cancel()
		seen, err := tx.Run(ctx, r, lookFor(1), readOnly...)
		require.NoError(t, err)
		return seen.OnStandby
	}
	t.Run("a busy pool, then an idle one", func(t *testing.T) {
		busy := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
		held, err := busy.Acquire(ctxT(t))
		require.NoError(t, err)
		defer held.Release()
		idle := newPool(t, p.standby.ConnString(p.dbname), nil)
		require.NoError(t, idle.Ping(ctxT(t)))
		r := newRouter(t, p.primary, []*pgxpool.Pool{idle, busy}) // the busy one first, in every other read
		for range 6 {
			require.True(t, read(r, 200*time.Millisecond), "a read that tried the busy pool first went to the primary")
		}
	})
	t.Run("a dial cut short", func(t *testing.T) {
		slow := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) {
			dial := c.ConnConfig.DialFunc
			c.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				time.Sleep(30 * time.Millisecond)
				return dial(ctx, network, addr)
			}
		})
		r := newRouter(t, p.primary, []*pgxpool.Pool{slow})
		require.False(t, read(r, 40*time.Millisecond), "20 ms before the reserve: no connection in time")
		require.True(t, where(t, r, readOnly...), "the replica was left out after a dial the deadline cut short")
	})
}

// TestAReplicaThatStopsAnsweringDoesNotFailShortDeadlines: under a caller's deadline, a replay look must be answered
// by the time the primary's reserve begins (or within a short floor): one that is not is a failure, so the read goes
// to the primary in time and the replica is left out, instead of every such read failing with its deadline.
func TestAReplicaThatStopsAnsweringDoesNotFailShortDeadlines(t *testing.T) {
	for _, c := range []struct{ wait, deadline time.Duration }{
		{50 * time.Millisecond, 200 * time.Millisecond}, // a deadline inside MaxWait plus the floor
		{2 * time.Second, time.Second},                  // a deadline inside MaxWait: the wait is cut
	} {
		t.Run(c.wait.String()+" "+c.deadline.String(), func(t *testing.T) {
			p := newPair(t)
			proxy, pool := proxied(t, p.standby.ConnString(p.dbname))
			require.NoError(t, pool.Ping(ctxT(t)))
			stallLooks(t, proxy)
			s := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithMaxWait(c.wait)).Session()
			_, err := tx.Run(ctxT(t), s, insert(1))
			require.NoError(t, err)
			for i := range 3 {
				seen, err := readWithin(t, s, c.deadline)
				require.NoError(t, err, "read %d: the primary could serve it", i)
				require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
			}
		})
	}
}
