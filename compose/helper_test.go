package compose_test

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

const itemsDDL = `CREATE TABLE items (id int PRIMARY KEY, pos serial NOT NULL, note text NOT NULL)`

// newPool returns a pool on a fresh database with an empty items table; pos records insertion order.
func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t)
	_, err := pool.Exec(context.Background(), itemsDDL)
	require.NoError(t, err)
	return pool
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// insert is one plain statement adding item id.
func insert(id int) tx.Tx[pgconn.CommandTag] {
	return tx.Exec("INSERT INTO items (id, note) VALUES ($1, 'x')", id)
}

// selectInt is one plain statement yielding v, read back from the server.
func selectInt(v int) tx.Tx[int] {
	return tx.QueryOne("SELECT $1::int", pgx.RowTo[int], v)
}

// ids returns the ids in the items table in insertion order.
func ids(t *testing.T, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) []int {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT id FROM items ORDER BY pos")
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return got
}

// tripConn counts round trips: a write after a read (or the first write) starts a new one.
type tripConn struct {
	net.Conn
	tc *tripCounter
}

func (c tripConn) Write(b []byte) (int, error) {
	c.tc.mu.Lock()
	if !c.tc.writing {
		c.tc.trips++
		c.tc.writing = true
	}
	c.tc.mu.Unlock()
	return c.Conn.Write(b)
}

func (c tripConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.tc.mu.Lock()
	c.tc.writing = false
	c.tc.mu.Unlock()
	return n, err
}

// tripCounter is one connection, with an items table, whose round trips are counted.
type tripCounter struct {
	conn    *pgx.Conn
	mu      sync.Mutex
	trips   int
	writing bool
}

func newTripCounter(t *testing.T) *tripCounter {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.ConnString(t))
	require.NoError(t, err)
	tc := &tripCounter{}
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return tripConn{Conn: c, tc: tc}, nil
	}
	tc.conn, err = pgx.ConnectConfig(ctxT(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tc.conn.Close(context.Background()) })
	_, err = tc.conn.Exec(ctxT(t), itemsDDL)
	require.NoError(t, err)
	return tc
}

// runTrips runs work once to warm pgx's statement cache, then again, and returns the round trips that second run
// made, BEGIN and COMMIT included. items is emptied before each run.
func runTrips[T any](t *testing.T, tc *tripCounter, work tx.Tx[T], opts ...tx.Option) int {
	t.Helper()
	ctx := ctxT(t)
	truncate := func() {
		_, err := tc.conn.Exec(ctx, "TRUNCATE items")
		require.NoError(t, err)
	}
	truncate()
	_, err := tx.Run(ctx, tc.conn, work, opts...)
	require.NoError(t, err)
	truncate()
	tc.mu.Lock()
	before := tc.trips
	tc.mu.Unlock()
	_, err = tx.Run(ctx, tc.conn, work, opts...)
	require.NoError(t, err)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.trips - before
}
