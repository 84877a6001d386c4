package replica_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
)

// TestHigherTimelineTokenIsSettled: a token on a later timeline than the primary's (a cookie from before a major
// upgrade, whose timelines start again at 1, or from a split brain's other side) makes the session's commits count as
// lost positions; settling on the primary must then take the primary's timeline, or every read of the session stays
// on the primary for good.
func TestHigherTimelineTokenIsSettled(t *testing.T) {
	p := newPair(t)
	s, err := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}, replica.WithMaxWait(time.Second)).SessionFrom("9:0/1")
	require.NoError(t, err)
	_, err = tx.Run(ctxT(t), s, insert(1))
	require.NoError(t, err)
	p.waitForReplay(t)
	require.Eventually(t, func() bool {
		seen, err := tx.Run(ctxT(t), s, lookFor(1), readOnly...)
		require.NoError(t, err)
		require.True(t, seen.Found)
		return seen.OnStandby
	}, 10*time.Second, 20*time.Millisecond, "reads stayed on the primary; token %s", s.Token())
	require.True(t, strings.HasPrefix(s.Token(), "1:"), s.Token())
}

// TestSettlingAndRebasingReportTheCallersCtx: when the caller's ctx ends while the session asks the primary for its
// position (settling after a lost position, or moving a token of another timeline), the read fails with an error that
// wraps the ctx's, and no broken connection is lent.
func TestSettlingAndRebasingReportTheCallersCtx(t *testing.T) {
	for name, token := range map[string]string{"settling": "FFFFFFFF/FFFFFFFF", "rebasing": "9:0/1"} {
		t.Run(name, func(t *testing.T) {
			p := newPair(t)
			proxy, primary := proxied(t, pgtest.ConnString(t))
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
				if strings.Contains(m.SQL, "pg_walfile_name") { // the position query: held for 3 s at most
					select {
					case <-release:
					case <-time.After(3 * time.Second):
					}
				}
				return faultproxy.Forward
			})
			s, err := newRouter(t, primary, []*pgxpool.Pool{p.replica}).SessionFrom(token)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err = tx.Run(ctx, s, lookFor(1), readOnly...)
			require.ErrorIs(t, err, context.DeadlineExceeded)
		})
	}
}

// TestBusyReplicaPoolIsAskedOncePerRead: a replica pool that lends nothing within its share of the bound is skipped
// for the rest of the read, not asked again.
func TestBusyReplicaPoolIsAskedOncePerRead(t *testing.T) {
	p := newPair(t)
	busy := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
	held, err := busy.Acquire(ctxT(t))
	require.NoError(t, err)
	t.Cleanup(held.Release)
	r := newRouter(t, p.primary, []*pgxpool.Pool{busy}, replica.WithMaxWait(3*time.Second))
	require.False(t, where(t, r, readOnly...), "the primary serves the read")
	require.Equal(t, int64(1), busy.Stat().CanceledAcquireCount())
}
