package tx

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid is wrapped by every error Run returns for bad input: a nil db, a zero or nil-built Tx, a nil function,
// an invalid option or policy, a malformed SetLocal name, a *pgx.Conn already inside a transaction or busy with
// rows its caller has not closed, a connection on which the runner cannot read SQL text as the server will
// (standard_conforming_strings off, or a client encoding such as SJIS whose characters may hold a backslash byte; a
// work that sets either fails at its next round trip or at COMMIT, rolled back, except under FuseCommit, whose one
// round trip the server reads whole with the settings it began with, and which commits), a SQL text with no statement
// in it. Nothing is committed for such input, and no statement that
// would run after the bad part is sent; Run sends nothing at all for a bad db, option or top-level Tx. Statements
// that come before the bad part inside the work (Then(a, Map(b, nil))) may have been sent, and are rolled back.
var ErrInvalid = errors.New("tx: invalid input")

// ErrCommitUnknown is wrapped by the error Run returns when the connection broke after COMMIT was sent and the outcome
// could not be established with pg_xact_status: the transaction may or may not have committed. Run never retries it,
// since running the work again could apply it twice.
var ErrCommitUnknown = errors.New("tx: commit outcome unknown")

// ErrTxControl is returned when code inside a Tx calls Commit or Rollback on the top-level pgx.Tx it was given:
// the runner owns the transaction's outcome. Savepoints made with Begin on that pgx.Tx may be committed and rolled back.
//
// It is also returned when the transaction ends behind the runner's back — COMMIT or ROLLBACK sent as SQL through
// Exec, Query or Func — which the runner notices after the round trip that carried it, or by the statement's text
// when its answer is not read (results left open, a connection lost before the answer came). That round trip cannot be
// undone: the work before such a COMMIT, and any statement sent with or after it, may have committed. With
// ErrCommitUnknown, it is one of the two errors from Run that do not mean "nothing was committed"; neither is retried.
var ErrTxControl = errors.New("tx: commit and rollback belong to the runner")

// StatementError reports a statement that failed, with its position in the round trip that carried it.
// Its Unwrap returns the cause, typically a *pgconn.PgError.
type StatementError struct {
	SQL   string // the statement's SQL text
	Index int    // position of the statement among those sent together, from 0
	Err   error
}

func (e *StatementError) Error() string {
	return fmt.Sprintf("tx: statement %d (%s): %v", e.Index, abbreviate(e.SQL), e.Err)
}

func (e *StatementError) Unwrap() error { return e.Err }

// RetryError is returned by Run when the last attempt failed with an error its policy retries, but the policy allowed
// no further attempt (attempts, elapsed time or retry budget ran out, or the next pause would end after ctx's
// deadline). Unwrap returns the last attempt's error.
type RetryError struct {
	Attempts int           // attempts made, including the first
	Elapsed  time.Duration // from the start of the first attempt to the end of the last
	Err      error         // the last attempt's error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("tx: gave up after %d attempts in %v: %v", e.Attempts, e.Elapsed.Round(time.Microsecond), e.Err)
}

func (e *RetryError) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// abbreviate keeps error messages readable when the SQL is long.
func abbreviate(sql string) string {
	const max = 120
	if len(sql) <= max {
		return sql
	}
	return sql[:max] + "…"
}
