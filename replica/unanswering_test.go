package replica_test

import (
	"context"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/replica"
)

// A replica that accepts connections and then says nothing (a frozen VM, a stopped server) keeps pgx's dial waiting
// until connect_timeout, longer than a read gives a replica to lend a connection. It must be left out for the
// cooldown like one that refuses connections, not tried again by every read.
func TestAReplicaThatDoesNotAnswerIsLeftOut(t *testing.T) {
	primary := newPool(t, pgtest.ConnString(t), nil)
	var dials atomic.Int32
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	silent := newPool(t, "postgres://postgres@"+deadAddr(t)+"/x?sslmode=disable&connect_timeout=2", func(c *pgxpool.Config) {
		c.ConnConfig.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			return hang(ctx, stop)
		}
	})
	r := newRouter(t, primary, []*pgxpool.Pool{silent}, replica.WithCooldown(time.Hour))
	for range 6 {
		require.False(t, where(t, r, readOnly...), "the read went to the primary")
	}
	require.LessOrEqual(t, dials.Load(), int32(2), "one acquire that timed out while dialling, then left out")
}

// MaxWait may be as long as a Duration goes ("wait as long as it takes"): a read must still go to a healthy replica.
func TestTheLongestMaxWaitStillReadsFromTheReplica(t *testing.T) {
	p := newPair(t)
	r := newRouter(t, p.primary, []*pgxpool.Pool{p.replica}, replica.WithMaxWait(math.MaxInt64))
	require.True(t, where(t, r, readOnly...), "a read with a healthy replica went to the primary")
}

// hang is a dial to a replica that accepts TCP and never completes the handshake: it ends only with ctx (pgx's
// connect_timeout) or stop (the test's end).
func hang(ctx context.Context, stop <-chan struct{}) (net.Conn, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-stop:
		return nil, net.ErrClosed
	}
}
