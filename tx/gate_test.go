package tx_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// retriesInFlight is an Observer that tracks how many retries (attempts after the first) run at once.
type retriesInFlight struct {
	tx.NopObserver
	now, most, total atomic.Int32
}

func (o *retriesInFlight) StartAttempt(ctx context.Context, n int) context.Context {
	if n > 1 {
		o.total.Add(1)
		cur := o.now.Add(1)
		for {
			m := o.most.Load()
			if cur <= m || o.most.CompareAndSwap(m, cur) {
				break
			}
		}
	}
	return ctx
}

func (o *retriesInFlight) EndAttempt(_ context.Context, a tx.AttemptInfo) {
	if a.Attempt > 1 {
		o.now.Add(-1)
	}
}

// TestGateQueuesContendingTransactions: 16 workers on 3 hot accounts behind a one-slot Gate never run two retries at
// once, and still move the money correctly.
func TestGateQueuesContendingTransactions(t *testing.T) {
	ctx := ctxT(t)
	pool := newPool(t, 3)
	gate := retry.NewGate(1)
	policy := fastPolicy(30, retry.WithGate(gate))
	obs := &retriesInFlight{}
	transfer := func(from, to int) tx.Tx[pgconn.CommandTag] {
		read := tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], from)
		return tx.Bind(read, func(b int) tx.Tx[pgconn.CommandTag] {
			return tx.Exec("UPDATE accounts SET balance = balance + CASE id WHEN $1 THEN -$3::int ELSE $3::int END WHERE id IN ($1, $2)",
				from, to, b%7+1)
		})
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for w := range 16 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := tx.Run(ctx, pool, transfer(1+(w+i)%3, 1+(w+i+1)%3), tx.WithPolicy(policy), tx.WithObserver(obs)); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, failed.Load())
	require.Positive(t, obs.total.Load(), "contention caused retries")
	require.Equal(t, int32(1), obs.most.Load(), "retries ran one at a time")
	require.Zero(t, gate.Waiting())
	require.Equal(t, 300, count(t, pool, "SELECT sum(balance) FROM accounts"))
	requireNoAcquired(t, pool)
}

// TestRetryWaitsAtTheGateWithoutAConnection: a retry queued behind a taken slot holds no pooled connection and leaves
// no transaction open on the server; it runs once the slot is free.
func TestRetryWaitsAtTheGateWithoutAConnection(t *testing.T) {
	ctx := ctxT(t)
	pool := newPool(t, 1)
	failAtCommit(t, pool, 1)
	gate := retry.NewGate(1)
	holder, err := gate.Wait(ctx, 2) // the test plays a retry that holds the only slot
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := tx.Run(ctx, pool, note("queued"), tx.WithPolicy(fastPolicy(3, retry.WithGate(gate))))
		done <- err
	}()
	require.Eventually(t, func() bool { return gate.Waiting() == 1 }, 5*time.Second, time.Millisecond,
		"the retry after the failed COMMIT queues at the gate")
	require.Zero(t, pool.Stat().AcquiredConns(), "a waiting retry holds no connection")
	require.Zero(t, count(t, pool, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`))

	holder()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the queued retry did not run after the slot was freed")
	}
	require.Equal(t, []string{"queued"}, notes(t, pool))
}

// TestMaxElapsedBoundsTheWaitAtTheGate: MaxElapsed promises that no attempt begins after it, and a retry waiting for
// a slot is an attempt not begun yet: when the time is up it gives up with the last failure instead of running late.
func TestMaxElapsedBoundsTheWaitAtTheGate(t *testing.T) {
	ctx := ctxT(t)
	pool := newPool(t, 1)
	failAtCommit(t, pool, 1)
	gate := retry.NewGate(1)
	holder, err := gate.Wait(ctx, 2) // a retry of someone else holds the only slot, past the deadline
	require.NoError(t, err)
	later := time.AfterFunc(10*time.Second, holder) // so that a wait that ignores MaxElapsed ends, and fails below
	defer func() {
		if later.Stop() {
			holder()
		}
	}()
	policy := fastPolicy(5, retry.WithGate(gate), retry.MaxElapsed(300*time.Millisecond))
	start := time.Now()
	_, err = tx.Run(ctx, pool, note("late"), tx.WithPolicy(policy))
	require.Less(t, time.Since(start), 5*time.Second, "the wait ended at MaxElapsed, not when the slot came back")
	requireRetryError(t, err, 1, "40001")
	require.Empty(t, notes(t, pool))
	require.Zero(t, gate.Waiting())
}

// TestNestedRunDoesNotWaitForItsCallersSlot: a Run inside the retry of another Run, behind a one-slot Gate that the
// outer retry holds, retries without waiting for that slot (which would never come back).
func TestNestedRunDoesNotWaitForItsCallersSlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(ctxT(t), 15*time.Second)
	defer cancel()
	pool := newPool(t, 1)
	failAtCommit(t, pool, 2) // the outer's first COMMIT, then the inner's first
	policy := fastPolicy(5, retry.WithGate(retry.NewGate(1)))
	log := &attemptLog{}
	var outerAttempts atomic.Int32
	inner := tx.Func(func(ctx context.Context, _ pgx.Tx) (pgconn.CommandTag, error) {
		if outerAttempts.Add(1) == 1 {
			return pgconn.CommandTag{}, nil // the outer's first attempt fails at COMMIT; its retry takes the slot
		}
		return tx.Run(ctx, pool, note("inner"), tx.WithPolicy(policy), tx.WithObserver(log))
	})
	outer := tx.Then(note("outer"), inner)
	_, err := tx.Run(ctx, pool, outer, tx.WithPolicy(policy))
	require.NoError(t, err)
	require.Equal(t, int32(2), outerAttempts.Load())
	require.Equal(t, 2, log.count(), "the inner Run failed at COMMIT once and retried inside the outer's retry")
	require.ElementsMatch(t, []string{"inner", "outer"}, notes(t, pool))
	requireNoAcquired(t, pool)
}

// TestPanicInARetryGivesBackItsSlot: a retry that panics rolls back, goes on panicking, and frees its Gate slot.
func TestPanicInARetryGivesBackItsSlot(t *testing.T) {
	ctx := ctxT(t)
	pool := newPool(t, 1)
	failAtCommit(t, pool, 1)
	gate := retry.NewGate(1)
	var attempts atomic.Int32
	work := tx.Then(note("never"), tx.Func(func(context.Context, pgx.Tx) (int, error) {
		if attempts.Add(1) == 2 {
			panic("boom in the retry")
		}
		return 0, nil
	}))
	require.PanicsWithValue(t, "boom in the retry", func() {
		_, _ = tx.Run(ctx, pool, work, tx.WithPolicy(fastPolicy(3, retry.WithGate(gate))))
	})
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	done, err := gate.Wait(wctx, 2)
	require.NoError(t, err, "the panicking retry's slot is free again")
	done()
	require.Empty(t, notes(t, pool))
	requireNoAcquired(t, pool)
}

// panicsAt is an Observer that panics when the given attempt starts (start) or ends.
type panicsAt struct {
	tx.NopObserver
	attempt int
	start   bool
}

func (o panicsAt) StartAttempt(ctx context.Context, n int) context.Context {
	if o.start && n == o.attempt {
		panic("observer bug")
	}
	return ctx
}

func (o panicsAt) EndAttempt(_ context.Context, a tx.AttemptInfo) {
	if !o.start && a.Attempt == o.attempt {
		panic("observer bug")
	}
}

// TestObserverPanicGivesBackTheGateSlot: a retry holds a Gate slot from its admission until its attempt ends; a
// panic in an Observer (or a custom Backoff) in between or after must not keep the slot, or every later retry of the
// process waits for ever.
func TestObserverPanicGivesBackTheGateSlot(t *testing.T) {
	for _, start := range []bool{false, true} {
		t.Run(fmt.Sprintf("panic at start %v", start), func(t *testing.T) {
			pool := newPool(t, 1)
			gate := retry.NewGate(1)
			policy := fastPolicy(3, retry.WithGate(gate))
			failOnce := func() tx.Tx[int] {
				n := 0
				return tx.Func(func(context.Context, pgx.Tx) (int, error) {
					if n++; n == 1 {
						return 0, &pgconn.PgError{Code: "40001", Severity: "ERROR", Message: "synthetic"}
					}
					return 1, nil
				})
			}
			require.PanicsWithValue(t, "observer bug", func() {
				_, _ = tx.Run(ctxT(t), pool, failOnce(), tx.WithPolicy(policy),
					tx.WithObserver(panicsAt{attempt: 2, start: start}))
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := tx.Run(ctx, pool, failOnce(), tx.WithPolicy(policy)) // needs the slot for its retry
			require.NoError(t, err, "the slot of the panicking run came back")
			requireNoAcquired(t, pool)
		})
	}
}

// TestHooksRunWhenTheObserverPanicsAfterTheCommit: a panic in EndAttempt of the attempt that committed goes on, but
// the transaction has committed, and its AfterCommit hooks still run, once.
func TestHooksRunWhenTheObserverPanicsAfterTheCommit(t *testing.T) {
	pool := newPool(t, 1)
	var hooks atomic.Int32
	work := tx.Then(note("committed"), tx.AfterCommit(func(context.Context) { hooks.Add(1) }))
	require.PanicsWithValue(t, "observer bug", func() {
		_, _ = tx.Run(ctxT(t), pool, work, tx.WithObserver(panicsAt{attempt: 1}))
	})
	require.Equal(t, int32(1), hooks.Load())
	require.Equal(t, []string{"committed"}, notes(t, pool))
	requireNoAcquired(t, pool)
}
