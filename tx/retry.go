package tx

import (
	"context"
	"time"

	"github.com/pgxact/pgxact/retry"
)

// Retry returns a Tx that runs t under a savepoint and, when t fails with an error p retries, rolls back to the
// savepoint, waits as p says and runs t again — inside the same transaction. It suits statement-level failures: a
// NOWAIT lock that is busy (55P03, with retry.On(retry.LockNotAvailable)), an optimistic insert whose fresh key
// collided (23505).
//
// Failures that doom the transaction — serialization failures, deadlocks, in-failed-transaction errors, lost
// connections — are never retried here: after a serialization failure the transaction's snapshot and its SSI
// predicate locks survive the rollback to savepoint, so running t again cannot succeed. They go to Run, which restarts
// the whole transaction. Locks taken before the savepoint are held while Retry waits; keep its delays short.
//
// Retry spends from p's Budget like Run, but does not wait at p's Gate (see retry.WithGate). The Gate admits whole
// transactions before they take a connection or a lock; Retry's attempts run inside one that holds both, so queueing
// there would keep them held while others wait their turn, and could wait forever for a slot that the enclosing Run's
// own attempt holds.
func Retry[T any](p retry.Policy, t Tx[T]) Tx[T] {
	if err := p.Validate(); err != nil {
		return Fail[T](invalid("retry policy: %w", err))
	}
	return dyn(func(ctx context.Context, s *session) (T, error) {
		start, delay := time.Now(), time.Duration(0)
		for n := 1; ; n++ {
			v, err := scoped(ctx, s, t)
			if err == nil {
				p.Succeeded()
				return v, nil
			}
			if !recoverable(s, err) {
				return v, s.refused(err)
			}
			next, ok := p.Next(retry.Attempt{N: n, Err: err, Elapsed: time.Since(start), Delay: delay})
			if !ok || !fits(ctx, next) {
				return v, scopedFinal(p, err, n, start)
			}
			// Roll back to the savepoint now, not with the next attempt: its locks must not be held while we wait.
			if err := s.flush(ctx); err != nil {
				return v, err
			}
			if !sleep(ctx, next) {
				return v, interrupted(n+1, ctx.Err(), err)
			}
			delay = next
		}
	})
}

func scopedFinal(p retry.Policy, err error, n int, start time.Time) error {
	if n > 1 && p.Retryable(err) {
		return &RetryError{Attempts: n, Elapsed: time.Since(start), Err: err}
	}
	return err
}
