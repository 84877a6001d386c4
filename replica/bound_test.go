package replica_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
)

// proxied returns a pool to the standby through a fault proxy.
func (p *pair) proxied(t *testing.T) (*faultproxy.Proxy, *pgxpool.Pool) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(p.standby.ConnString(p.dbname))
	require.NoError(t, err)
	proxy, err := faultproxy.Start(net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	cfg.ConnConfig.Port = uint16(proxy.Port())
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
			proxy, pool := p.proxied(t)
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
