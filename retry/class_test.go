package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
)

func TestClassifyServerErrors(t *testing.T) {
	tests := []struct {
		code string
		want retry.Class
	}{
		{"40001", retry.Serialization},
		{"40P01", retry.Deadlock},
		{"55P03", retry.LockNotAvailable},
		{"23505", retry.UniqueViolation},
		{"23P01", retry.ExclusionViolation},
		{"25006", retry.ReadOnlyTransaction},
		{"25P02", retry.InFailedTransaction},
		{"23503", retry.Other}, // foreign_key_violation
		{"42P01", retry.Other}, // undefined_table
		{"57014", retry.Other}, // query_canceled
		{"40002", retry.Other}, // transaction_integrity_constraint_violation
		{"", retry.Other},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("SQLSTATE %q is %v", tt.code, tt.want), func(t *testing.T) {
			err := pgError(tt.code)
			require.Equal(t, tt.want, retry.Classify(err))
			require.Equal(t, tt.want, retry.Classify(fmt.Errorf("update stock: %w", err)), "wrapped with %%w")
			nested := fmt.Errorf("order 7: %w", fmt.Errorf("reserve: %w", errors.Join(errors.New("other"), err)))
			require.Equal(t, tt.want, retry.Classify(nested), "wrapped twice and joined")
			require.Equal(t, tt.want, retry.Classify(retry.Uncommitted(err)), "marking does not change a server class")
			require.Equal(t, retry.Other, retry.Classify(fmt.Errorf("update stock: %v", err)), "wrapped with %%v")
		})
	}
}

func TestClassifyConnectionErrors(t *testing.T) {
	opErr := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name string
		err  error
		want retry.Class
	}{
		{"nil is Other", nil, retry.Other},
		{"a plain error is Other", errors.New("boom"), retry.Other},
		{"a marked plain error is still Other", retry.Uncommitted(errors.New("boom")), retry.Other},
		{"io.EOF alone may hide a commit", io.EOF, retry.Other},
		{"io.EOF marked Uncommitted is ConnectionLost", retry.Uncommitted(io.EOF), retry.ConnectionLost},
		{"a wrapped marked io.EOF is ConnectionLost", fmt.Errorf("tx: %w", retry.Uncommitted(io.EOF)), retry.ConnectionLost},
		{"a marked error wrapping io.EOF is ConnectionLost", retry.Uncommitted(fmt.Errorf("read: %w", io.EOF)), retry.ConnectionLost},
		{"io.ErrUnexpectedEOF alone is Other", io.ErrUnexpectedEOF, retry.Other},
		{"io.ErrUnexpectedEOF marked is ConnectionLost", retry.Uncommitted(io.ErrUnexpectedEOF), retry.ConnectionLost},
		{"a net.Error alone is Other", netError{}, retry.Other},
		{"a net.Error marked is ConnectionLost", retry.Uncommitted(netError{}), retry.ConnectionLost},
		{"a *net.OpError marked is ConnectionLost", retry.Uncommitted(opErr), retry.ConnectionLost},
		{"a safe-to-retry io.EOF is ConnectionLost", safeError{err: io.EOF, safe: true}, retry.ConnectionLost},
		{"a wrapped safe-to-retry net.Error is ConnectionLost", fmt.Errorf("q: %w", safeError{err: netError{}, safe: true}), retry.ConnectionLost},
		{"an unsafe io.EOF is Other", safeError{err: io.EOF, safe: false}, retry.Other},
		{"safe-to-retry alone is not a connection error", safeError{err: errors.New("conn busy"), safe: true}, retry.Other},
		{"a safe io.EOF wrapped with %v is Other", fmt.Errorf("q: %v", safeError{err: io.EOF, safe: true}), retry.Other},
		{"pgconn.ErrConnClosed marked is ConnectionLost", retry.Uncommitted(pgconn.ErrConnClosed), retry.ConnectionLost},
		{"SQLSTATE 08006 alone is Other", pgError("08006"), retry.Other},
		{"SQLSTATE 08006 marked is ConnectionLost", retry.Uncommitted(pgError("08006")), retry.ConnectionLost},
		{"SQLSTATE 08000 marked is ConnectionLost", retry.Uncommitted(pgError("08000")), retry.ConnectionLost},
		{"SQLSTATE 08P01 marked is ConnectionLost", retry.Uncommitted(pgError("08P01")), retry.ConnectionLost},
		{"SQLSTATE 57P01 marked is ConnectionLost", retry.Uncommitted(pgError("57P01")), retry.ConnectionLost},
		{"SQLSTATE 57P02 marked is ConnectionLost", retry.Uncommitted(pgError("57P02")), retry.ConnectionLost},
		{"SQLSTATE 57P03 marked is ConnectionLost", retry.Uncommitted(pgError("57P03")), retry.ConnectionLost},
		{"SQLSTATE 57P04 marked is Other", retry.Uncommitted(pgError("57P04")), retry.Other},
		{"SQLSTATE 57P01 safe-to-retry is ConnectionLost", safeError{err: pgError("57P01"), safe: true}, retry.ConnectionLost},
		{"context.Canceled is Other", context.Canceled, retry.Other},
		{"context.DeadlineExceeded is Other", context.DeadlineExceeded, retry.Other},
		{"a marked context error is Other", retry.Uncommitted(context.Canceled), retry.Other},
		{"a safe-to-retry context error is Other", safeError{err: context.DeadlineExceeded, safe: true}, retry.Other},
		{"a context error joined with io.EOF is Other", retry.Uncommitted(errors.Join(io.EOF, context.Canceled)), retry.Other},
		{"a context error joined with 40001 is Other", errors.Join(pgError("40001"), context.Canceled), retry.Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, retry.Classify(tt.err))
		})
	}
}

func TestClassifyConnectErrorIsConnectionLost(t *testing.T) {
	err := connectError(t)
	require.Equal(t, retry.ConnectionLost, retry.Classify(err))
	require.Equal(t, retry.ConnectionLost, retry.Classify(fmt.Errorf("acquire: %w", err)))
}

func TestUncommittedWrapsTransparently(t *testing.T) {
	require.NoError(t, retry.Uncommitted(nil))

	inner := pgError("08006")
	marked := retry.Uncommitted(inner)
	require.Equal(t, inner.Error(), marked.Error())
	require.ErrorIs(t, marked, inner)
	require.Same(t, inner, errors.Unwrap(marked))
	var pgErr *pgconn.PgError
	require.ErrorAs(t, marked, &pgErr)
	require.Equal(t, "08006", pgErr.Code)
}

func TestClassString(t *testing.T) {
	tests := map[retry.Class]string{
		retry.Other:               "Other",
		retry.Serialization:       "Serialization",
		retry.Deadlock:            "Deadlock",
		retry.LockNotAvailable:    "LockNotAvailable",
		retry.UniqueViolation:     "UniqueViolation",
		retry.ExclusionViolation:  "ExclusionViolation",
		retry.ConnectionLost:      "ConnectionLost",
		retry.ReadOnlyTransaction: "ReadOnlyTransaction",
		retry.InFailedTransaction: "InFailedTransaction",
		retry.Class(99):           "Class(99)",
		retry.Class(-1):           "Class(-1)",
	}
	for c, want := range tests {
		t.Run(want, func(t *testing.T) { require.Equal(t, want, c.String()) })
	}
}

func TestTransactionFatal(t *testing.T) {
	tests := []struct {
		class retry.Class
		fatal bool
	}{
		{retry.Other, false},
		{retry.Serialization, true},
		{retry.Deadlock, true},
		{retry.LockNotAvailable, false},
		{retry.UniqueViolation, false},
		{retry.ExclusionViolation, false},
		{retry.ConnectionLost, true},
		{retry.ReadOnlyTransaction, true},
		{retry.InFailedTransaction, true},
		{retry.Class(99), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v is fatal: %v", tt.class, tt.fatal), func(t *testing.T) {
			require.Equal(t, tt.fatal, tt.class.TransactionFatal())
		})
	}
}
