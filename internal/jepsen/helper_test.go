package jepsen_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/internal/jepsen"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// db is a private database with a direct superuser connection for setup, final reads and checks.
type db struct {
	connString string
	name       string
	admin      *pgx.Conn
}

func newDB(t *testing.T) db {
	t.Helper()
	cs := pgtest.ConnString(t)
	cfg, err := pgx.ParseConfig(cs)
	require.NoError(t, err)
	admin, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	return db{connString: cs, name: cfg.Database, admin: admin}
}

// poolConfig returns a configuration for a pool of at most maxConns connections, through proxy when it is not nil.
func (d db) poolConfig(t *testing.T, maxConns int32, proxy *faultproxy.Proxy) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(d.connString)
	require.NoError(t, err)
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["application_name"] = loadApp
	if proxy != nil {
		proxy.Route(&cfg.ConnConfig.Config)
	}
	return cfg
}

// loadApp is the application_name of the load's pools, the Terminator's victims.
const loadApp = "jepsen-load"

// newPool opens a pool the test closes itself (before its leak check); cleanup closes it again, harmlessly.
func newPool(t *testing.T, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// startProxy puts a fault proxy in front of d's server.
func (d db) startProxy(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	cfg, err := pgx.ParseConfig(d.connString)
	require.NoError(t, err)
	p, err := faultproxy.Start(net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// suitePolicy retries what the runner retries by default, without the process-wide budget: the faults here are
// deliberate, and a drained shared budget would turn them into failures that test nothing.
func suitePolicy() retry.Policy {
	return retry.New(
		retry.On(retry.Serialization, retry.Deadlock, retry.ConnectionLost),
		retry.MaxAttempts(100),
		retry.MaxElapsed(20*time.Second),
		retry.WithBackoff(retry.FullJitter(retry.Exponential(time.Millisecond, 20*time.Millisecond), nil)),
	)
}

// requireQuiescent checks what a finished run must leave behind: no connection still acquired from pool and no
// session of the database idle in a transaction.
func (d db) requireQuiescent(t *testing.T, pools ...*pgxpool.Pool) {
	t.Helper()
	for _, p := range pools {
		require.Eventually(t, func() bool { return p.Stat().AcquiredConns() == 0 }, 10*time.Second, 10*time.Millisecond,
			"acquired connections left: %d", p.Stat().AcquiredConns())
	}
	idleInTx := func() int {
		var n int
		err := d.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&n)
		require.NoError(t, err)
		return n
	}
	// A backend whose client was cut stays idle in transaction until it reads the end of the stream.
	require.Eventually(t, func() bool { return idleInTx() == 0 }, 10*time.Second, 20*time.Millisecond,
		"sessions idle in transaction: %d", idleInTx())
}

// requireNoOtherSessions waits until the admin connection is the database's only session.
func (d db) requireNoOtherSessions(t *testing.T) {
	t.Helper()
	others := func() int {
		var n int
		err := d.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
		require.NoError(t, err)
		return n
	}
	require.Eventually(t, func() bool { return others() == 0 }, 10*time.Second, 10*time.Millisecond, "other sessions: %d", others())
}

// requireNoLeaks fails t if goroutines started since s are still running.
func requireNoLeaks(t *testing.T, s jepsen.GoroutineSnapshot) {
	t.Helper()
	leaked := s.Leaked(10 * time.Second)
	require.Empty(t, leaked, "%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
}

// tally counts errors by kind, keeping one example of each, for the figures and for spotting surprises.
type tally struct {
	mu       sync.Mutex
	counts   map[string]int
	examples map[string]string
}

func newTally() *tally { return &tally{counts: map[string]int{}, examples: map[string]string{}} }

func (t *tally) add(err error) {
	k := errorKind(err)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[k]++
	if _, ok := t.examples[k]; !ok && err != nil {
		t.examples[k] = err.Error()
	}
}

func (t *tally) get(kind string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[kind]
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.counts))
	for k := range t.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %-44s %6d  %.160s", k, t.counts[k], t.examples[k])
	}
	return b.String()
}

// errorKind names what an error from Run says happened.
func errorKind(err error) string {
	var pgErr *pgconn.PgError
	var retryErr *tx.RetryError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, tx.ErrCommitUnknown):
		return "commit unknown: " + unknownReason(err)
	case errors.Is(err, jepsen.ErrInsufficientFunds):
		return "insufficient funds"
	case errors.As(err, &retryErr):
		return "retries exhausted"
	case suitePolicy().Retryable(err):
		// Run hands back the last attempt's error when the context ends during the pause before a retry.
		return "retryable, context ended: " + retry.Classify(err).String()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		if strings.Contains(err.Error(), "acquire connection") {
			return "context, waiting for the pool"
		}
		return "context, in the transaction"
	case errors.As(err, &pgErr):
		return "sqlstate " + pgErr.Code
	case errors.Is(err, tx.ErrInvalid):
		return "invalid"
	default:
		return "other"
	}
}

func asPgError(err error, target **pgconn.PgError) bool { return errors.As(err, target) }
