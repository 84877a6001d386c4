package replica_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
			require.Eventually(t, func() bool { return read() < 150*time.Millisecond }, 5*time.Second,
				10*time.Millisecond, "the frozen replica was never left out")
			for range 5 {
				require.Less(t, read(), 150*time.Millisecond, "a read paid a share after the replica was left out")
			}
		})
	}
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
// answer too; and the probe runs the pool's BeforeConnect, which may say where to connect (here the port, the
// configured one being closed).
func TestABusyReplicaIsProbedOncePerCooldown(t *testing.T) {
	for _, c := range []struct {
		name               string
		refused, placeheld bool
	}{
		{name: "answered"},
		{name: "refused", refused: true},
		{name: "told where by BeforeConnect", placeheld: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t)
			var probing atomic.Bool
			pool, dials := countedPool(t, p, func(cfg *pgxpool.Config) {
				port := cfg.ConnConfig.Port
				if c.placeheld {
					_, closed, err := net.SplitHostPort(deadAddr(t))
					require.NoError(t, err)
					n, err := strconv.ParseUint(closed, 10, 16)
					require.NoError(t, err)
					cfg.ConnConfig.Port = uint16(n)
				}
				cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
					cc.Port = port
					if c.refused && probing.Load() { // holdAll's dials are done by then: the probe's
						cc.Database = "pgxact_no_such_database"
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
			time.Sleep(300 * time.Millisecond) // ample for a healthy replica's handshake, and for a second probe
			require.Equal(t, before+1, dials.Load(), "dials outside the pool for four reads within one cooldown")
			release()
			require.True(t, where(t, r, readOnly...), "a busy replica that answered was left out")
		})
	}
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
