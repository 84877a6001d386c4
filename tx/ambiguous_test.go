package tx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// proxiedPool returns a pool whose connections go through a fault-injecting proxy, and a direct pool for checking.
func proxiedPool(t *testing.T, maxConns int32, configure ...func(*pgxpool.Config)) (*pgxpool.Pool, *pgxpool.Pool, *faultproxy.Proxy) {
	t.Helper()
	direct := pgtest.Config(t)
	target := net.JoinHostPort(direct.ConnConfig.Host, strconv.Itoa(int(direct.ConnConfig.Port)))
	proxy, err := faultproxy.Start(target)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })

	cfg := direct.Copy()
	proxy.Route(&cfg.ConnConfig.Config)
	cfg.MaxConns = maxConns
	for _, f := range configure {
		f(cfg)
	}
	cut, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(cut.Close)
	check, err := pgxpool.NewWithConfig(context.Background(), direct)
	require.NoError(t, err)
	t.Cleanup(check.Close)
	return cut, check, proxy
}

// ledgerPools is proxiedPool with a ledger table created directly. It has no key, so an insert applied twice shows as
// a count of 2.
func ledgerPools(t *testing.T, maxConns int32, configure ...func(*pgxpool.Config)) (*pgxpool.Pool, *pgxpool.Pool, *faultproxy.Proxy) {
	t.Helper()
	pool, check, proxy := proxiedPool(t, maxConns, configure...)
	_, err := check.Exec(context.Background(), "CREATE TABLE ledger (id int NOT NULL)")
	require.NoError(t, err)
	return pool, check, proxy
}

// runLedger runs insert(id) for ids 0..workers*each-1 from workers goroutines and returns each outcome.
func runLedger(workers, each int, insert func(id int) error) []error {
	outcomes := make([]error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				outcomes[w*each+i] = insert(w*each + i)
			}
		})
	}
	wg.Wait()
	return outcomes
}

// checkLedger checks every outcome against the ledger table: a success is there exactly once, an unknown outcome
// at most once, any other failure not at all. It returns how many of each there were, and how many unknown outcomes
// had in fact committed.
func checkLedger(t *testing.T, check *pgxpool.Pool, outcomes []error) (ok, unknown, unknownCommitted, failed int) {
	t.Helper()
	counts := map[int]int{}
	rows, err := check.Query(context.Background(), "SELECT id, count(*) FROM ledger GROUP BY id")
	require.NoError(t, err)
	for rows.Next() {
		var id, n int
		require.NoError(t, rows.Scan(&id, &n))
		counts[id] = n
	}
	require.NoError(t, rows.Err())
	for id, err := range outcomes {
		switch {
		case err == nil:
			ok++
			require.Equal(t, 1, counts[id], "acknowledged insert %d", id)
		case errors.Is(err, tx.ErrCommitUnknown):
			unknown++
			require.LessOrEqual(t, counts[id], 1, "insert %d applied twice", id)
			unknownCommitted += counts[id]
		default:
			failed++
			require.Zero(t, counts[id], "insert %d failed with %v but is present", id, err)
		}
	}
	return ok, unknown, unknownCommitted, failed
}

// onFirstCommit is a rule that applies a to the first COMMIT it sees and forwards everything else.
func onFirstCommit(a faultproxy.Action) faultproxy.Rule {
	var commits atomic.Int32
	return func(m faultproxy.Message) faultproxy.Action {
		if faultproxy.IsCommit(m) && commits.Add(1) == 1 {
			return a
		}
		return faultproxy.Forward
	}
}

// TestAmbiguousCommits cuts connections right before or right after COMMIT reaches the server, well over a thousand
// times, and checks every outcome against the table: a success is there exactly once, a plain error is absent, and
// nothing is applied twice.
func TestAmbiguousCommits(t *testing.T) {
	pool, check, proxy := ledgerPools(t, 4)
	ctx := ctxT(t)
	proxy.SetRule(faultproxy.CutCommits(0.5, 1))
	policy := retry.New(retry.On(retry.Serialization, retry.ConnectionLost), retry.MaxAttempts(20),
		retry.WithBackoff(retry.Constant(0)))

	outcomes := runLedger(4, 600, func(id int) error {
		_, err := tx.Run(ctx, pool, tx.Exec("INSERT INTO ledger VALUES ($1)", id), tx.WithPolicy(policy))
		return err
	})
	proxy.SetRule(nil)
	_, unknown, _, failed := checkLedger(t, check, outcomes)
	cuts := proxy.Stats().Cuts
	t.Logf("transactions %d, connection cuts at COMMIT %d, unresolved %d, failed %d", len(outcomes), cuts, unknown, failed)
	require.GreaterOrEqual(t, cuts, uint64(1000))
	require.Zero(t, unknown, "every ambiguous commit resolved")
	requireNoAcquired(t, pool)
}

// TestCommitUnknownWhenTheServerCannotAnswer: if the outcome cannot be established, Run says so instead of guessing.
func TestCommitUnknownWhenTheServerCannotAnswer(t *testing.T) {
	pool, _, proxy := ledgerPools(t, 1)
	ctx := ctxT(t)
	var cut atomic.Bool
	proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		if cut.Load() {
			return faultproxy.CutBefore // every later message, so pg_xact_status cannot be asked either
		}
		if faultproxy.IsCommit(m) {
			cut.Store(true)
			return faultproxy.CutAfter
		}
		return faultproxy.Forward
	})
	start := time.Now()
	_, err := tx.Run(ctx, pool, tx.Exec("INSERT INTO ledger VALUES (1)"), tx.WithPolicy(retry.Never()))
	require.ErrorIs(t, err, tx.ErrCommitUnknown, fmt.Sprint(err))
	require.Less(t, time.Since(start), 10*time.Second)
}

// TestStrandedCommitIsSettledByEndingTheOldBackend: the connection dies on the client's side while the server's
// session, partitioned away, still holds the transaction open — pg_xact_status says "in progress". The runner ends
// that backend, found by the transaction id it holds (not by a PID, which a pooler may have made up), learns that the
// transaction aborted, and retries: one row, well before the stranded socket would have timed out on its own.
func TestStrandedCommitIsSettledByEndingTheOldBackend(t *testing.T) {
	pool, check, proxy := ledgerPools(t, 2)
	ctx := ctxT(t)
	proxy.SetRule(onFirstCommit(faultproxy.Strand))
	policy := retry.New(retry.On(retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0)))
	log := &attemptLog{}

	start := time.Now()
	_, err := tx.Run(ctx, pool, tx.Exec("INSERT INTO ledger VALUES (1)"), tx.WithPolicy(policy), tx.WithObserver(log))
	require.NoError(t, err)
	require.Less(t, time.Since(start), 3*time.Second, "settled by ending the old backend, not by a socket timeout")
	require.Equal(t, 2, log.count(), "the stranded attempt aborted and was retried")
	require.Equal(t, uint64(1), proxy.Stats().Cuts)
	require.Equal(t, 1, count(t, check, "SELECT count(*) FROM ledger"))
	require.Zero(t, count(t, check, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`), "the stranded session was ended")
}

// TestStatusQueryRetriedWhenItsConnectionDies: the status query's own connection is cut, as a backend terminator or a
// pool handing out a dead connection would; the server is still there, so the outcome is still established — also
// when the caller's context ended with the COMMIT (the retries then have resolveRetryGrace).
func TestStatusQueryRetriedWhenItsConnectionDies(t *testing.T) {
	cases := []struct {
		kills  int
		cancel bool // the caller's context is canceled as COMMIT is sent
	}{{1, false}, {3, false}, {1, true}, {3, true}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d status queries cut, caller canceled %v", c.kills, c.cancel), func(t *testing.T) {
			pool, check, proxy := ledgerPools(t, 2)
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			var statuses atomic.Int32
			proxy.SetRule(cutStatusQueries(int32(c.kills), c.cancel, cancel, &statuses))
			_, err := tx.Run(ctx, pool, tx.Exec("INSERT INTO ledger VALUES (1)"), tx.WithPolicy(retry.New(
				retry.On(retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0)))))
			require.NoError(t, err, "resolved despite the status query's lost connections")
			require.Greater(t, statuses.Load(), int32(c.kills), "the status query was asked again")
			require.Equal(t, 1, count(t, check, "SELECT count(*) FROM ledger"))
		})
	}
}

// cutStatusQueries is a rule that cuts the connection after the first COMMIT (canceling the caller's context there
// first when cancelAtCommit) and before each of the first n status queries, which it counts in asked.
func cutStatusQueries(n int32, cancelAtCommit bool, cancel context.CancelFunc, asked *atomic.Int32) faultproxy.Rule {
	var commits atomic.Int32
	return func(m faultproxy.Message) faultproxy.Action {
		switch {
		case faultproxy.IsCommit(m) && commits.Add(1) == 1:
			if cancelAtCommit {
				cancel()
			}
			return faultproxy.CutAfter
		case m.Type == 'B' && strings.Contains(m.SQL, "pg_xact_status") && asked.Add(1) <= n:
			return faultproxy.CutBefore
		}
		return faultproxy.Forward
	}
}

// TestStatusQueryRetriesAreBounded: when every status query is cut, Run reports ErrCommitUnknown within the retries'
// own bounds — sooner when the caller's context has ended.
func TestStatusQueryRetriesAreBounded(t *testing.T) {
	for _, canceled := range []bool{false, true} {
		t.Run(fmt.Sprintf("caller canceled %v", canceled), func(t *testing.T) {
			pool, check, proxy := ledgerPools(t, 2)
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			var statuses atomic.Int32
			proxy.SetRule(cutStatusQueries(1000, canceled, cancel, &statuses))
			_, err := tx.Run(ctx, pool, tx.Exec("INSERT INTO ledger VALUES (1)"), tx.WithPolicy(retry.Never()))
			require.ErrorIs(t, err, tx.ErrCommitUnknown)
			asked := statuses.Load()
			require.Greater(t, asked, int32(1), "retried")
			require.LessOrEqual(t, asked, int32(9), "at most 8 retries")
			if canceled {
				// 5+10+20+40+80+160 ms of backoff fit in the grace of 500 ms; the next 250 does not.
				require.Less(t, asked, int32(9), "the grace after the caller's context ended is shorter")
			} else {
				// Every retry fits in 3 s on an idle machine (815 ms of backoff, 9 connections); one may not on a
				// loaded one, and 8 still tells the live caller's bound from the shorter grace (at most 7).
				require.GreaterOrEqual(t, asked, int32(8), "the retries, within 3 s")
			}
			require.LessOrEqual(t, count(t, check, "SELECT count(*) FROM ledger"), 1)
		})
	}
}

// TestNotificationsAreNeverGuessed: a notification is delivered only if its transaction commits, yet PostgreSQL
// gives a transaction that only notifies an id inside COMMIT. Every look before would see none, and a lost COMMIT
// answer would pass for "wrote nothing, the result stands", read-only or not. Whatever the cut, a success must
// mean exactly one notification, a plain failure none, and an unknown outcome at most one.
func TestNotificationsAreNeverGuessed(t *testing.T) {
	retrying := retry.New(retry.On(retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0)))
	notifyFunc := tx.Func(func(ctx context.Context, q pgx.Tx) (pgconn.CommandTag, error) {
		return q.Exec(ctx, "SELECT pg_notify('pgxact_ch', $1)", "from Func")
	})
	cases := []struct {
		name string
		work tx.Tx[pgconn.CommandTag]
		cut  faultproxy.Action
		opts []tx.Option
	}{
		{"pg_notify, COMMIT never sent", tx.Exec("SELECT pg_notify('pgxact_ch', $1)", "x"), faultproxy.CutBefore,
			[]tx.Option{tx.WithPolicy(retry.Never())}},
		{"pg_notify, COMMIT never sent, retried", tx.Exec("SELECT pg_notify('pgxact_ch', $1)", "x"), faultproxy.CutBefore,
			[]tx.Option{tx.WithPolicy(retrying)}},
		{"NOTIFY, answer lost", tx.Exec("NOTIFY pgxact_ch"), faultproxy.CutAfter,
			[]tx.Option{tx.WithPolicy(retrying)}},
		{"read-only, COMMIT never sent", tx.Exec("SELECT pg_notify('pgxact_ch', $1)", "x"), faultproxy.CutBefore,
			[]tx.Option{tx.ReadOnly(), tx.WithPolicy(retrying)}},
		{"read-only, fused, answer lost", tx.Exec("SELECT pg_notify('pgxact_ch', $1)", "x"), faultproxy.CutAfter,
			[]tx.Option{tx.ReadOnly(), tx.FuseCommit(), tx.WithPolicy(retrying)}},
		{"Func, COMMIT never sent", notifyFunc, faultproxy.CutBefore, []tx.Option{tx.WithPolicy(retry.Never())}},
		{"Func, prepared NOTIFY, read-only, COMMIT never sent", tx.Func(func(ctx context.Context, q pgx.Tx) (pgconn.CommandTag, error) {
			if _, err := q.Prepare(ctx, "pgxact_n1", "NOTIFY pgxact_ch"); err != nil {
				return pgconn.CommandTag{}, err
			}
			return q.Exec(ctx, "pgxact_n1") // by name: the text is only seen at Prepare
		}), faultproxy.CutBefore, []tx.Option{tx.ReadOnly(), tx.WithPolicy(retry.Never())}},
		{"Func, answer lost", notifyFunc, faultproxy.CutAfter, []tx.Option{tx.WithPolicy(retrying)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool, check, proxy := proxiedPool(t, 2)
			ctx := ctxT(t)
			listener := listen(t, check, "pgxact_ch")
			var commits atomic.Int32
			proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
				// A Parse of COMMIT only prepares it, in a round trip of its own: the cut is for the one that runs it.
				if faultproxy.IsCommit(m) && m.Type != 'P' && commits.Add(1) == 1 {
					return c.cut
				}
				return faultproxy.Forward
			})
			_, err := tx.Run(ctx, pool, c.work, c.opts...)
			proxy.SetRule(nil)
			require.Equal(t, uint64(1), proxy.Stats().Cuts)
			n := notifications(t, listener)
			t.Logf("Run: %v; notifications: %d", err, n)
			switch {
			case err == nil:
				require.Equal(t, 1, n, "a success delivered its notification once")
			case errors.Is(err, tx.ErrCommitUnknown):
				require.LessOrEqual(t, n, 1, "an unknown outcome delivered at most once: %v", err)
			default:
				require.Zero(t, n, "a failure delivered nothing: %v", err)
			}
		})
	}
}

// listen returns a connection to check's database listening on channel. It connects to the server itself: through
// pgbouncer's transaction pooling a LISTEN would stay on whichever server connection ran it.
func listen(t *testing.T, check *pgxpool.Pool, channel string) *pgx.Conn {
	t.Helper()
	cfg := check.Config().ConnConfig.Copy()
	if pgtest.Pooled() {
		cluster, err := pgtest.Shared()
		require.NoError(t, err)
		direct, err := pgx.ParseConfig(cluster.ConnString(cfg.Database))
		require.NoError(t, err)
		cfg = direct
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(context.Background(), "LISTEN "+pgx.Identifier{channel}.Sanitize())
	require.NoError(t, err)
	return conn
}

// notifications counts what reaches a listener: it waits up to 2 s for the first (a loaded CI machine can be slow),
// then until none has come for half a second.
func notifications(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	n := 0
	for range 10 {
		wait := 500 * time.Millisecond
		if n == 0 {
			wait = 2 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		_, err := conn.WaitForNotification(ctx)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return n
		}
		n++
	}
	return n
}

// TestReadOnlyMadeWritableIsResolved: a ReadOnly transaction is trusted not to write, so its lost COMMIT answer
// would stand for "nothing to commit". SQL that makes it writable (SET TRANSACTION READ WRITE, right after the BEGIN
// it is fused with) must make the runner look and resolve it like any write.
func TestReadOnlyMadeWritableIsResolved(t *testing.T) {
	retrying := retry.New(retry.On(retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0)))
	for _, c := range []struct {
		cut faultproxy.Action
		sql string
	}{
		{faultproxy.CutBefore, "SET TRANSACTION READ WRITE"},
		{faultproxy.CutAfter, "SET TRANSACTION READ WRITE"},
		{faultproxy.CutBefore, "SET TRANSACTION READ/* split */WRITE"},
	} {
		cut := c.cut
		t.Run(cut.String()+", "+c.sql, func(t *testing.T) {
			pool, check, proxy := ledgerPools(t, 2)
			var commits atomic.Int32
			proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
				if faultproxy.IsCommit(m) && m.Type != 'P' && commits.Add(1) == 1 {
					return cut
				}
				return faultproxy.Forward
			})
			work := tx.Then(tx.Exec(c.sql), tx.Exec("INSERT INTO ledger VALUES ($1)", 0))
			_, err := tx.Run(ctxT(t), pool, work, tx.ReadOnly(), tx.WithPolicy(retrying))
			proxy.SetRule(nil)
			require.Equal(t, uint64(1), proxy.Stats().Cuts)
			t.Logf("Run: %v", err)
			checkLedger(t, check, []error{err})
		})
	}
}
