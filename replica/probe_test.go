package replica_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/replica"
)

// holdAll acquires every connection of pool, as reads hung on a frozen replica would hold them, until the returned
// function or the test's end gives them back.
func holdAll(t *testing.T, pool *pgxpool.Pool) func() {
	t.Helper()
	var held []*pgxpool.Conn
	release := func() {
		for _, c := range held {
			c.Release()
		}
		held = nil
	}
	t.Cleanup(release) // before the pool's close, which waits for them
	for range pool.Config().MaxConns {
		c, err := pool.Acquire(ctxT(t))
		require.NoError(t, err)
		held = append(held, c)
	}
	return release
}

// A frozen replica whose pool has lent out every connection looks busy to the pool's statistics, however long its
// connections hang (15 s past their reads' deadlines, about 15 minutes for reads without one). A dial outside the
// pool finds it not answering, and it is left out: reads pay their shares only until the probe's time is up, also
// reads whose deadline cuts their share short (400 ms: 200 ms for the replica).
func TestAFrozenReplicaWithEveryConnectionLentIsLeftOut(t *testing.T) {
	for _, within := range []time.Duration{0, 400 * time.Millisecond} {
		t.Run("deadline "+within.String(), func(t *testing.T) {
			p := newPair(t)
			pool, freeze := freezable(t, p, 2)
			holdAll(t, pool)
			freeze()
			r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute))
			read := func() time.Duration {
				start := time.Now()
				if within > 0 {
					require.False(t, whereWithin(t, r, within))
				} else {
					require.False(t, where(t, r, readOnly...))
				}
				return time.Since(start)
			}
			// A read that pays a share takes 200 ms or more; one that goes to the primary at once, a few.
			require.Eventually(t, func() bool { return read() < 180*time.Millisecond }, 5*time.Second,
				10*time.Millisecond, "the frozen replica was never left out")
			for range 5 {
				require.Less(t, read(), 180*time.Millisecond, "a read paid a share after the replica was left out")
			}
		})
	}
}

// A replica that answered a probe as busy and froze after is probed again within maxProbeEvery (5 s), not only after
// its cooldown (a minute here), and left out.
func TestAReplicaFrozenAfterAnsweringAProbeIsLeftOutWithinSeconds(t *testing.T) {
	p := newPair(t)
	pool, freeze := freezable(t, p, 2)
	holdAll(t, pool)
	r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute))
	require.False(t, where(t, r, readOnly...), "the pool was busy") // its probe is answered
	time.Sleep(500 * time.Millisecond)
	freeze()
	require.Eventually(t, func() bool {
		start := time.Now()
		require.False(t, where(t, r, readOnly...))
		return time.Since(start) < 180*time.Millisecond
	}, 10*time.Second, 10*time.Millisecond, "the replica frozen after answering a probe was never left out")
}

// countedPool is a pool of two connections to p's standby that counts its dials, the probe's included, with edit
// applied to its configuration.
func countedPool(t *testing.T, p *pair, edit func(*pgxpool.Config)) (*pgxpool.Pool, *atomic.Int32) {
	t.Helper()
	var dials atomic.Int32
	pool := newPool(t, p.standby.ConnString(p.dbname), func(cfg *pgxpool.Config) {
		cfg.MaxConns = 2
		dial := cfg.ConnConfig.DialFunc
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dial(ctx, network, addr)
		}
		if edit != nil {
			edit(cfg)
		}
	})
	return pool, &dials
}

// A healthy replica whose pool has lent out every connection is busy: the dial outside the pool is answered, and the
// replica is only skipped, then serves as soon as a connection comes back. It is dialled once per cooldown, not by
// every read that finds the pool busy. An answer that refuses the probe (a database that does not exist) is an
// answer too. The probe runs the pool's BeforeConnect, which may say where to connect (here the port, the configured
// one being closed), and gives it time of its own (here 600 ms, with a dial of 500 ms after it). A first host that
// never answers leaves the probe time for the next (a second each, the pool's connect_timeout being a second too).
func TestABusyReplicaIsProbedOncePerCooldown(t *testing.T) {
	for _, c := range []struct {
		name                                      string
		refused, placeheld, slowHook, silentFirst bool
	}{
		{name: "answered"},
		{name: "refused", refused: true},
		{name: "told where by BeforeConnect", placeheld: true},
		{name: "slow BeforeConnect", slowHook: true},
		{name: "silent first host", silentFirst: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t)
			var probing atomic.Bool // holdAll's dials are done: the next is the probe's
			silent := deadAddr(t)
			pool, dials := countedPool(t, p, func(cfg *pgxpool.Config) {
				cc := cfg.ConnConfig
				port := cc.Port
				if c.placeheld {
					cc.Port = portOf(t, deadAddr(t))
				}
				if c.silentFirst {
					cc.Fallbacks = []*pgconn.FallbackConfig{{Host: cc.Host, Port: cc.Port, TLSConfig: cc.TLSConfig}}
					cc.Port, cc.ConnectTimeout = portOf(t, silent), time.Second
					dial := cc.DialFunc
					cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
						if addr == silent {
							<-ctx.Done() // a host that drops every packet
							return nil, ctx.Err()
						}
						return dial(ctx, network, addr)
					}
				}
				cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
					if c.placeheld {
						cc.Port = port
					}
					if !probing.Load() {
						return nil
					}
					if c.refused {
						cc.Database = "pgxact_no_such_database"
					}
					if c.slowHook {
						time.Sleep(600 * time.Millisecond)
						dial := cc.DialFunc
						cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
							time.Sleep(500 * time.Millisecond)
							return dial(ctx, network, addr)
						}
					}
					return nil
				}
			})
			release := holdAll(t, pool)
			probing.Store(true)
			before := dials.Load()
			r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(time.Minute))
			for range 4 {
				require.False(t, where(t, r, readOnly...), "the pool was busy")
			}
			require.Eventually(t, func() bool { return dials.Load() > before }, 5*time.Second, time.Millisecond,
				"no dial outside the pool")
			time.Sleep(2500 * time.Millisecond) // the probe has ended: a second for each of two hosts, and some
			// (The silent host's dials are not counted: they never reach the counting dial.)
			require.Equal(t, before+1, dials.Load(), "dials outside the pool for four reads within one cooldown")
			release()
			require.True(t, where(t, r, readOnly...), "a busy replica that answered was left out")
		})
	}
}

// portOf is the port of the address host:port.
func portOf(t *testing.T, addr string) uint16 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.ParseUint(port, 10, 16)
	require.NoError(t, err)
	return uint16(n)
}

// With no cooldown a probe could not leave a replica out: none is made, however many reads find its pool busy.
func TestABusyReplicaIsNotProbedWithoutACooldown(t *testing.T) {
	p := newPair(t)
	pool, dials := countedPool(t, p, nil)
	holdAll(t, pool)
	before := dials.Load()
	r := newRouter(t, p.primary, []*pgxpool.Pool{pool}, replica.WithCooldown(0))
	for range 4 {
		require.False(t, where(t, r, readOnly...), "the pool was busy")
	}
	time.Sleep(300 * time.Millisecond) // a probe's dial would have begun
	require.Equal(t, before, dials.Load(), "dials outside the pool with no cooldown")
}
