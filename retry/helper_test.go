package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// pgError returns a server error with the given SQLSTATE, as pgx reports it.
func pgError(code string) error {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "test error " + code}
}

// netError is a minimal net.Error, as a broken socket produces.
type netError struct{ timeout bool }

func (e netError) Error() string   { return "test network error" }
func (e netError) Timeout() bool   { return e.timeout }
func (e netError) Temporary() bool { return false }

// safeError wraps err and reports, like pgconn's internal errors, whether it happened before anything was sent.
type safeError struct {
	err  error
	safe bool
}

func (e safeError) Error() string     { return "pgconn-style: " + e.err.Error() }
func (e safeError) Unwrap() error     { return e.err }
func (e safeError) SafeToRetry() bool { return e.safe }

// connectError returns a real *pgconn.ConnectError by connecting to a loopback port where nothing listens.
func connectError(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if conn != nil {
		_ = conn.Close(ctx)
	}
	var connectErr *pgconn.ConnectError
	require.ErrorAs(t, err, &connectErr)
	require.False(t, errors.Is(err, context.DeadlineExceeded), "the connect must fail by refusal, not by timeout")
	return err
}

// failAlways returns an attempt-failing error of a class Default retries.
func failAlways() error { return pgError("40001") }
