package jepsen_test

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/jepsen"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// misuseDB is a database with a counter and a table for what transactions leave behind.
func misuseDB(t *testing.T) (db, *pgxpool.Pool) {
	t.Helper()
	d := newDB(t)
	_, err := d.admin.Exec(context.Background(), `CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL);
		INSERT INTO counter VALUES (1, 0);
		CREATE TABLE seen (n int NOT NULL)`)
	require.NoError(t, err)
	return d, newPool(t, d.poolConfig(t, 8, nil))
}

func (d db) count(t *testing.T, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, d.admin.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

// TestOneTxValueRunFromFiftyGoroutines shares a single Tx value — Bind, Nested, Recover, All and an AfterCommit
// hook inside — among 50 goroutines. If any of it kept state between runs, the counter values would repeat or the
// hooks would miscount.
func TestOneTxValueRunFromFiftyGoroutines(t *testing.T) {
	d, pool := misuseDB(t)
	ctx := testCtx(t, 2*time.Minute)
	var hooks atomic.Int64
	next := tx.QueryOne("UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n", pgx.RowTo[int])
	shared := tx.Bind(next, func(n int) tx.Tx[int] {
		record := tx.Exec("INSERT INTO seen VALUES ($1)", n)
		doomed := tx.Then(tx.Exec("INSERT INTO seen VALUES (-1)"), tx.Exec("SELECT 1/0"))
		recovered := tx.Recover(tx.Map(doomed, func(pgconn.CommandTag) int { return -1 }),
			func(error) tx.Tx[int] { return tx.Pure(n) })
		hook := tx.AfterCommit(func(context.Context) { hooks.Add(1) })
		both := tx.All([]tx.Tx[int]{tx.Nested(tx.Then(record, tx.Pure(n))), recovered})
		return tx.Then(hook, tx.Map(both, func(vs []int) int { return vs[0] + vs[1] }))
	})

	const goroutines, runs = 50, 20
	var mu sync.Mutex
	var got []int
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range runs {
				v, err := tx.Run(ctx, pool, shared, tx.WithPolicy(suitePolicy()))
				if !assertNoError(t, err) {
					return
				}
				mu.Lock()
				got = append(got, v/2)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	slices.Sort(got)
	want := make([]int, goroutines*runs)
	for i := range want {
		want[i] = i + 1
	}
	require.Equal(t, want, got, "every run must see its own counter value")
	require.Equal(t, int64(goroutines*runs), hooks.Load())
	require.Equal(t, goroutines*runs, d.count(t, "SELECT count(DISTINCT n) FROM seen WHERE n > 0"))
	require.Zero(t, d.count(t, "SELECT count(*) FROM seen WHERE n < 0"), "the rolled-back savepoint left rows")
	d.requireQuiescent(t, pool)
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("Run: %v", err)
		return false
	}
	return true
}

// TestInvalidPoliciesAndOptionsCommitNothing: every absurd setting is refused with ErrInvalid, before any work.
func TestInvalidPoliciesAndOptionsCommitNothing(t *testing.T) {
	d, pool := misuseDB(t)
	ctx := testCtx(t, time.Minute)
	policies := map[string]retry.Policy{
		"negative MaxAttempts":         retry.New(retry.MaxAttempts(-1)),
		"absurd MaxAttempts":           retry.New(retry.MaxAttempts(math.MaxInt)),
		"negative MaxElapsed":          retry.New(retry.MaxElapsed(-time.Second)),
		"absurd MaxElapsed":            retry.New(retry.MaxElapsed(time.Duration(math.MaxInt64))),
		"no limit at all":              retry.New(retry.On(retry.Serialization), retry.MaxAttempts(0), retry.MaxElapsed(0)),
		"retrying Other":               retry.New(retry.On(retry.Other)),
		"retrying InFailedTransaction": retry.New(retry.On(retry.InFailedTransaction)),
		"an undefined class":           retry.New(retry.On(retry.Class(99))),
		"a negative class":             retry.New(retry.On(retry.Class(-1))),
		"negative constant delay":      retry.New(retry.WithBackoff(retry.Constant(-time.Second))),
		"exponential base above max":   retry.New(retry.WithBackoff(retry.Exponential(time.Second, time.Millisecond))),
		"exponential zero base":        retry.New(retry.WithBackoff(retry.Exponential(0, time.Second))),
		"jitter of nothing":            retry.New(retry.WithBackoff(retry.FullJitter(nil, nil))),
		"negative budget":              retry.New(retry.WithBudget(retry.NewBudget(-1, 0.5))),
		"NaN budget ratio":             retry.New(retry.WithBudget(retry.NewBudget(10, math.NaN()))),
		"infinite budget":              retry.New(retry.WithBudget(retry.NewBudget(math.Inf(1), 1))),
	}
	insert := tx.Exec("INSERT INTO seen VALUES (1)")
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, p.Validate(), retry.ErrInvalidPolicy)
			_, err := tx.Run(ctx, pool, insert, tx.WithPolicy(p))
			require.ErrorIs(t, err, tx.ErrInvalid)
			require.ErrorIs(t, err, retry.ErrInvalidPolicy)
			_, err = tx.Run(ctx, pool, tx.Then(insert, tx.Retry(p, insert)))
			require.ErrorIs(t, err, tx.ErrInvalid)
		})
	}
	options := map[string]tx.Option{
		"a made-up isolation level": tx.WithIsolation("snapshot; DROP TABLE seen"),
		"a nil option":              nil,
		"a nil observer":            tx.WithObserver(nil),
	}
	for name, o := range options {
		t.Run(name, func(t *testing.T) {
			_, err := tx.Run(ctx, pool, insert, o)
			require.ErrorIs(t, err, tx.ErrInvalid)
		})
	}
	t.Run("a nil or typed-nil pool, and the zero Tx", func(t *testing.T) {
		_, err := tx.Run(ctx, nil, insert)
		require.ErrorIs(t, err, tx.ErrInvalid)
		_, err = tx.Run(ctx, (*pgxpool.Pool)(nil), insert)
		require.ErrorIs(t, err, tx.ErrInvalid)
		_, err = tx.Run(ctx, pool, tx.Tx[int]{})
		require.ErrorIs(t, err, tx.ErrInvalid)
		_, err = tx.Run(ctx, pool, tx.Then(insert, tx.Tx[int]{}))
		require.ErrorIs(t, err, tx.ErrInvalid)
	})
	require.Zero(t, d.count(t, "SELECT count(*) FROM seen"))
	d.requireQuiescent(t, pool)
}

func TestRunOnAClosedPool(t *testing.T) {
	d, pool := misuseDB(t)
	pool.Close()
	_, err := tx.Run(testCtx(t, time.Minute), pool, tx.Exec("INSERT INTO seen VALUES (1)"))
	require.Error(t, err)
	require.NotErrorIs(t, err, tx.ErrCommitUnknown)
	require.Zero(t, d.count(t, "SELECT count(*) FROM seen"))
}

func TestRunWithAContextThatIsAlreadyDone(t *testing.T) {
	d, pool := misuseDB(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"cancelled", cancelled, context.Canceled}, {"past its deadline", expired, context.DeadlineExceeded}} {
		t.Run(c.name, func(t *testing.T) {
			acquires := pool.Stat().AcquireCount()
			_, err := tx.Run(c.ctx, pool, tx.Exec("INSERT INTO seen VALUES (1)"))
			require.ErrorIs(t, err, c.want)
			require.Equal(t, acquires, pool.Stat().AcquireCount(), "a done context must not even take a connection")
		})
	}
	require.Zero(t, d.count(t, "SELECT count(*) FROM seen"))
}

// TestPanicsAndTxControlLeaveNothingBehind: a panic inside the work and a Commit on the runner's transaction both
// roll back, and leave neither a connection checked out nor a session idle in a transaction.
func TestPanicsAndTxControlLeaveNothingBehind(t *testing.T) {
	d, pool := misuseDB(t)
	ctx := testCtx(t, time.Minute)
	before := jepsen.SnapshotGoroutines()
	insert := tx.Exec("INSERT INTO seen VALUES (1)")
	panicky := tx.Bind(insert, func(pgconn.CommandTag) tx.Tx[int] { panic("boom") })
	require.PanicsWithValue(t, "boom", func() { _, _ = tx.Run(ctx, pool, panicky) })

	committing := tx.Then(insert, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) { return 0, q.Commit(ctx) }))
	_, err := tx.Run(ctx, pool, committing)
	require.ErrorIs(t, err, tx.ErrTxControl)

	require.Zero(t, d.count(t, "SELECT count(*) FROM seen"))
	d.requireQuiescent(t, pool)
	pool.Close()
	requireNoLeaks(t, before)
}

// TestTransactionControlInUserSQLIsRefused: a COMMIT or ROLLBACK sent as a statement ends the runner's transaction
// behind its back, and what follows runs in autocommit mode. The runner cannot stop the statement, but it can tell:
// after the round trip the session is no longer in a transaction. Run must then fail with ErrTxControl instead of
// reporting an atomic success (or an error, though something committed).
func TestTransactionControlInUserSQLIsRefused(t *testing.T) {
	cases := []struct {
		name string
		work tx.Tx[pgconn.CommandTag]
	}{
		{"COMMIT, then more work", tx.Bind(tx.Exec("COMMIT"), func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] {
			return tx.Exec("INSERT INTO seen VALUES (2)")
		})},
		{"ROLLBACK, then more work", tx.Bind(tx.Exec("ROLLBACK"), func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] {
			return tx.Exec("INSERT INTO seen VALUES (2)")
		})},
		{"COMMIT at the end", tx.Then(tx.Exec("INSERT INTO seen VALUES (2)"), tx.Exec("COMMIT"))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, pool := misuseDB(t)
			_, err := tx.Run(testCtx(t, time.Minute), pool, c.work)
			require.ErrorIs(t, err, tx.ErrTxControl, "rows left: %d", d.count(t, "SELECT count(*) FROM seen"))
			d.requireQuiescent(t, pool)
		})
	}
}
