// Package txtest helps applications test their own pgxact transactions against a real PostgreSQL server: it makes
// attempts fail with genuine serialization failures, checks that side effects survive retries, and counts
// AfterCommit hooks.
//
// # Why
//
// tx.Run reruns a transaction's body after a serialization failure (SQLSTATE 40001). Code that is correct on the
// first attempt can still be wrong on the second: an e-mail sent from the body goes out twice, a Go slice filled by
// the body keeps the rows of the rolled-back attempt. Such bugs hide until production is busy enough to conflict.
// txtest makes the retry happen on every test run.
//
// # Injecting failures
//
// Inject wraps a *pgxpool.Pool (or a *pgx.Conn, or a tx.Acquirer such as a replica.Router) in an Injector, a tx.DB
// whose first attempts fail:
//
//	db := txtest.Inject(pool, txtest.FailFirst(2))                  // at COMMIT, the default
//	v, err := tx.Run(ctx, db, work, tx.WithPolicy(txtest.Policy())) // work's body runs 3 times, commits once
//
// The failures are real: the server answers with ERROR 40001, and the runner classifies, logs and retries it as it
// would in production, through the same code path as with a plain pool (the Injector is a tx.Acquirer, so BEGIN stays
// fused). For an attempt that is to fail, the Injector begins the transaction itself, with the options the runner
// asked for, and sets the fault up; the runner's own BEGIN then draws only PostgreSQL's warning "there is already a
// transaction in progress".
//
//   - AtCommit (the default) inserts a row into a temporary table, made inside the transaction, whose DEFERRABLE
//     INITIALLY DEFERRED constraint trigger raises 40001, so it is COMMIT that fails, after the whole body ran and
//     taking the table with it. Any isolation level, read-only included, also behind a transaction pooler; not
//     DEFERRABLE.
//   - InBody makes the transaction a true victim of PostgreSQL's serializable snapshot isolation: two helper
//     connections build a read/write dependency cycle around it (on rows of an ordinary table,
//     pgxact_txtest_ssi, created on first use), and the server marks it for death. Its first read or write of an
//     ordinary table fails with "could not serialize access due to read/write dependencies among transactions" —
//     COMMIT, if it touches none. SERIALIZABLE READ WRITE transactions only (tx.Run's default).
//
// Transactions that cannot be failed at the chosen point are refused with an error wrapping ErrUnsupported.
// FailFirst counts attempts through the Injector, not runs: give each Run whose retries a test counts its own
// Injector, or add EachRun, with which every transaction run through the Injector fails its first n attempts (a
// whole service under test, sharing one db).
//
// # A retry policy of the test's own
//
// tx.Run without tx.WithPolicy retries under retry.Default(), whose Budget and Gate are shared by the whole process,
// and so by every test of the binary. Each injected failure spends a token of that budget and each commit gives back
// only 3, so runs of FailFirst(4) or more drain it (seven runs of FailFirst(10) do), and later Runs with the default
// policy then give up at their first failure: tests pass or fail depending on their order. Pass
// tx.WithPolicy(txtest.Policy()), as above: the same policy as Default, with a Budget and a Gate of its own. Call
// Policy once per test, or per Run, not once per binary. RequireRetrySafe does so itself unless given tx.WithPolicy.
//
// # Checking retry safety
//
// RequireRetrySafe runs work twice — once cleanly, once with its first attempt failing at COMMIT — and requires that
// the counts an observe function reports change by the same amount both times. HookCounter counts AfterCommit hooks
// by name, so a test can require that one ran exactly once.
//
// # Requirements
//
// A real server (package pgtest provides one), and a role that may create a table in the database (for InBody). The
// helpers leave rows in pgxact_txtest_ssi, meant for throwaway test databases.
package txtest
