package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/retry"
)

func ExampleClassify() {
	for _, err := range []error{
		&pgconn.PgError{Code: "40P01"},
		&pgconn.PgError{Code: "55P03"},
		&pgconn.PgError{Code: "22012"}, // division_by_zero: retrying gives the same answer
		io.ErrUnexpectedEOF,            // the connection broke, and COMMIT may have reached the server
		retry.Uncommitted(io.ErrUnexpectedEOF),
		fmt.Errorf("query: %w", context.Canceled), // the caller gave up
	} {
		fmt.Println(retry.Classify(err))
	}
	// Output:
	// Deadlock
	// LockNotAvailable
	// Other
	// Other
	// ConnectionLost
	// Other
}

// A fatal class can be retried only from BEGIN, as tx.Run does; the others also under a savepoint, with tx.Retry.
func ExampleClass_TransactionFatal() {
	for _, c := range []retry.Class{retry.Serialization, retry.Deadlock, retry.LockNotAvailable, retry.UniqueViolation} {
		fmt.Println(c, c.TransactionFatal())
	}
	// Output:
	// Serialization true
	// Deadlock true
	// LockNotAvailable false
	// UniqueViolation false
}

// A runner that knows COMMIT was never sent marks the connection error, which makes it safe to retry.
func ExampleUncommitted() {
	p := retry.New(retry.On(retry.ConnectionLost))
	marked := retry.Uncommitted(io.EOF)
	fmt.Println(p.Retryable(io.EOF), p.Retryable(marked))
	// The mark changes nothing else: same text, same chain.
	fmt.Println(marked, errors.Is(marked, io.EOF), retry.Uncommitted(nil))
	// Output:
	// false true
	// EOF true <nil>
}
