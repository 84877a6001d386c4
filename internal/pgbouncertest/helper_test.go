package pgbouncertest_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// modes are the query execution modes that work through pgbouncer in transaction mode without prepared statement
// tracking.
var modes = []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeSimpleProtocol}

// setup is a fresh database with a log table, reachable directly and through a pgbouncer private to the test.
type setup struct {
	dbname  string
	direct  *pgxpool.Pool
	bouncer *pgtest.Pgbouncer
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	cluster, err := pgtest.Shared()
	require.NoError(t, err)
	connString := pgtest.ConnString(t)
	config, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	direct, err := pgxpool.New(context.Background(), connString)
	require.NoError(t, err)
	t.Cleanup(direct.Close)
	_, err = direct.Exec(ctxT(t), "CREATE TABLE log (id int PRIMARY KEY, note text NOT NULL)")
	require.NoError(t, err)
	bouncer, err := cluster.StartPgbouncer(ctxT(t))
	if errors.Is(err, pgtest.ErrExternal) || errors.Is(err, pgtest.ErrNoPgbouncer) {
		t.Fatalf("pgbouncer tests need an embedded cluster and pgbouncer: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bouncer.Stop()) })
	return &setup{dbname: config.Database, direct: direct, bouncer: bouncer}
}

// pool returns a pool of one connection through pgbouncer in the given mode, and its round-trip counter.
func (s *setup) pool(t *testing.T, mode pgx.QueryExecMode) (*pgxpool.Pool, *trips) {
	t.Helper()
	config, err := pgxpool.ParseConfig(s.bouncer.ConnString(s.dbname))
	require.NoError(t, err)
	config.ConnConfig.DefaultQueryExecMode = mode
	config.MaxConns = 1
	tr := &trips{}
	dial := config.ConnConfig.DialFunc
	config.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, trips: tr}, nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), config)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, tr
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (s *setup) notes(t *testing.T) []string {
	t.Helper()
	rows, err := s.direct.Query(ctxT(t), "SELECT note FROM log ORDER BY id")
	require.NoError(t, err)
	notes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return notes
}

// trips counts round trips on the client side: a write that follows a read starts a new one.
type trips struct {
	mu      sync.Mutex
	n       int
	writing bool
}

func (tr *trips) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.n
}

type countingConn struct {
	net.Conn
	trips *trips
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.trips.mu.Lock()
	if !c.trips.writing {
		c.trips.n++
		c.trips.writing = true
	}
	c.trips.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.trips.mu.Lock()
	c.trips.writing = false
	c.trips.mu.Unlock()
	return n, err
}
