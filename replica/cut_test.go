package replica_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// shortDeadline is the deadline of farReplicaMissedOnce's read: half of it for the look, half for the primary.
const shortDeadline = 240 * time.Millisecond

// farReplicaMissedOnce returns a pair whose replica answers each look 150 ms late (another region, say), a session
// on it with one write, and the count of looks, after one read with a shortDeadline, whose look the replica had to
// answer within 120 ms, went to the primary. The Router's MaxWait is a second, so that a read with a 1 s deadline is
// cut too (its replicas' time ends at the reserve, 750 ms in, before MaxWait would end it) and is asked whether the
// suspicion applies to it: with the default 50 ms MaxWait it would not be cut, and would try the replica whatever
// the suspicion said.
//
// The figures leave the primary 120 ms for its part of the short read: with 30 ms (a 60 ms deadline), a loaded CI
// host under -race once failed the read there, which is no fault of the Router's.
func farReplicaMissedOnce(t *testing.T) (*pair, *replica.Session, *atomic.Int32) {
	t.Helper()
	p := newPair(t)
	proxy, pool := proxied(t, p.standby.ConnString(p.dbname))
	require.NoError(t, pool.Ping(ctxT(t)))
	looks := slowLooks(proxy, 150*time.Millisecond)
	s := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute),
		replica.WithMaxWait(time.Second)).Session()
	_, err := tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)
	p.waitForReplay(t)
	seen, err := readWithin(t, s, shortDeadline)
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
		_, err := readWithin(t, s, shortDeadline)
		require.NoError(t, err)
	}
	require.Equal(t, before, looks.Load(), "reads with a short deadline waited again for looks the replica had just "+
		"failed to answer in time")
}

// A replica that stops completing handshakes while some of its connections are lent out (transactions hung on the
// frozen server) is not busy: its pool is dialling. It must be left out like one with no connection at all, not cost
// every read the time a lend may take; so must one whose pool was full, when a hung connection is closed (its
// caller's deadline cancelled its query) and the lend's dial to replace it hangs too.
func TestAFrozenReplicaWithConnectionsLentOutIsLeftOut(t *testing.T) {
	for _, c := range []struct {
		name         string
		lent         int
		closeOneLent bool
	}{
		{name: "none lent", lent: 0},
		{name: "one lent", lent: 1},
		{name: "all lent, one closed", lent: 2, closeOneLent: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t)
			var frozen atomic.Bool
			stop := make(chan struct{})
			t.Cleanup(func() { close(stop) })
			pool := newPool(t, p.standby.ConnString(p.dbname)+"&connect_timeout=5", func(cfg *pgxpool.Config) {
				cfg.MaxConns = 2
				dial := cfg.ConnConfig.DialFunc
				cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
					if !frozen.Load() {
						return dial(ctx, network, addr)
					}
					return hang(ctx, stop)
				}
			})
			var held []*pgxpool.Conn
			for range c.lent {
				conn, err := pool.Acquire(ctxT(t))
				require.NoError(t, err)
				held = append(held, conn)
			}
			t.Cleanup(func() {
				for _, conn := range held {
					conn.Release()
				}
			})
			frozen.Store(true)
			if c.closeOneLent {
				closing := held[0]
				held = held[1:]
				time.AfterFunc(100*time.Millisecond, func() {
					_ = closing.Conn().Close(context.Background())
					closing.Release()
				})
			}
			requireLeftOutAfterTwoShares(t, p, pool)
		})
	}
}

// With eleven replicas or more, a read's share of the floor is under 25 ms; a frozen replica must still be left out.
func TestFrozenReplicasAmongManyAreLeftOut(t *testing.T) {
	p := newPair(t)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	var silent []*pgxpool.Pool
	for range 11 {
		silent = append(silent, newPool(t, "postgres://postgres@"+deadAddr(t)+"/x?sslmode=disable&connect_timeout=5",
			func(cfg *pgxpool.Config) {
				cfg.ConnConfig.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
					return hang(ctx, stop)
				}
			}))
	}
	// Each read tries every replica still in: two floors of 250 ms, then none.
	requireAtMostTwoShares(t, newRouter(t, p.primary, silent, replica.WithCooldown(time.Minute)))
}

// A replica that failed a short read's 120 ms look is still tried by reads with the time to wait for its answer: a
// suspicion is about reads with as little time, not about every read with a deadline.
func TestASuspicionPassesOverOnlyReadsWithAsLittleTime(t *testing.T) {
	p, s, _ := farReplicaMissedOnce(t)
	for i := range 3 {
		_, err := tx.Run(ctxT(t), s, insert(10+i)) // a new token each time: each read must look
		require.NoError(t, err)
		p.waitForReplay(t)
		seen, err := readWithin(t, s, time.Second) // 750 ms for the replica, 250 ms of reserve
		require.NoError(t, err)
		require.True(t, seen.OnStandby, "read %d, with time for the look, went to the primary", i)
	}
}

// A healthy replica pool whose connections are all lent out is busy, also when one of them is closed late in a read's
// share and the read's own Acquire dials its replacement: the dial pending when the share ends says nothing yet,
// and such lends must not get the replica left out, two of them ending at the same moment included.
func TestABusyReplicaReplacingAConnectionIsNotLeftOut(t *testing.T) {
	p := newPair(t)
	pool := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) {
		c.MaxConns = 2
		dial := c.ConnConfig.DialFunc
		c.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			time.Sleep(150 * time.Millisecond) // a dial that the share's end finds pending
			return dial(ctx, network, addr)
		}
	})
	a, err := pool.Acquire(ctxT(t))
	require.NoError(t, err)
	b, err := pool.Acquire(ctxT(t))
	require.NoError(t, err)
	r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute))
	closed := make(chan struct{})
	time.AfterFunc(180*time.Millisecond, func() { // the replacement is ready 80 ms after the read's share ends
		defer close(closed)
		_ = b.Conn().Close(context.Background())
		b.Release()
	})
	// Two reads queued on the pool at once, as on a busy pool: their shares end at the same moment, one sighting.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			onStandby, err := tx.Run(ctxT(t), r, tx.QueryOne("SELECT pg_is_in_recovery()", pgx.RowTo[bool]),
				readOnly...)
			if err != nil || onStandby {
				t.Errorf("a read on a busy pool: %v, on the standby: %v", err, onStandby)
			}
		})
	}
	wg.Wait()
	<-closed
	a.Release()
	require.Eventually(t, func() bool { return pool.Stat().IdleConns() == 2 }, 5*time.Second, 10*time.Millisecond)
	require.True(t, where(t, r, readOnly...), "a healthy replica with idle connections was left out")
}

// A connection given back just as a lend's time runs out leaves an idle one behind, as a frozen replica's hung
// health check does: one such lend of a busy pool must not get the replica left out, nor passed over by reads with
// deadlines (400 ms cuts a read's share short; 500 ms, with the default MaxWait, leaves it a few microseconds short).
func TestAConnectionReturnedAsALendGivesUpDoesNotLeaveTheReplicaOut(t *testing.T) {
	for _, d := range []time.Duration{0, 400 * time.Millisecond, 500 * time.Millisecond} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			p := newPair(t)
			var held atomic.Pointer[pgxpool.Conn]
			pool := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) {
				c.MaxConns = 1
				c.ConnConfig.Tracer = releaseOnFailedAcquire{&held}
			})
			conn, err := pool.Acquire(ctxT(t))
			require.NoError(t, err)
			held.Store(conn)
			r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute))
			require.False(t, whereWithin(t, r, d), "the pool was busy for the whole share")
			require.Nil(t, held.Load(), "the lend's Acquire did not give up")
			require.True(t, whereWithin(t, r, d), "a busy replica was left out")
		})
	}
}

// whereWithin is where, through r with readOnly, with a deadline d away (none for 0).
func whereWithin(t *testing.T, r *replica.Router, d time.Duration) bool {
	t.Helper()
	ctx := ctxT(t)
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	onStandby, err := tx.Run(ctx, r, tx.QueryOne("SELECT pg_is_in_recovery()", pgx.RowTo[bool]), readOnly...)
	require.NoError(t, err)
	return onStandby
}

// releaseOnFailedAcquire gives back the connection held, once, when an Acquire fails: after the Acquire gave up and
// before the Router looks at the pool. pgxpool calls a connection Tracer that also traces acquires.
type releaseOnFailedAcquire struct{ held *atomic.Pointer[pgxpool.Conn] }

func (releaseOnFailedAcquire) TraceQueryStart(ctx context.Context, _ *pgx.Conn,
	_ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (releaseOnFailedAcquire) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r releaseOnFailedAcquire) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool,
	_ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}

func (r releaseOnFailedAcquire) TraceAcquireEnd(_ context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	if data.Err != nil {
		if c := r.held.Swap(nil); c != nil {
			c.Release()
		}
	}
}

// A frozen replica (every message held, every dial hanging) whose pool holds idle connections, as a pool usually does:
// pgxpool pings a connection idle for over a second before lending it, and the ping never answers. That is a replica
// not answering, not a busy pool: it must be left out, not cost every read its share until the pool has no idle
// connection left.
func TestAFrozenReplicaWithIdleConnectionsIsLeftOut(t *testing.T) {
	p := newPair(t)
	pool, freeze := freezable(t, p, 4)
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
	freeze()
	requireLeftOutAfterTwoShares(t, p, pool)
}

// freezable returns a pool of at most maxConns connections to p's standby, and a function that freezes the standby
// as the pool sees it: every message held (at most 10 s, or until the test ends), every new handshake hanging. The
// proxy holds every message but the startup one, which it does not show its rule: the handshake is held in the dial.
func freezable(t *testing.T, p *pair, maxConns int32) (*pgxpool.Pool, func()) {
	t.Helper()
	var frozen atomic.Bool
	stop := make(chan struct{})
	hold := func() {
		select { // bounded: 10 s or the test's end
		case <-stop:
		case <-time.After(10 * time.Second):
		}
	}
	proxy, pool := proxiedWith(t, p.standby.ConnString(p.dbname)+"&connect_timeout=5", func(c *pgxpool.Config) {
		c.MaxConns = maxConns
		dial := c.ConnConfig.DialFunc
		c.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if frozen.Load() {
				return hang(ctx, stop)
			}
			return dial(ctx, network, addr)
		}
	})
	t.Cleanup(func() { close(stop) }) // before the pool's close, which waits for the connections held
	proxy.SetRule(func(faultproxy.Message) faultproxy.Action {
		if frozen.Load() {
			hold()
		}
		return faultproxy.Forward
	})
	return pool, func() { frozen.Store(true) }
}

// requireLeftOutAfterTwoShares runs six reads through a Router over p's primary and pool, and requires them to go to
// the primary, and at most two of them to pay a lend share (250 ms with one replica): one lend that finds the
// replica maybe not answering, and a second that finds it so again. Counted, not summed: two shares and six reads on
// a loaded host take about as long as three shares.
func requireLeftOutAfterTwoShares(t *testing.T, p *pair, pool *pgxpool.Pool) {
	t.Helper()
	requireAtMostTwoShares(t, newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute)))
}

// requireAtMostTwoShares runs six reads through r, and requires them to go to the primary, and at most two of them
// to take as long as a floor of 250 ms (200 ms or more).
func requireAtMostTwoShares(t *testing.T, r *replica.Router) {
	t.Helper()
	var slow []time.Duration
	for range 6 {
		start := time.Now()
		require.False(t, where(t, r, readOnly...))
		if took := time.Since(start); took >= 200*time.Millisecond {
			slow = append(slow, took)
		}
	}
	require.LessOrEqual(t, len(slow), 2, "reads waited for the frozen replica: %v", slow)
}

// A suspicion keeps the time the replica was actually given. A far replica tried after a busy one got half of a
// 300 ms read's 150 ms and missed; a read with the same deadline that tries it first gives it all 150 ms, enough.
func TestASuspicionKeepsTheTimeTheReplicaWasGiven(t *testing.T) {
	p := newPair(t)
	proxy, far := proxied(t, p.standby.ConnString(p.dbname))
	require.NoError(t, far.Ping(ctxT(t)))
	slowLooks(proxy, 100*time.Millisecond)
	busy := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
	held, err := busy.Acquire(ctxT(t))
	require.NoError(t, err)
	defer held.Release()
	// The first read tries the busy replica first (round robin from the second), the next one the far replica.
	s := newRouter(t, p.primary, []*pgxpool.Pool{far, busy}, replica.WithCooldown(time.Minute)).Session()
	_, err = tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)
	p.waitForReplay(t)
	seen, err := readWithin(t, s, 300*time.Millisecond)
	require.NoError(t, err)
	require.False(t, seen.OnStandby, "75 ms for the far replica's 100 ms look")
	seen, err = readWithin(t, s, 300*time.Millisecond)
	require.NoError(t, err)
	require.True(t, seen.OnStandby, "the far replica, with 150 ms for its look, was passed over")
}

// A replica pool whose connections are all held by long reads through the Router is busy, however long they take:
// it is only skipped, and serves again as soon as they end.
func TestAReplicaHeldByLongReadsIsOnlySkipped(t *testing.T) {
	p := newPair(t)
	pool := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 2 })
	require.NoError(t, pool.Ping(ctxT(t)))
	r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			onStandby, err := tx.Run(ctxT(t), r,
				tx.QueryOne("SELECT pg_is_in_recovery() FROM pg_sleep(0.9)", pgx.RowTo[bool]), readOnly...)
			if err != nil || !onStandby {
				t.Errorf("a long read: %v, on the standby: %v", err, onStandby)
			}
		})
	}
	require.Eventually(t, func() bool { return pool.Stat().AcquiredConns() == 2 }, 5*time.Second, time.Millisecond)
	require.False(t, where(t, r, readOnly...), "the pool was busy")
	require.False(t, where(t, r, readOnly...), "the pool was busy")
	wg.Wait()
	require.Eventually(t, func() bool { return pool.Stat().IdleConns() == 2 }, 5*time.Second, 10*time.Millisecond)
	require.True(t, where(t, r, readOnly...), "a busy replica was left out")
}
