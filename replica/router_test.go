package replica_test

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

func TestRouting(t *testing.T) {
	p := newPair(t)
	r := newRouter(t, p.primary, []*pgxpool.Pool{p.replica})
	ctx := ctxT(t)

	cases := []struct {
		name      string
		opts      []tx.Option
		onStandby bool
	}{
		{"read-only repeatable read goes to the replica", readOnly, true},
		{"read-only read committed goes to the replica", []tx.Option{tx.ReadOnly(), tx.WithIsolation(pgx.ReadCommitted)}, true},
		{"read-only at the default isolation goes to the replica", []tx.Option{tx.ReadOnly()}, true},
		{"read-only serializable by name stays on the primary",
			[]tx.Option{tx.ReadOnly(), tx.WithIsolation(pgx.Serializable)}, false},
		{"read-only deferrable stays on the primary", []tx.Option{tx.ReadOnly(), tx.Deferrable()}, false},
		{"read-write goes to the primary", nil, false},
		{"read-write repeatable read goes to the primary", []tx.Option{tx.WithIsolation(pgx.RepeatableRead)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.onStandby, where(t, r, c.opts...))
		})
	}
	t.Run("the default isolation is repeatable read on a standby, serializable on the primary", func(t *testing.T) {
		isolation := tx.QueryOne("SELECT current_setting('transaction_isolation')", pgx.RowTo[string])
		got, err := tx.Run(ctx, r, isolation, tx.ReadOnly())
		require.NoError(t, err)
		require.Equal(t, "repeatable read", got)
		got, err = tx.Run(ctx, r, isolation)
		require.NoError(t, err)
		require.Equal(t, "serializable", got)
		got, err = tx.Run(ctx, p.primary, isolation, tx.ReadOnly())
		require.NoError(t, err)
		require.Equal(t, "serializable", got, "read-only on a primary keeps the default")
	})
	t.Run("a connection lent as a replica's begins at repeatable read without the server's word", func(t *testing.T) {
		// A "replica" that is a primary, as one behind pgbouncer looks: no in_hot_standby reaches the client.
		asReplica := newPool(t, p.primary.Config().ConnString(), nil)
		mislabelled := newRouter(t, p.primary, []*pgxpool.Pool{asReplica})
		got, err := tx.Run(ctx, mislabelled, tx.QueryOne("SELECT current_setting('transaction_isolation')",
			pgx.RowTo[string]), tx.ReadOnly())
		require.NoError(t, err)
		require.Equal(t, "repeatable read", got)
	})
	t.Run("a pool on a standby runs read-only work at the default isolation", func(t *testing.T) {
		require.True(t, where(t, p.replica, tx.ReadOnly()))
		_, err := tx.Run(ctx, p.replica, tx.Exec("SELECT 1"), tx.ReadOnly(), tx.WithIsolation(pgx.Serializable))
		requireSQLState(t, "0A000", err)
	})
	t.Run("an Injector over the router arms read-only work on the primary", func(t *testing.T) {
		inj := txtest.Inject(r)
		got, err := tx.Run(ctx, inj, tx.QueryOne("SELECT pg_is_in_recovery()", pgx.RowTo[bool]), tx.ReadOnly(),
			tx.WithPolicy(txtest.Policy()))
		require.NoError(t, err)
		require.False(t, got)
		require.Equal(t, 2, inj.Attempts())
	})
	t.Run("writes commit on the primary", func(t *testing.T) {
		_, err := tx.Run(ctx, r, insert(1))
		require.NoError(t, err)
		var n int
		require.NoError(t, p.primary.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n))
		require.Equal(t, 1, n)
	})
	t.Run("BeginTx uses the primary even for read-only transactions", func(t *testing.T) {
		q, err := r.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
		require.NoError(t, err)
		defer q.Rollback(ctx)
		var onStandby bool
		require.NoError(t, q.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&onStandby))
		require.False(t, onStandby)
	})
	t.Run("no connection is left borrowed", func(t *testing.T) {
		require.Zero(t, p.primary.Stat().AcquiredConns())
		require.Zero(t, p.replica.Stat().AcquiredConns())
	})
}

func TestRoundRobin(t *testing.T) {
	p := newPair(t)
	// Two pools on the one standby, told apart by application_name.
	named := func(name string) *pgxpool.Pool {
		return newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) {
			c.ConnConfig.RuntimeParams["application_name"] = name
		})
	}
	r := newRouter(t, p.primary, []*pgxpool.Pool{named("a"), named("b")})
	app := tx.QueryOne("SELECT current_setting('application_name')", pgx.RowTo[string])
	var seen []string
	for range 6 {
		name, err := tx.Run(ctxT(t), r, app, readOnly...)
		require.NoError(t, err)
		seen = append(seen, name)
	}
	for i := 1; i < len(seen); i++ {
		require.NotEqual(t, seen[i-1], seen[i], "consecutive reads on the same replica: %v", seen)
	}
}

func TestFallbackToThePrimary(t *testing.T) {
	p := newPair(t)

	t.Run("without replicas reads go to the primary", func(t *testing.T) {
		require.False(t, where(t, newRouter(t, p.primary, nil), readOnly...))
	})
	t.Run("a closed replica pool is skipped", func(t *testing.T) {
		closed := newPool(t, p.standby.ConnString(p.dbname), nil)
		closed.Close()
		r := newRouter(t, p.primary, []*pgxpool.Pool{closed})
		for range 3 {
			require.False(t, where(t, r, readOnly...))
		}
	})
	t.Run("an unreachable replica is skipped and the healthy one used", func(t *testing.T) {
		dead := newPool(t, "postgres://postgres@"+deadAddr(t)+"/x?sslmode=disable&connect_timeout=2", nil)
		r := newRouter(t, p.primary, []*pgxpool.Pool{dead, p.replica})
		for range 4 {
			require.True(t, where(t, r, readOnly...))
		}
	})
	t.Run("an unreachable replica alone sends reads to the primary", func(t *testing.T) {
		dead := newPool(t, "postgres://postgres@"+deadAddr(t)+"/x?sslmode=disable&connect_timeout=2", nil)
		r := newRouter(t, p.primary, []*pgxpool.Pool{dead})
		require.False(t, where(t, r, readOnly...))
	})
	t.Run("a replica that is not a standby is skipped by sessions", func(t *testing.T) {
		// The primary posing as a replica: pg_last_wal_replay_lsn() is NULL there, so it cannot vouch for a commit.
		// It connects directly, as replica pools do: through pgbouncer, its application_name would stay on server
		// connections that the primary's clients, which set none, get next.
		cluster, err := pgtest.Shared()
		require.NoError(t, err)
		imposter := newPool(t, cluster.ConnString(p.dbname), func(c *pgxpool.Config) {
			c.ConnConfig.RuntimeParams["application_name"] = "imposter"
		})
		s := newRouter(t, p.primary, []*pgxpool.Pool{imposter}).Session()
		_, err = tx.Run(ctxT(t), s, insert(10))
		require.NoError(t, err)
		app := tx.QueryOne("SELECT current_setting('application_name')", pgx.RowTo[string])
		for range 2 {
			name, err := tx.Run(ctxT(t), s, app, readOnly...)
			require.NoError(t, err)
			require.NotEqual(t, "imposter", name)
		}
	})
}

// TestReadsThatMentionAnUnseenWriteRunOnAStandby: a read-only transaction whose SQL mentions a notification or
// READ WRITE is looked at with an id-assigning look (package tx), which a hot standby cannot honour; on a standby
// it must look without assigning, and the read must succeed there.
func TestReadsThatMentionAnUnseenWriteRunOnAStandby(t *testing.T) {
	p := newPair(t)
	r := newRouter(t, p.primary, []*pgxpool.Pool{p.replica})
	for _, sql := range []string{
		"SELECT 'notify me' || pg_is_in_recovery()::text",
		"SELECT 'read write' || pg_is_in_recovery()::text",
	} {
		got, err := tx.Run(ctxT(t), r, tx.QueryOne(sql, pgx.RowTo[string]), readOnly...)
		require.NoError(t, err, sql)
		require.True(t, strings.HasSuffix(got, "true"), "%s ran on the standby: %q", sql, got)
	}
}

// TestCooldownKeepsAFailedReplicaOut: a replica that failed is not tried again before its cooldown ends, with the
// largest cooldown as with an hour (whose end, in nanoseconds since 1970, would not fit an int64).
func TestCooldownKeepsAFailedReplicaOut(t *testing.T) {
	for _, cooldown := range []time.Duration{time.Hour, math.MaxInt64} {
		t.Run(cooldown.String(), func(t *testing.T) {
			primary := newPool(t, pgtest.ConnString(t), nil)
			var dials atomic.Int32
			down := newPool(t, "postgres://postgres@"+deadAddr(t)+"/x?sslmode=disable&connect_timeout=2", func(c *pgxpool.Config) {
				c.ConnConfig.DialFunc = func(context.Context, string, string) (net.Conn, error) {
					dials.Add(1)
					return nil, errors.New("replica down")
				}
			})
			r, err := replica.New(primary, []*pgxpool.Pool{down}, replica.WithCooldown(cooldown))
			require.NoError(t, err)
			for range 5 {
				require.False(t, where(t, r, readOnly...), "the read went to the primary")
			}
			n := dials.Load()
			require.Positive(t, n)
			require.LessOrEqual(t, n, int32(2), "one failed acquire (pgx may dial twice for it), then left out")
		})
	}
}

// deadAddr returns a loopback address nothing listens on: a port just bound and released.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/never?sslmode=disable") // never dialled
	require.NoError(t, err)
	defer pool.Close()
	cases := []struct {
		name     string
		primary  *pgxpool.Pool
		replicas []*pgxpool.Pool
		opts     []replica.Option
	}{
		{"nil primary", nil, nil, nil},
		{"nil replica", pool, []*pgxpool.Pool{pool, nil}, nil},
		{"nil option", pool, nil, []replica.Option{nil}},
		{"negative max wait", pool, nil, []replica.Option{replica.WithMaxWait(-1)}},
		{"negative cooldown", pool, nil, []replica.Option{replica.WithCooldown(-1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := replica.New(c.primary, c.replicas, c.opts...)
			require.ErrorIs(t, err, replica.ErrInvalid)
			require.Nil(t, r)
		})
	}
	t.Run("zero durations are valid", func(t *testing.T) {
		_, err := replica.New(pool, []*pgxpool.Pool{pool}, replica.WithMaxWait(0), replica.WithCooldown(0))
		require.NoError(t, err)
	})
}
