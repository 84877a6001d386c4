// Package tx describes PostgreSQL transactions as values and runs them with pgx.
//
// A Tx[T] is a description of work inside a transaction that yields a T. Building one runs nothing; Run executes it:
//
//	transfer := tx.Bind(
//		tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], from),
//		func(balance int) tx.Tx[pgconn.CommandTag] {
//			if balance < amount {
//				return tx.Fail[pgconn.CommandTag](ErrInsufficientFunds)
//			}
//			return tx.Exec("UPDATE accounts SET balance = balance + CASE id WHEN $1 THEN -$3::int ELSE $3::int END WHERE id IN ($1, $2)", from, to, amount)
//		})
//	tag, err := tx.Run(ctx, pool, transfer)
//
// # What runs when
//
// Run acquires a connection, begins a SERIALIZABLE transaction (WithIsolation, ReadOnly and Deferrable change that),
// runs the Tx, and commits. Any error rolls back and is returned; a panic rolls back and goes on panicking. Because a
// Tx is a value, Run can run it again from scratch: serialization failures (40001), deadlocks (40P01) and connections
// lost before COMMIT restart the whole transaction under a retry.Policy (WithPolicy; default retry.Default()). So the
// body of a Tx must keep side effects outside the database for AfterCommit hooks, which run once, after the commit.
// Attempts are admitted by the policy's retry.Gate: under heavy contention retries, and then new transactions, wait
// there for a slot, holding no connection, so contending transactions queue instead of failing one another.
//
// Exec, Query and QueryOne are plain statements. Statements combined with Then, Map, All or package compose do not
// depend on each other's results, so Run sends them together in one round trip, with BEGIN fused into the first:
// a one-statement transaction costs two round trips (pgx.BeginTxFunc: three), k independent statements two (pgx:
// k+2). Bind is a boundary — the next step depends on the result — so a Bind chain of k statements costs k+1. Func is
// the escape hatch to plain pgx code (and sqlc's generated Queries), at the price of a boundary too. With the
// FuseCommit option, work made only of Exec-like statements sends COMMIT in that same round trip: one in all.
//
// # Savepoints
//
// Nested runs work under a savepoint and, on failure, rolls back to it and returns the error, so the outer
// transaction can go on; Recover continues with a fallback; Retry re-runs the work under the savepoint for
// statement-level failures (55P03, 23505). Failures that doom the whole transaction — serialization failures,
// deadlocks, lost connections — are never handled under a savepoint: they go to Run, which restarts everything.
//
// # Errors
//
// Errors wrap their causes: errors.As reaches *pgconn.PgError, errors.Is reaches your sentinels. A failed statement
// is a *StatementError naming its SQL. Bad input wraps ErrInvalid and commits nothing; exhausted retries give a
// *RetryError; a COMMIT whose outcome could not be established with pg_xact_status wraps ErrCommitUnknown. Wrap your
// own errors with %w, not %v: %v hides the SQLSTATE and with it the retry.
//
// # Concurrency
//
// Tx values are immutable and safe to share and run from many goroutines at once. Run is safe for concurrent use with
// a *pgxpool.Pool; a *pgx.Conn, like pgx itself, serves one goroutine at a time.
package tx
