package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// Class is the kind of a failure as far as retrying is concerned. Classify maps an error to its Class; a Policy names
// the classes it retries.
type Class int

const (
	Other               Class = iota // not retryable
	Serialization                    // 40001 serialization_failure
	Deadlock                         // 40P01 deadlock_detected
	LockNotAvailable                 // 55P03 lock_not_available
	UniqueViolation                  // 23505 unique_violation
	ExclusionViolation               // 23P01 exclusion_violation
	ConnectionLost                   // the connection failed and the transaction certainly did not commit
	ReadOnlyTransaction              // 25006 read_only_sql_transaction (a write in a transaction that did not ask for READ WRITE)
	InFailedTransaction              // 25P02 in_failed_sql_transaction — never retried: it hides the first error

	numClasses // keep last: the number of valid classes
)

var classNames = [numClasses]string{
	Other:               "Other",
	Serialization:       "Serialization",
	Deadlock:            "Deadlock",
	LockNotAvailable:    "LockNotAvailable",
	UniqueViolation:     "UniqueViolation",
	ExclusionViolation:  "ExclusionViolation",
	ConnectionLost:      "ConnectionLost",
	ReadOnlyTransaction: "ReadOnlyTransaction",
	InFailedTransaction: "InFailedTransaction",
}

// String returns the constant's name, or "Class(n)" for a value outside the defined set.
func (c Class) String() string {
	if !c.valid() {
		return "Class(" + strconv.Itoa(int(c)) + ")"
	}
	return classNames[c]
}

func (c Class) valid() bool { return c >= 0 && c < numClasses }

// TransactionFatal reports whether a failure of this class dooms the whole transaction, so that it must never be
// retried under a savepoint, only by running the transaction again from BEGIN.
//
// In PostgreSQL a ROLLBACK TO SAVEPOINT undoes writes but not the transaction's identity: under REPEATABLE READ and
// SERIALIZABLE the snapshot was taken by the first statement and survives the rollback, and so do the SSI predicate
// (SIREAD) locks and the read/write conflicts they recorded (PostgreSQL's README-SSI: "predicate locks must survive a
// subtransaction rollback", because reads in it may have shaped what the transaction wrote). A statement retried under a savepoint after 40001 sees the
// same stale snapshot and meets the same conflict again. After 40P01 the locks taken before the savepoint are still
// held, so the same cycle forms again. A lost connection takes the transaction with it, a read-only standby stays
// read-only, and 25P02 means the transaction is already aborted.
func (c Class) TransactionFatal() bool {
	switch c {
	case Serialization, Deadlock, ConnectionLost, ReadOnlyTransaction, InFailedTransaction:
		return true
	}
	return false
}

// sqlStateClasses maps the SQLSTATEs that have a class of their own.
var sqlStateClasses = map[string]Class{
	"40001": Serialization,
	"40P01": Deadlock,
	"55P03": LockNotAvailable,
	"23505": UniqueViolation,
	"23P01": ExclusionViolation,
	"25006": ReadOnlyTransaction,
	"25P02": InFailedTransaction,
}

// Classify returns the class of err, looking through wrapping with errors.As, so errors wrapped with %w keep their
// class while errors formatted with %v lose it and are Other. A nil error is Other.
//
// Context errors (context.Canceled, context.DeadlineExceeded) are Other whatever they wrap or are wrapped in: the
// caller gave up, and retrying would ignore that.
//
// Connection errors are network errors that are not a *pgconn.PgError (net.Error, io.EOF, io.ErrUnexpectedEOF,
// pgconn.ErrConnClosed, *pgconn.ConnectError) and server errors of SQLSTATE class 08 and 57P01, 57P02, 57P03. A
// connection error is ConnectionLost only when the transaction certainly did not commit: pgconn.SafeToRetry(err) is
// true (nothing was sent), err is a *pgconn.ConnectError (no connection, so no transaction), or err was marked with
// Uncommitted. Otherwise a COMMIT may have reached the server, and running the transaction again could apply it
// twice, so the error is Other.
func Classify(err error) Class {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Other
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if c, ok := sqlStateClasses[pgErr.Code]; ok {
			return c
		}
		if !isConnectionSQLState(pgErr.Code) {
			return Other
		}
	} else if !isNetworkError(err) {
		return Other
	}
	if certainlyUncommitted(err) {
		return ConnectionLost
	}
	return Other
}

// isConnectionSQLState reports SQLSTATEs that mean the server ended or refused the session: class 08
// (connection_exception) and 57P01..57P03 (admin_shutdown, crash_shutdown, cannot_connect_now).
func isConnectionSQLState(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03":
		return true
	}
	return len(code) == 5 && code[:2] == "08"
}

func isNetworkError(err error) bool {
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed)
}

// certainlyUncommitted reports whether a connection error is known to have left the transaction uncommitted.
func certainlyUncommitted(err error) bool {
	var connectErr *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || isUncommitted(err) || errors.As(err, &connectErr)
}
