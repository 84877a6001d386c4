package tx_test

import (
	"context"
	"errors"
	"fmt"
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

func TestFuseCommitRoundTrips(t *testing.T) {
	tc := newTripCounter(t)
	ctx := ctxT(t)
	move := func(id int) tx.Tx[pgconn.CommandTag] {
		return tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = $1", id)
	}
	read := tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], 1)
	tests := []struct {
		name  string
		work  tx.Tx[struct{}]
		fuse  bool
		trips int
	}{
		{"one Exec, fused: one round trip", tx.Then(move(1), tx.Pure(struct{}{})), true, 1},
		{"one Exec, not asked to fuse: two", tx.Then(move(1), tx.Pure(struct{}{})), false, 2},
		{"Execs, SetLocal and a hook, fused: one",
			tx.Then(tx.SetLocal("app.who", "x"), tx.Then(move(1), tx.Then(move(2), tx.AfterCommit(func(context.Context) {})))), true, 1},
		{"All of Execs under MapError, fused: one",
			tx.Then(tx.MapError(tx.All([]tx.Tx[pgconn.CommandTag]{move(1), move(2)}), func(err error) error { return err }), tx.Pure(struct{}{})), true, 1},
		{"a QueryOne can still fail on the Go side: not fused", tx.Then(read, tx.Pure(struct{}{})), true, 2},
		{"a Map runs user code on the result: not fused", tx.Map(move(1), func(pgconn.CommandTag) struct{} { return struct{}{} }), true, 2},
		{"a Bind chain: not fused", tx.Bind(move(1), func(pgconn.CommandTag) tx.Tx[struct{}] { return tx.Then(move(2), tx.Pure(struct{}{})) }), true, 3},
		{"nothing to send: no round trip", tx.Pure(struct{}{}), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []tx.Option
			if tt.fuse {
				opts = append(opts, tx.FuseCommit())
			}
			trips := tc.measure(t, func() error { _, err := tx.Run(ctx, tc.conn, tt.work, opts...); return err })
			require.Equal(t, tt.trips, trips)
			require.Equal(t, byte('I'), tc.conn.PgConn().TxStatus(), "the transaction ended")
		})
	}
}

func TestFuseCommitOutcomes(t *testing.T) {
	ctx := ctxT(t)
	fuse := tx.FuseCommit()

	t.Run("the work commits, with its value and its hooks", func(t *testing.T) {
		pool := newPool(t, 2)
		hooks := 0
		work := tx.Then(note("a"), tx.Then(tx.AfterCommit(func(context.Context) { hooks++ }), note("b")))
		tag, err := tx.Run(ctx, pool, work, fuse)
		require.NoError(t, err)
		require.Equal(t, "INSERT 0 1", tag.String())
		require.Equal(t, 1, hooks)
		require.ElementsMatch(t, []string{"a", "b"}, notes(t, pool))
		requireNoAcquired(t, pool)
	})
	t.Run("a failing statement skips the COMMIT behind it: nothing is committed", func(t *testing.T) {
		pool := newPool(t, 2)
		hooks := 0
		work := tx.Then(note("a"), tx.Then(tx.AfterCommit(func(context.Context) { hooks++ }), note("a")))
		_, err := tx.Run(ctx, pool, work, fuse)
		var se *tx.StatementError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 1, se.Index)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "23505", pgErr.Code)
		require.Zero(t, hooks)
		require.Empty(t, notes(t, pool))
		requireNoAcquired(t, pool)
	})
	t.Run("a 40001 at COMMIT restarts the transaction", func(t *testing.T) {
		pool := newPool(t, 2)
		failAtCommit(t, pool, 2)
		log := &attemptLog{}
		_, err := tx.Run(ctx, pool, note("once"), fuse, tx.WithObserver(log), tx.WithPolicy(fastPolicy(5)))
		require.NoError(t, err)
		require.Equal(t, 3, log.count())
		require.Equal(t, []string{"40001", "40001"}, log.states)
		require.Equal(t, []string{"once"}, notes(t, pool))
	})
	t.Run("COMMIT in user SQL is reported", func(t *testing.T) {
		pool := newPool(t, 2)
		_, err := tx.Run(ctx, pool, tx.Then(note("a"), tx.Then(tx.Exec("COMMIT"), note("b"))), fuse)
		require.ErrorIs(t, err, tx.ErrTxControl)
	})
}

// TestFuseCommitCutsAreNeverGuessed cuts the fused round trip before or after it reaches the server, hundreds of
// times: a success is in the table exactly once, ErrCommitUnknown may or may not be, any other error is not — and
// nothing is applied twice. Without a transaction id the outcome cannot be asked for, so cuts after COMMIT reached
// the server must come back as ErrCommitUnknown rather than as a retry.
func TestFuseCommitCutsAreNeverGuessed(t *testing.T) {
	// Every query exec mode takes its own path through pgx when a read fails; pgbouncer runs need exec or simple.
	modes := []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	if !pgtest.Pooled() {
		modes = append([]pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe}, modes...)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) { fusedCuts(t, mode) })
	}
}

func fusedCuts(t *testing.T, mode pgx.QueryExecMode) {
	pool, check, proxy := ledgerPools(t, 4, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
	ctx := ctxT(t)
	proxy.SetRule(faultproxy.CutCommits(0.5, 1))
	policy := retry.New(retry.On(retry.Serialization, retry.ConnectionLost), retry.MaxAttempts(20),
		retry.WithBackoff(retry.Constant(0)))

	outcomes := runLedger(4, 100, func(id int) error {
		work := tx.Then(tx.Exec("INSERT INTO ledger VALUES ($1)", id), tx.Pure(struct{}{}))
		_, err := tx.Run(ctx, pool, work, tx.FuseCommit(), tx.WithPolicy(policy))
		return err
	})
	require.GreaterOrEqual(t, proxy.Stats().Cuts, uint64(100), "the proxy cut fused round trips")
	ok, unknown, unknownCommitted, failed := checkLedger(t, check, outcomes)
	t.Logf("%d cuts: %d committed, %d unknown (%d of them committed), %d failed",
		proxy.Stats().Cuts, ok, unknown, unknownCommitted, failed)
	require.Positive(t, unknown, "cuts after COMMIT reached the server are reported, not guessed")
	require.Positive(t, ok)
}

func ExampleFuseCommit() {
	pool, done := examplePool()
	defer done()
	// Plain statements and a hook: BEGIN, both UPDATEs and COMMIT travel in one round trip.
	move := tx.Then(
		tx.Exec("UPDATE accounts SET balance = balance - $2 WHERE id = $1", 1, 10),
		tx.Then(tx.Exec("UPDATE accounts SET balance = balance + $2 WHERE id = $1", 2, 10),
			tx.AfterCommit(func(context.Context) { fmt.Println("moved") })))
	_, err := tx.Run(context.Background(), pool, move, tx.FuseCommit())
	fmt.Println(err)
	b, _ := tx.Run(context.Background(), pool, balanceOf(2))
	fmt.Println(b)
	// Output:
	// moved
	// <nil>
	// 60
}

// TestFusedFailuresThatSkippedCommitAreNotUnknown: a fused round trip that pgx refused to send (too few arguments,
// one it cannot encode), or whose statement the server refused, committed nothing, whatever the error says after
// MapError replaced it: the answer is a plain error, not an unknown outcome.
func TestFusedFailuresThatSkippedCommitAreNotUnknown(t *testing.T) {
	errMapped := errors.New("mapped away")
	base := newPool(t, 1)
	cases := []struct {
		name string
		work tx.Tx[pgconn.CommandTag]
	}{
		{"too few arguments", tx.Exec("UPDATE accounts SET balance = $1 WHERE id = $2", 5)},
		{"an argument pgx cannot encode", tx.Exec("UPDATE accounts SET balance = $1 WHERE id = 1", struct{ X int }{1})},
		{"undefined table", tx.Exec("UPDATE nosuch SET x = $1", 1)},
		{"a server error mapped to a sentinel", tx.MapError(tx.Exec("UPDATE accounts SET balance = 1/0 WHERE id = 1"),
			func(error) error { return errMapped })},
	}
	for _, mode := range everyExecMode() {
		cfg := base.Config()
		cfg.ConnConfig.DefaultQueryExecMode = mode
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		for _, c := range cases {
			for _, opts := range [][]tx.Option{{tx.FuseCommit()}, nil} {
				t.Run(fmt.Sprintf("%s/%s/fused %v", mode, c.name, opts != nil), func(t *testing.T) {
					work := tx.Then(tx.Exec("UPDATE accounts SET balance = 0 WHERE id = 1"), c.work)
					_, err := tx.Run(ctxT(t), pool, work, opts...)
					require.Error(t, err)
					require.NotErrorIs(t, err, tx.ErrCommitUnknown)
					require.Equal(t, 100, balance(t, pool, 1))
					requireNoAcquired(t, pool)
				})
			}
		}
	}
}

// TestFusedWorkOnADeadPooledConnectionIsRetried: the pool lends a connection whose backend was ended while it sat idle
// (a restart, a failover, pg_terminate_backend). The statements are new to it, so they are prepared first, in a round
// trip of their own that gets FATAL 57P01: nothing ran, and the work is retried on a new connection, fused or not,
// through the wire or pgx's batch (a Tracer turns the wire off).
func TestFusedWorkOnADeadPooledConnectionIsRetried(t *testing.T) {
	for _, c := range []struct{ tracer, fuse, warm bool }{
		{false, false, false}, {false, true, false}, {true, false, false}, {true, true, false},
		// Warm: the statements were prepared by an earlier run, so the FATAL answers BEGIN itself.
		{false, true, true}, {true, true, true},
	} {
		tracer, fuse := c.tracer, c.fuse
		{
			t.Run(fmt.Sprintf("tracer %v, fused %v, warm %v", tracer, fuse, c.warm), func(t *testing.T) {
				base := newPool(t, 1)
				cfg := base.Config()
				cfg.MaxConns = 1
				cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
				if tracer {
					cfg.ConnConfig.Tracer = &recordingTracer{}
				}
				pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
				require.NoError(t, err)
				t.Cleanup(pool.Close)
				var opts []tx.Option
				if fuse {
					opts = append(opts, tx.FuseCommit())
				}
				work := tx.Exec("UPDATE accounts SET balance = balance + $1 WHERE id = 1", 7)
				want := 107
				if c.warm {
					_, err := tx.Run(ctxT(t), pool, work, opts...)
					require.NoError(t, err)
					want += 7
				}
				var pid int
				require.NoError(t, pool.QueryRow(ctxT(t), "SELECT pg_backend_pid()").Scan(&pid))
				// Ended from a connection to the server itself: behind pgbouncer, base may share that very backend.
				cluster, err := pgtest.Shared()
				require.NoError(t, err)
				killer, err := pgx.Connect(ctxT(t), cluster.ConnString(base.Config().ConnConfig.Database))
				require.NoError(t, err)
				t.Cleanup(func() { _ = killer.Close(context.Background()) })
				_, err = killer.Exec(ctxT(t), "SELECT pg_terminate_backend($1)", pid)
				require.NoError(t, err)
				require.Eventually(t, func() bool {
					var n int
					err := killer.QueryRow(ctxT(t), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n)
					return err == nil && n == 0
				}, 5*time.Second, 5*time.Millisecond)
				_, err = tx.Run(ctxT(t), pool, work, opts...)
				require.NoError(t, err, "a connection lost before anything ran is retried")
				require.Equal(t, want, balance(t, base, 1))
			})
		}
	}
}
