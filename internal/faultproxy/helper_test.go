package faultproxy_test

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testTimeout bounds every database call, so a connection the proxy failed to cut fails the test instead of
// hanging it.
const testTimeout = 10 * time.Second

// env is a private database reached both directly and through a proxy.
type env struct {
	connString string
	proxy      *faultproxy.Proxy
}

// newEnv creates a database and a proxy in front of its server; the proxy is closed at cleanup.
func newEnv(t *testing.T) env {
	t.Helper()
	return proxyFor(t, pgtest.ConnString(t))
}

// proxyFor starts a proxy in front of connString's server; the proxy is closed at cleanup.
func proxyFor(t *testing.T, connString string) env {
	t.Helper()
	config, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	p, err := faultproxy.Start(net.JoinHostPort(config.Host, strconv.Itoa(int(config.Port))))
	require.NoError(t, err)
	t.Cleanup(func() { closeWithin(t, p, 5*time.Second) })
	return env{connString: connString, proxy: p}
}

// viaProxy connects through the proxy; the connection is closed at cleanup.
func (e env) viaProxy(t *testing.T) *pgx.Conn {
	t.Helper()
	config, err := pgx.ParseConfig(e.connString)
	require.NoError(t, err)
	e.proxy.Route(&config.Config)
	return connect(t, config)
}

// direct connects to the server itself; the connection is closed at cleanup.
func (e env) direct(t *testing.T) *pgx.Conn {
	t.Helper()
	config, err := pgx.ParseConfig(e.connString)
	require.NoError(t, err)
	return connect(t, config)
}

func connect(t *testing.T, config *pgx.ConnConfig) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	_, err := conn.Exec(ctxFor(t), sql, args...)
	require.NoError(t, err)
}

func count(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, conn.QueryRow(ctxFor(t), sql).Scan(&n))
	return n
}

// waitOtherSessionsGone waits (at most 2s) until conn is the only session on its database, i.e. the server
// has finished with every proxied session.
func waitOtherSessionsGone(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	const others = `select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`
	// A loop, not require.Eventually: Eventually may call its condition again while a slow call is still running,
	// and a pgx.Conn serves one query at a time ("conn busy").
	deadline := time.Now().Add(5 * time.Second)
	for count(t, conn, others) != 0 {
		require.True(t, time.Now().Before(deadline), "proxied session still on the server")
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder is a Rule that remembers every message and forwards it.
type recorder struct {
	mu   sync.Mutex
	seen []faultproxy.Message
}

func (r *recorder) rule(m faultproxy.Message) faultproxy.Action {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, m)
	return faultproxy.Forward
}

func (r *recorder) messages() []faultproxy.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]faultproxy.Message(nil), r.seen...)
}

// onCommit returns a rule that answers a for commits and forwards everything else.
func onCommit(a faultproxy.Action) faultproxy.Rule {
	return func(m faultproxy.Message) faultproxy.Action {
		if faultproxy.IsCommit(m) {
			return a
		}
		return faultproxy.Forward
	}
}

// requireGoroutinesAtMost waits (at most 2s) until no more than n goroutines run. It polls in the test's own
// goroutine: require.Eventually would count its own.
func requireGoroutinesAtMost(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > n {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines left, want at most %d:\n%s", got, n, buf[:runtime.Stack(buf, true)])
	}
}

// closeWithin closes p, failing the test instead of hanging if Close does not return within d.
func closeWithin(t *testing.T, p *faultproxy.Proxy, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(d):
		t.Fatalf("Close did not return within %v", d)
	}
}

// insertThroughProxy creates table t directly, then begins a transaction through the proxy that inserts a row into
// it, and returns that transaction, still open.
func insertThroughProxy(t *testing.T, e env, direct *pgx.Conn) pgx.Tx {
	t.Helper()
	exec(t, direct, "create table t (id int)")
	tx, err := e.viaProxy(t).Begin(ctxFor(t))
	require.NoError(t, err)
	_, err = tx.Exec(ctxFor(t), "insert into t values (1)")
	require.NoError(t, err)
	return tx
}
