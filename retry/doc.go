// Package retry decides when a failed PostgreSQL transaction, or a piece of one, is run again: it classifies errors,
// and its Policy says which classes to retry, how often, how long to wait and how much retrying the process can
// afford.
//
// # What is retried where
//
// The runner tx.Run restarts the whole transaction from BEGIN. That is the only correct retry for serialization
// failures (40001), deadlocks (40P01) and a connection lost before COMMIT: the snapshot, the SSI predicate locks and
// the locks taken before the savepoint all survive a ROLLBACK TO SAVEPOINT, so only a new transaction can succeed. Default
// retries exactly these classes. Class.TransactionFatal reports them (with ReadOnlyTransaction and
// InFailedTransaction).
//
// Statement-level failures — lock_not_available (55P03, from NOWAIT or lock_timeout), unique_violation (23505) and
// exclusion_violation (23P01) — are retried only when a Policy opts in with On. They are best retried by tx.Retry,
// which reruns one piece of work under a savepoint and keeps the rest of the transaction; a unique violation is
// usually retried only by work that chooses a new key on each attempt.
//
// in_failed_sql_transaction (25P02) is never retried: it means an earlier statement already failed and its error, the
// one that says what went wrong, was swallowed.
//
// A connection error is retried as ConnectionLost only when the transaction certainly did not commit (nothing was
// sent, or the runner marked the error with Uncommitted). If COMMIT may have reached the server, running the
// transaction again could apply it twice: tx.Run first asks pg_xact_status, and marks the error Uncommitted only when
// the server says the transaction aborted.
//
// # Wrapping errors
//
// Classify finds the *pgconn.PgError with errors.As, so errors wrapped with fmt.Errorf("...: %w", err) keep their
// class. Wrapping with %v (or %s, or err.Error()) drops the SQLSTATE: the error becomes Other and is never retried.
//
// # Policies and budgets
//
// A Policy is an immutable value built from options:
//
//	p := retry.New(
//		retry.On(retry.Serialization, retry.Deadlock),
//		retry.MaxAttempts(5),
//		retry.WithBackoff(retry.FullJitter(retry.Exponential(time.Millisecond, 50*time.Millisecond), nil)),
//	)
//	if err := p.Validate(); err != nil { ... }
//
// After each failed attempt the runner calls p.Next, which returns the delay to sleep and whether to try again; after
// a success it calls p.Succeeded. A Budget shared by many policies caps retries process-wide: when most attempts fail,
// as when the database is overloaded, retries stop instead of multiplying the load, and they resume as successes
// return.
//
// A Gate shared by many policies (p.Gate; Default has one per process) is admission control for contention: before
// each attempt the runner waits there. First attempts pass at once while no retry waits (or starves, past
// StarvingAfter failures); retries take one of the gate's slots, and once they queue, new transactions queue behind
// them — on hot rows until the queue is empty, where retries are rare (below HotRetryShare) only until no retry
// waits. Transactions fighting over a few hot rows
// are then admitted a few at a time instead of failing one another again and again: on 2 cores, 32 workers on 10
// hot accounts committed 2,493 transfers a second with 1.47 attempts each, where the default policy before the gate
// managed 790 with 4.72 and gave up on thousands (docs/retries.md). The cost is that under contention all transactions sharing the
// gate wait their turn, related or not; give a hot spot a policy with a Gate of its own to keep the rest apart.
package retry
