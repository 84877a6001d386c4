package tx_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// failoverPair is a primary with a streaming standby, and a pool that reaches the primary through a fault proxy and
// the standby directly, on whichever accepts writes (a multi-host connection string with
// target_session_attrs=read-write, as behind an HA manager). The client can be kept from noticing a cut connection
// while the test rearranges the servers, so that what happens between a lost COMMIT answer and its resolution is up
// to the test, and the resolution's own time limit only starts afterwards.
type failoverPair struct {
	primary, standby *pgtest.Cluster
	db               string
	proxy            *faultproxy.Proxy
	pool             *pgxpool.Pool
	hold             atomic.Bool
	released         chan struct{}
}

// newFailoverPair starts the pair with a ledger table both have, then stops the standby: what the primary commits
// from now on, the standby never sees.
func newFailoverPair(t *testing.T) *failoverPair {
	t.Helper()
	ctx := ctxT(t)
	primary, err := pgtest.Start(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = primary.Stop() })
	standby, err := primary.StartReplica(ctx) // fails on a DATABASE_URL server, before its settings are changed
	require.NoError(t, err, "failover tests need an embedded server (not DATABASE_URL)")
	t.Cleanup(func() { _ = standby.Stop() })
	// No autovacuum: an autoanalyze takes transaction ids, and the tests count on which id goes to whom.
	exec(t, primary.ConnString("postgres"), "ALTER SYSTEM SET autovacuum = off")
	exec(t, primary.ConnString("postgres"), "SELECT pg_reload_conf()")

	connString, err := primary.CreateDatabase(ctx, "")
	require.NoError(t, err)
	cfg, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	p := &failoverPair{primary: primary, standby: standby, db: cfg.Database, released: make(chan struct{})}
	exec(t, primary.ConnString(p.db), "CREATE TABLE ledger (id int NOT NULL)")
	waitFor(t, standby.ConnString(p.db), "SELECT count(*)::text FROM pg_class WHERE relname = 'ledger'", 1)
	require.NoError(t, standby.Crash(ctx))
	// From now on a slow WAL writer: with synchronous_commit = off, a crash within 10 s of a commit surely loses it.
	exec(t, primary.ConnString("postgres"), "ALTER SYSTEM SET wal_writer_delay = '10s'")
	exec(t, primary.ConnString("postgres"), "SELECT pg_reload_conf()")

	p.proxy, err = faultproxy.Start(net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.proxy.Close() })
	scfg, err := pgx.ParseConfig(standby.ConnString(p.db))
	require.NoError(t, err)
	multi := fmt.Sprintf("postgres://%s@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write",
		cfg.User, p.proxy.Port(), scfg.Port, p.db)
	pcfg, err := pgxpool.ParseConfig(multi)
	require.NoError(t, err)
	pcfg.MaxConns = 1
	dial := pcfg.ConnConfig.DialFunc
	pcfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return holdingConn{Conn: c, p: p}, nil
	}
	p.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(t, err)
	t.Cleanup(p.pool.Close)
	return p
}

// holdingConn keeps a read error from reaching the client while the pair holds: the cut is noticed when released.
type holdingConn struct {
	net.Conn
	p *failoverPair
}

func (c holdingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.p.hold.Load() {
		// runCut releases after rearranging; the timeout keeps a failed test from leaving Run (and the pool's Close)
		// waiting here for ever.
		select {
		case <-c.p.released:
		case <-time.After(2 * time.Minute):
		}
	}
	return n, err
}

// runCut runs one insert through the pool, cuts the connection right after its COMMIT has gone to the primary, keeps
// the client from noticing while rearrange runs, and returns Run's error. rearrange gets the insert's transaction id and
// whether the primary committed it.
func (p *failoverPair) runCut(t *testing.T, rearrange func(xid int64, committed bool)) error {
	t.Helper()
	ctx := ctxT(t)
	cut := make(chan struct{})
	var cuts atomic.Int32
	p.proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		if faultproxy.IsCommit(m) && cuts.Add(1) == 1 {
			p.hold.Store(true)
			close(cut)
			return faultproxy.CutAfter
		}
		return faultproxy.Forward
	})
	var xid atomic.Int64
	insert := tx.Map(tx.QueryOne("INSERT INTO ledger VALUES (1) RETURNING pg_current_xact_id()::text::bigint",
		pgx.RowTo[int64]), func(x int64) int64 { xid.Store(x); return x })
	done := make(chan error, 1)
	go func() {
		_, err := tx.Run(ctx, p.pool, insert, tx.WithPolicy(retry.Never()))
		done <- err
	}()
	select {
	case <-cut:
	case err := <-done:
		t.Fatalf("Run ended before its COMMIT was cut: %v", err)
	case <-ctx.Done():
		t.Fatal("no COMMIT reached the proxy")
	}
	// The old backend may still be finishing the COMMIT, or ending after the reset; wait until it has decided.
	status := queryUntil(t, p.primary.ConnString(p.db), "SELECT pg_xact_status($1::text::xid8)",
		func(s string) bool { return s != "in progress" }, strconv.FormatInt(xid.Load(), 10))
	rearrange(xid.Load(), status == "committed")
	close(p.released)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatal("Run did not return after the failover")
		return nil
	}
}

// promote crashes the primary and promotes the standby, which has never seen the insert.
func (p *failoverPair) promote(t *testing.T) string {
	t.Helper()
	ctx := ctxT(t)
	require.NoError(t, p.primary.Crash(ctx))
	require.NoError(t, p.standby.Restart(ctx))
	require.NoError(t, p.standby.Promote(ctx))
	return p.standby.ConnString(p.db)
}

// burnXidsBelow commits one transaction per id on the server until the next id to hand out is xid, so that the
// next transaction to start there is given xid. The standby starts below it: it never saw xid handed out.
func burnXidsBelow(t *testing.T, connString string, xid int64) {
	t.Helper()
	conn := connect(t, connString)
	for range 10_000 { // bounded: the standby is a handful of ids behind
		var next int64
		require.NoError(t, conn.QueryRow(ctxT(t), "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").Scan(&next))
		if next >= xid {
			require.Equal(t, xid, next, "the promoted standby was already past the lost transaction's id")
			return
		}
		_, err := conn.Exec(ctxT(t), "SELECT pg_current_xact_id()")
		require.NoError(t, err)
	}
	t.Fatal("never reached the lost transaction's id")
}

// untilLost runs scenario on new servers until the cut commit was lost in the crash the scenario makes, as it needs,
// at most three times; scenario clears lost when it was not. The loss depends on the WAL writer not having written
// the commit record out before the crash, which it does after wal_writer_delay (10 s, the most it can be): a machine
// loaded enough can take longer than that between the commit and the crash.
func untilLost(t *testing.T, scenario func(p *failoverPair, lost *bool) error) (*failoverPair, error) {
	t.Helper()
	for try := 1; ; try++ {
		p := newFailoverPair(t)
		lost := true
		err := scenario(p, &lost)
		if lost {
			return p, err
		}
		require.Less(t, try, 3, "the commit record outlived the crash three times: this machine is too slow for the test")
		t.Logf("try %d: the commit record was written out before the crash; again, on new servers", try)
	}
}

// survived reports whether the server, after a crash, is past xid: recovery replayed the cut transaction's record,
// and the scenario that needs it lost did not happen.
func survived(t *testing.T, connString string, xid int64) bool {
	t.Helper()
	var next int64
	require.NoError(t, connect(t, connString).QueryRow(ctxT(t),
		"SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").Scan(&next))
	return next > xid
}

// TestAmbiguousCommitAcrossFailover is the xid-reuse scenario: a COMMIT whose answer is lost, then the primary
// crashes and a standby that never received the transaction is promoted. The promoted server hands the same
// transaction id to a new transaction, so pg_xact_status there answers for somebody else. Run must say it does not
// know (the insert is in fact lost), and must not end the innocent backend that now holds the id. On the same
// history — the primary restarted, not replaced — the outcome is still resolved.
func TestAmbiguousCommitAcrossFailover(t *testing.T) {
	t.Run("promoted standby reused the id for a committed transaction", func(t *testing.T) {
		p := newFailoverPair(t)
		var standby string
		err := p.runCut(t, func(xid int64, _ bool) {
			standby = p.promote(t)
			burnXidsBelow(t, standby, xid)
			exec(t, standby, "SELECT pg_current_xact_id()") // gets xid, and commits
			require.Equal(t, "committed", queryString(t, standby, "SELECT pg_xact_status($1::text::xid8)",
				strconv.FormatInt(xid, 10)), "precondition: the reused id reads committed on the new primary")
		})
		require.ErrorIs(t, err, tx.ErrCommitUnknown, fmt.Sprint(err))
		require.ErrorContains(t, err, "another history")
		require.Zero(t, count(t, p.pool, "SELECT count(*) FROM ledger"), "the insert is lost, as Run did not deny")
	})
	t.Run("promoted standby holds the id open: no innocent backend ended", func(t *testing.T) {
		p := newFailoverPair(t)
		var innocent *pgx.Conn
		start := time.Now()
		err := p.runCut(t, func(xid int64, _ bool) {
			standby := p.promote(t)
			burnXidsBelow(t, standby, xid)
			innocent = connect(t, standby)
			_, err := innocent.Exec(ctxT(t), "BEGIN")
			require.NoError(t, err)
			var got int64
			require.NoError(t, innocent.QueryRow(ctxT(t), "SELECT pg_current_xact_id()::text::bigint").Scan(&got))
			require.Equal(t, xid, got, "precondition: the innocent transaction holds the lost transaction's id")
			start = time.Now()
		})
		require.ErrorIs(t, err, tx.ErrCommitUnknown, fmt.Sprint(err))
		require.ErrorContains(t, err, "another history")
		require.Less(t, time.Since(start), 2*time.Second, "no polling of a transaction that is not ours")
		_, err = innocent.Exec(ctxT(t), "COMMIT")
		require.NoError(t, err, "the backend holding the reused id is alive")
	})
}

// TestAmbiguousCommitAcrossRestart: the same reuse happens without a failover. pgtest runs with
// synchronous_commit = off, so a crash loses the tail of the WAL and with it the cut transaction, and the restarted
// server hands its id out again. While nobody has it yet, the server's answer proves the transaction lost; once
// somebody has it, the status is somebody else's; and an id recovery did replay cannot be told from a reused one.
func TestAmbiguousCommitAcrossRestart(t *testing.T) {
	restart := func(t *testing.T, p *failoverPair) string {
		t.Helper()
		require.NoError(t, p.primary.Crash(ctxT(t)))
		require.NoError(t, p.primary.Restart(ctxT(t)))
		return p.primary.ConnString(p.db)
	}
	cases := []struct {
		name    string
		durable bool // CHECKPOINT before the crash, so recovery replays the transaction
		reuse   bool // a transaction takes the id after the restart
		check   func(t *testing.T, err error)
	}{
		{"lost, id not handed out again: proven uncommitted", false, false, func(t *testing.T, err error) {
			require.Equal(t, retry.ConnectionLost, retry.Classify(err), fmt.Sprint(err))
			require.ErrorContains(t, err, "lost in a restart")
		}},
		{"lost, id handed out again: unknown", false, true, func(t *testing.T, err error) {
			require.ErrorIs(t, err, tx.ErrCommitUnknown, fmt.Sprint(err))
			require.ErrorContains(t, err, "another history")
		}},
		{"replayed: unknown, it cannot be told from a reused id", true, false, func(t *testing.T, err error) {
			require.ErrorIs(t, err, tx.ErrCommitUnknown, fmt.Sprint(err))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := untilLost(t, func(p *failoverPair, lost *bool) error {
				return p.runCut(t, func(xid int64, committed bool) {
					require.True(t, committed, "precondition: the primary committed before it crashed")
					if c.durable {
						exec(t, p.primary.ConnString(p.db), "CHECKPOINT")
					}
					conn := restart(t, p)
					if !c.durable && survived(t, conn, xid) {
						*lost = false
						return
					}
					if c.reuse {
						burnXidsBelow(t, conn, xid)
						exec(t, conn, "SELECT pg_current_xact_id()")
					}
				})
			})
			c.check(t, err)
			want := 0
			if c.durable {
				want = 1
			}
			require.Equal(t, want, count(t, p.pool, "SELECT count(*) FROM ledger"))
		})
	}
}

// TestAmbiguousCommitAcrossABackendCrash: when one backend crashes, the postmaster ends the others, runs crash
// recovery and goes on without restarting, so the server's start time stays the same, yet ids whose records were
// not flushed are handed out again. A lost COMMIT answer resolved there must not take an innocent transaction that
// got the id for ours: the outcome is unknown (the insert is in fact lost).
func TestAmbiguousCommitAcrossABackendCrash(t *testing.T) {
	p, err := untilLost(t, func(p *failoverPair, lost *bool) error {
		return p.runCut(t, func(xid int64, committed bool) {
			require.True(t, committed, "precondition: the primary committed before the crash")
			conn := p.primary.ConnString(p.db)
			before := queryString(t, conn, "SELECT pg_postmaster_start_time()::text")
			var pid int
			require.NoError(t, connect(t, conn).QueryRow(ctxT(t), "SELECT pg_backend_pid()").Scan(&pid))
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			// The server goes through recovery: wait until it answers again, on the same postmaster.
			after := queryUntil(t, conn, "SELECT pg_postmaster_start_time()::text", func(string) bool { return true })
			require.Equal(t, before, after, "precondition: the postmaster survived the crash")
			if survived(t, conn, xid) {
				*lost = false
				return
			}
			burnXidsBelow(t, conn, xid)
			exec(t, conn, "SELECT pg_current_xact_id()") // an innocent transaction takes the id, and commits
		})
	})
	require.ErrorIs(t, err, tx.ErrCommitUnknown, fmt.Sprint(err))
	require.Zero(t, count(t, p.pool, "SELECT count(*) FROM ledger"), "the insert was lost in the crash")
}

func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), connString)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func exec(t *testing.T, connString, sql string, args ...any) {
	t.Helper()
	_, err := connect(t, connString).Exec(ctxT(t), sql, args...)
	require.NoError(t, err)
}

func queryString(t *testing.T, connString, sql string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, connect(t, connString).QueryRow(ctxT(t), sql, args...).Scan(&s))
	return s
}

// queryUntil repeats a one-value query until ok accepts its answer, bounded in time, and returns that answer.
func queryUntil(t *testing.T, connString, sql string, ok func(string) bool, args ...any) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s string
		conn, err := pgx.Connect(ctxT(t), connString) // the database may not have reached a standby yet
		if err == nil {
			err = conn.QueryRow(ctxT(t), sql, args...).Scan(&s)
			_ = conn.Close(ctxT(t))
		}
		if err == nil && ok(s) {
			return s
		}
		require.True(t, time.Now().Before(deadline), "%s never gave an accepted answer (last: %q, %v)", sql, s, err)
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor waits until a count query answers want.
func waitFor(t *testing.T, connString, sql string, want int) {
	t.Helper()
	queryUntil(t, connString, sql, func(s string) bool { return s == strconv.Itoa(want) })
}

// TestAmbiguousCommitResolvedForAnUnprivilegedRole: the history is read with functions every role may call, so a
// role that is not a superuser still gets its lost COMMITs resolved.
func TestAmbiguousCommitResolvedForAnUnprivilegedRole(t *testing.T) {
	role := fmt.Sprintf("pgxact_plain_%d", time.Now().UnixNano())
	pool, check, proxy := ledgerPools(t, 1, func(c *pgxpool.Config) { c.ConnConfig.User = role })
	ctx := ctxT(t)
	_, err := check.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN NOSUPERUSER")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = check.Exec(context.Background(), "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
		_, _ = check.Exec(context.Background(), "DROP ROLE "+pgx.Identifier{role}.Sanitize())
	})
	_, err = check.Exec(ctx, "GRANT INSERT ON ledger TO "+pgx.Identifier{role}.Sanitize())
	require.NoError(t, err)
	proxy.SetRule(onFirstCommit(faultproxy.CutAfter))
	policy := retry.New(retry.On(retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0)))
	_, err = tx.Run(ctx, pool, tx.Exec("INSERT INTO ledger VALUES (1)"), tx.WithPolicy(policy))
	require.NoError(t, err)
	require.Equal(t, uint64(1), proxy.Stats().Cuts)
	require.Equal(t, 1, count(t, check, "SELECT count(*) FROM ledger"), "resolved, and applied once")
}
