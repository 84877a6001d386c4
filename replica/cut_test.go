package replica_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
)

// What a replica's failure to answer in time says about it depends on how much time it had. These tests hold the
// Router to that: time a caller's deadline cut short, or that another replica used up, must neither fail a read the
// primary can serve nor leave a replica out for reads that have time for it.

// stallLooks makes every replay look through proxy wait (at most 10 s, or until the test ends) before it reaches
// the standby, and counts them.
func stallLooks(t *testing.T, proxy *faultproxy.Proxy) *atomic.Int32 {
	t.Helper()
	var looks atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		if m.Type == 'B' && strings.Contains(m.SQL, "pg_last_wal_replay_lsn") {
			looks.Add(1)
			select { // bounded: the test ends long before
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		return faultproxy.Forward
	})
	return &looks
}

// slowLooks makes every replay look through proxy take d more, as a replica far away would, and counts them.
func slowLooks(proxy *faultproxy.Proxy, d time.Duration) *atomic.Int32 {
	var looks atomic.Int32
	proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		if m.Type == 'B' && strings.Contains(m.SQL, "pg_last_wal_replay_lsn") {
			looks.Add(1)
			time.Sleep(d)
		}
		return faultproxy.Forward
	})
	return &looks
}

// readWithin runs a session read with a deadline d away.
func readWithin(t *testing.T, s *replica.Session, d time.Duration) (sighting, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxT(t), d)
	defer cancel()
	return tx.Run(ctx, s, lookFor(1), readOnly...)
}

// A deadline of 20 ms leaves the primary a reserve of 10 ms. A look given answerFloor (25 ms) would outlive the
// caller, failing every such read on a stalled replica; the primary alone serves it in a few milliseconds.
func TestATinyDeadlineIsServedPastAStalledReplica(t *testing.T) {
	p := newPair(t)
	proxy, pool := proxied(t, p.standby.ConnString(p.dbname))
	require.NoError(t, pool.Ping(ctxT(t)))
	stallLooks(t, proxy)
	s := newRouter(t, p.primary, []*pgxpool.Pool{pool}).Session()
	_, err := tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)
	// On a loaded host (under -race, beside other packages' tests) the primary itself may not finish a read within
	// its 10 ms: that is no fault of the Router's. The fault held each read on the replica until its deadline, and
	// the error said so (the Router's texts for replica work are matched here, as a user reading it would).
	served := 0
	for i := range 6 {
		seen, err := readWithin(t, s, 20*time.Millisecond)
		if err == nil {
			require.Equal(t, sighting{Found: true, OnStandby: false}, seen)
			served++
			continue
		}
		for _, replicaWork := range []string{"checking replay", "acquire replica connection"} {
			require.NotContains(t, err.Error(), replicaWork, "read %d ran out of time on the replica", i)
		}
	}
	require.GreaterOrEqual(t, served, 3, "the primary served too few reads to tell")
}

// A stalled replica that did not answer a look in the time a short deadline left it is passed over by reads with
// short deadlines for the cooldown, rather than costing each of them half its time.
func TestAStalledReplicaIsPassedOverByShortDeadlines(t *testing.T) {
	p := newPair(t)
	proxy, pool := proxied(t, p.standby.ConnString(p.dbname))
	require.NoError(t, pool.Ping(ctxT(t)))
	looks := stallLooks(t, proxy)
	s := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute)).Session()
	_, err := tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)
	_, err = readWithin(t, s, 200*time.Millisecond) // its look is given 100 ms, then the primary serves it
	require.NoError(t, err)
	require.Equal(t, int32(1), looks.Load())
	for range 3 {
		_, err := readWithin(t, s, 200*time.Millisecond)
		require.NoError(t, err)
	}
	require.Equal(t, int32(1), looks.Load(), "reads with short deadlines looked again at the stalled replica")
}

// A stalled replica's look uses up the whole bound (MaxWait and the floor). A healthy replica tried after it, whose
// pool has not opened a connection yet, then gets no time to lend one: it must not be left out for that.
func TestAStalledReplicaDoesNotLeaveOutTheNextOne(t *testing.T) {
	p := newPair(t)
	proxy, stalled := proxied(t, p.standby.ConnString(p.dbname))
	require.NoError(t, stalled.Ping(ctxT(t)))
	stallLooks(t, proxy)
	cold := newPool(t, p.standby.ConnString(p.dbname), nil) // no connection yet
	r := newRouter(t, p.primary, []*pgxpool.Pool{cold, stalled}, replica.WithMaxWait(50*time.Millisecond),
		replica.WithCooldown(time.Minute))
	s := r.Session()
	_, err := tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)
	p.waitForReplay(t)
	_, err = tx.Run(ctxT(t), s, lookFor(1), readOnly...) // the first read tries the stalled replica first
	require.NoError(t, err)
	require.True(t, where(t, r, readOnly...), "the healthy replica was left out without being tried")
}

// farReplicaMissedOnce returns a pair whose replica answers each look 40 ms late (another region, say), a session
// on it with one write, and the count of looks, after one read with a 60 ms deadline, whose look the replica had to
// answer within 30 ms, went to the primary.
func farReplicaMissedOnce(t *testing.T) (*pair, *replica.Session, *atomic.Int32) {
	t.Helper()
	p := newPair(t)
	proxy, pool := proxied(t, p.standby.ConnString(p.dbname))
	require.NoError(t, pool.Ping(ctxT(t)))
	looks := slowLooks(proxy, 40*time.Millisecond)
	s := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute)).Session()
	_, err := tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)
	p.waitForReplay(t)
	seen, err := readWithin(t, s, 60*time.Millisecond)
	require.NoError(t, err)
	require.False(t, seen.OnStandby, "the look cannot be answered in time")
	return p, s, looks
}

// A healthy replica that could not answer a short read's look in time must not be left out for reads that have the
// time.
func TestAShortDeadlineDoesNotLeaveOutAFarReplicaForOtherReads(t *testing.T) {
	p, s, looks := farReplicaMissedOnce(t)
	for i := range 3 {
		seen, err := tx.Run(ctxT(t), s, lookFor(1), readOnly...)
		require.NoError(t, err)
		require.True(t, seen.OnStandby, "read %d, without a deadline, went to the primary", i)
	}
	// A new write, so that no connection's kept replay position covers the token and each read would have to look.
	_, err := tx.Run(ctxT(t), s, insert(2))
	require.NoError(t, err)
	p.waitForReplay(t)
	before := looks.Load()
	for range 3 {
		_, err := readWithin(t, s, 60*time.Millisecond)
		require.NoError(t, err)
	}
	require.Equal(t, before, looks.Load(), "reads with a short deadline waited again for looks the replica had just "+
		"failed to answer in time")
}

// A replica that stops completing handshakes while one of its connections is lent out (a transaction hung on the
// frozen server) is not busy: its pool is dialling. It must be left out like one with no connection at all, not
// cost every read the time a lend may take.
func TestAFrozenReplicaWithAConnectionLentOutIsLeftOut(t *testing.T) {
	for _, lent := range []bool{false, true} {
		t.Run(map[bool]string{false: "none lent", true: "one lent"}[lent], func(t *testing.T) {
			p := newPair(t)
			var frozen atomic.Bool
			stop := make(chan struct{})
			t.Cleanup(func() { close(stop) })
			pool := newPool(t, p.standby.ConnString(p.dbname)+"&connect_timeout=5", func(c *pgxpool.Config) {
				c.MaxConns = 4
				dial := c.ConnConfig.DialFunc
				c.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
					if !frozen.Load() {
						return dial(ctx, network, addr)
					}
					select { // a handshake that never comes, bounded by connect_timeout or the test's end
					case <-ctx.Done():
						return nil, ctx.Err()
					case <-stop:
						return nil, net.ErrClosed
					}
				}
			})
			if lent {
				held, err := pool.Acquire(ctxT(t))
				require.NoError(t, err)
				t.Cleanup(held.Release)
			}
			frozen.Store(true)
			requireLeftOutAfterOneShare(t, p, pool)
		})
	}
}

// A replica that failed a 60 ms read's 30 ms look is still tried by reads with the time to wait for its answer: a
// suspicion is about reads with as little time, not about every read with a deadline.
func TestASuspicionPassesOverOnlyReadsWithAsLittleTime(t *testing.T) {
	p, s, _ := farReplicaMissedOnce(t)
	for i := range 3 {
		_, err := tx.Run(ctxT(t), s, insert(10+i)) // a new token each time: each read must look
		require.NoError(t, err)
		p.waitForReplay(t)
		seen, err := readWithin(t, s, 500*time.Millisecond) // 250 ms for the replica, 250 ms of reserve
		require.NoError(t, err)
		require.True(t, seen.OnStandby, "read %d, with time for the look, went to the primary", i)
	}
}

// A healthy replica pool whose connections are all lent out is busy, also when one of them is closed late in a read's
// share and replaced: the dial then pending is not the read's, and must not get the replica left out.
func TestABusyReplicaReplacingAConnectionIsNotLeftOut(t *testing.T) {
	p := newPair(t)
	pool := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) {
		c.MaxConns = 2
		dial := c.ConnConfig.DialFunc
		c.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			time.Sleep(30 * time.Millisecond) // a dial that the share's end finds pending
			return dial(ctx, network, addr)
		}
	})
	a, err := pool.Acquire(ctxT(t))
	require.NoError(t, err)
	b, err := pool.Acquire(ctxT(t))
	require.NoError(t, err)
	r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute))
	closed := make(chan struct{})
	time.AfterFunc(230*time.Millisecond, func() { // 20 ms before the read's 250 ms share ends
		defer close(closed)
		_ = b.Conn().Close(context.Background())
		b.Release()
	})
	require.False(t, where(t, r, readOnly...), "the pool was busy for the whole share")
	<-closed
	a.Release()
	require.Eventually(t, func() bool { return pool.Stat().IdleConns() == 2 }, 5*time.Second, 10*time.Millisecond)
	require.True(t, where(t, r, readOnly...), "a healthy replica with idle connections was left out")
}

// A frozen replica (every message held, every dial hanging) whose pool holds idle connections, as a pool usually does:
// pgxpool pings a connection idle for over a second before lending it, and the ping never answers. That is a replica
// not answering, not a busy pool: it must be left out, not cost every read its share until the pool has no idle
// connection left.
func TestAFrozenReplicaWithIdleConnectionsIsLeftOut(t *testing.T) {
	p := newPair(t)
	var frozen atomic.Bool
	stop := make(chan struct{})
	hold := func() {
		select { // bounded by the test's end
		case <-stop:
		case <-time.After(10 * time.Second):
		}
	}
	proxy, pool := proxied(t, p.standby.ConnString(p.dbname)+"&connect_timeout=5")
	t.Cleanup(func() { close(stop) }) // before the pool's close, which waits for the connections held
	proxy.SetRule(func(faultproxy.Message) faultproxy.Action {
		if frozen.Load() {
			hold()
		}
		return faultproxy.Forward
	})
	var conns []*pgxpool.Conn
	for range 4 {
		c, err := pool.Acquire(ctxT(t))
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	time.Sleep(1100 * time.Millisecond) // idle long enough for pgxpool to ping each before lending it
	frozen.Store(true)
	requireLeftOutAfterOneShare(t, p, pool)
}

// requireLeftOutAfterOneShare runs six reads through a Router over p's primary and pool, and requires them to go to
// the primary and to cost one lend share in all (250 ms with one replica), not one each (1.5 s).
func requireLeftOutAfterOneShare(t *testing.T, p *pair, pool *pgxpool.Pool) {
	t.Helper()
	r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute))
	start := time.Now()
	for range 6 {
		require.False(t, where(t, r, readOnly...))
	}
	require.Less(t, time.Since(start), 700*time.Millisecond, "every read waited for the frozen replica")
}
