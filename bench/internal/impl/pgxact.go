package impl

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/workload"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// attemptCounter counts the attempts of the Runs of one worker. Run calls observers from its caller's goroutine, and
// each worker has its own counter, so a plain int is enough.
type attemptCounter struct {
	tx.NopObserver
	n int
}

func (c *attemptCounter) StartAttempt(ctx context.Context, _ int) context.Context {
	c.n++
	return ctx
}

// newPgxact runs the workload's Tx with tx.Run and the default retry policy.
func newPgxact(db *pgxpool.Pool, w workload.Workload) Runner {
	return pgxactRunner(db, w)
}

// unbudgeted is retry.Default without its process-wide retry budget: same classes, limits, backoff and gate size
// (a gate of its own).
var unbudgeted = retry.New(retry.On(retry.Serialization, retry.Deadlock, retry.ConnectionLost),
	retry.WithGate(retry.NewGate(max(2, runtime.GOMAXPROCS(0)))))

// newPgxactUnbudgeted runs tx.Run with a policy like the default but without a retry budget, to show what the
// budget costs or saves under heavy contention.
func newPgxactUnbudgeted(db *pgxpool.Pool, w workload.Workload) Runner {
	return pgxactRunner(db, w, tx.WithPolicy(unbudgeted))
}

// ungated is the default policy as it was before retry.Gate: at most 10 attempts, full-jitter backoff from 1ms
// capped at 100ms, a budget of 100 tokens refilled by 3 per success (its own), and no gate.
var ungated = retry.New(retry.On(retry.Serialization, retry.Deadlock, retry.ConnectionLost), retry.MaxAttempts(10),
	retry.WithBackoff(retry.FullJitter(retry.Exponential(time.Millisecond, 100*time.Millisecond), nil)),
	retry.WithBudget(retry.NewBudget(100, 3)))

// newPgxactUngated runs tx.Run with the pre-Gate default policy, to show what the gate changes under contention.
func newPgxactUngated(db *pgxpool.Pool, w workload.Workload) Runner {
	return pgxactRunner(db, w, tx.WithPolicy(ungated))
}

// newPgxactFused runs tx.Run with the default policy and tx.FuseCommit: work made only of plain statements (single)
// commits in one round trip; other work runs as with newPgxact.
func newPgxactFused(db *pgxpool.Pool, w workload.Workload) Runner {
	return pgxactRunner(db, w, tx.FuseCommit())
}

// pgxactRunner runs w's transactions with tx.Run on db, at w's isolation level; for a workload.Flowing, the steps of
// a flow of its own, whose options come last and so win.
func pgxactRunner(db tx.DB, w workload.Workload, opts ...tx.Option) Runner {
	counter := &attemptCounter{}
	opts = append(opts, tx.WithIsolation(workload.IsolationOf(w)), tx.WithObserver(counter))
	if fw, ok := w.(workload.Flowing); ok {
		return flowRunner(db, fw.NewFlow(), counter, opts)
	}
	return func(ctx context.Context, r *rand.Rand) (int, error) {
		counter.n = 0
		_, err := tx.Run(ctx, db, w.Tx(r), opts...)
		return counter.n, err
	}
}

// flowRunner runs a flow's steps, each with its own options after opts, and tells the flow what committed.
func flowRunner(db tx.DB, f workload.Flow, counter *attemptCounter, opts []tx.Option) Runner {
	return func(ctx context.Context, r *rand.Rand) (int, error) {
		counter.n = 0
		step := f.Next(r)
		_, err := tx.Run(ctx, db, step.Tx, append(slices.Clip(opts), step.Options...)...)
		if err == nil && step.Committed != nil {
			step.Committed()
		}
		return counter.n, err
	}
}
