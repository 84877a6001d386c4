package tx_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newPool returns a pool on a fresh database with an accounts table: ids 1..n, balance 100 each.
func newPool(t *testing.T, n int) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
		CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE)`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO accounts SELECT g, 100 FROM generate_series(1, $1::int) g`, n)
	require.NoError(t, err)
	return pool
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	// In one round trip whatever the pool's mode: describe-exec's two would reach two backends through pgbouncer.
	args = append([]any{pgx.QueryExecModeExec}, args...)
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func balance(t *testing.T, pool *pgxpool.Pool, id int) int {
	t.Helper()
	return count(t, pool, "SELECT balance FROM accounts WHERE id = $1", id)
}

// requireNoAcquired checks that every connection went back to the pool.
// requireRetryError checks that err is a *tx.RetryError after attempts attempts, caused by a server error code.
func requireRetryError(t *testing.T, err error, attempts int, code string) {
	t.Helper()
	var re *tx.RetryError
	require.ErrorAs(t, err, &re)
	require.Equal(t, attempts, re.Attempts)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, code, pgErr.Code)
}

// connTo opens a *pgx.Conn of its own to pool's database, closed when the test ends.
func connTo(t *testing.T, pool *pgxpool.Pool) *pgx.Conn {
	t.Helper()
	conn, err := pgx.ConnectConfig(context.Background(), pool.Config().ConnConfig.Copy())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func requireNoAcquired(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	require.Eventually(t, func() bool { return pool.Stat().AcquiredConns() == 0 }, 5*time.Second, 10*time.Millisecond,
		"acquired connections: %d", pool.Stat().AcquiredConns())
}

// tripConn counts round trips: a write that follows a read (or comes first) starts a new one.
type tripConn struct {
	net.Conn
	mu      *sync.Mutex
	trips   *int
	writing *bool
}

func (c tripConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if !*c.writing {
		*c.trips++
		*c.writing = true
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c tripConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	*c.writing = false
	c.mu.Unlock()
	return n, err
}

// tripCounter is a single connection whose round trips are counted.
type tripCounter struct {
	conn  *pgx.Conn
	mu    sync.Mutex
	trips int
	w     bool
}

func newTripCounter(t *testing.T, configure ...func(*pgx.ConnConfig)) *tripCounter {
	t.Helper()
	connString := pgtest.ConnString(t)
	if len(configure) > 0 && pgtest.Pooled() {
		// A configured exec mode or tracer needs the cluster itself: pgtest's pooled strings ask for exec mode.
		cluster, err := pgtest.Shared()
		require.NoError(t, err)
		pooled, err := pgx.ParseConfig(connString)
		require.NoError(t, err)
		connString = cluster.ConnString(pooled.Database)
	}
	cfg, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	for _, f := range configure {
		f(cfg)
	}
	tc := &tripCounter{}
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return tripConn{Conn: c, mu: &tc.mu, trips: &tc.trips, writing: &tc.w}, nil
	}
	tc.conn, err = pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tc.conn.Close(context.Background()) })
	_, err = tc.conn.Exec(context.Background(), `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
		INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g`)
	require.NoError(t, err)
	return tc
}

// measure returns the round trips one call of f makes, after a warm-up call that fills pgx's statement cache.
func (tc *tripCounter) measure(t *testing.T, f func() error) int {
	t.Helper()
	require.NoError(t, f())
	tc.mu.Lock()
	before := tc.trips
	tc.mu.Unlock()
	require.NoError(t, f())
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.trips - before
}
