package compose_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/tx"
)

// requireElement checks that err names element index, outermost first for nested combinators, and wraps cause.
func requireElement(t *testing.T, err error, cause error, path ...int) {
	t.Helper()
	require.ErrorIs(t, err, cause)
	for _, want := range path {
		var ee *compose.ElementError
		require.ErrorAs(t, err, &ee, "error: %v", err)
		require.Equal(t, want, ee.Index, "error: %v", err)
		err = ee.Err
	}
	var ee *compose.ElementError
	require.False(t, errors.As(err, &ee), "no deeper element: %v", err)
}

func TestErrorsNameTheFailingElement(t *testing.T) {
	pool := newPool(t)
	failFunc := tx.Func(func(context.Context, pgx.Tx) (int, error) { return 0, errBoom })
	seq := func(k int, bad tx.Tx[int]) tx.Tx[[]int] {
		ts := []tx.Tx[int]{selectInt(0), selectInt(1), selectInt(2), selectInt(3)}
		ts[k] = bad
		return compose.Sequence(ts)
	}
	tests := []struct {
		name  string
		work  func() error
		cause error
		path  []int
	}{
		{"Sequence, Go-side failure", func() error { _, err := tx.Run(ctxT(t), pool, seq(2, tx.Fail[int](errBoom))); return err }, errBoom, []int{2}},
		{"Sequence, failing Func", func() error { _, err := tx.Run(ctxT(t), pool, seq(3, failFunc)); return err }, errBoom, []int{3}},
		{"Sequence, no row", func() error {
			_, err := tx.Run(ctxT(t), pool, seq(1, tx.QueryOne("SELECT 1 WHERE false", pgx.RowTo[int])))
			return err
		}, pgx.ErrNoRows, []int{1}},
		{"Traverse", func() error {
			_, err := tx.Run(ctxT(t), pool, compose.Traverse([]int{0, 1, 2}, func(x int) tx.Tx[int] {
				if x == 1 {
					return tx.Fail[int](errBoom)
				}
				return selectInt(x)
			}))
			return err
		}, errBoom, []int{1}},
		{"Zip, second argument", func() error {
			_, err := tx.Run(ctxT(t), pool, compose.Zip(selectInt(1), tx.Fail[string](errBoom)))
			return err
		}, errBoom, []int{1}},
		{"Zip3, third argument", func() error {
			_, err := tx.Run(ctxT(t), pool, compose.Zip3(selectInt(1), tx.Pure(2), failFunc))
			return err
		}, errBoom, []int{2}},
		{"Fold, failing step", func() error {
			_, err := tx.Run(ctxT(t), pool, compose.Fold([]int{0, 1, 2, 3}, 0, func(acc, x int) tx.Tx[int] {
				if x == 2 {
					return tx.Fail[int](errBoom)
				}
				return tx.Pure(acc + x)
			}))
			return err
		}, errBoom, []int{2}},
		{"Sequence, zero Tx", func() error { _, err := tx.Run(ctxT(t), pool, seq(2, tx.Tx[int]{})); return err }, tx.ErrInvalid, []int{2}},
		{"Traverse, zero Tx", func() error {
			_, err := tx.Run(ctxT(t), pool, compose.Traverse([]int{0, 1}, func(x int) tx.Tx[int] {
				if x == 1 {
					return tx.Tx[int]{}
				}
				return selectInt(x)
			}))
			return err
		}, tx.ErrInvalid, []int{1}},
		{"nested Sequence names the path", func() error {
			_, err := tx.Run(ctxT(t), pool, compose.Sequence([]tx.Tx[[]int]{seq(0, selectInt(0)), seq(3, failFunc)}))
			return err
		}, errBoom, []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireElement(t, tt.work(), tt.cause, tt.path...)
		})
	}
}

func TestStatementErrorWrapsTheElement(t *testing.T) {
	pool := newPool(t)
	_, err := tx.Run(ctxT(t), pool, compose.Traverse([]int{1, 2, 1}, insert))
	var se *tx.StatementError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 2, se.Index)
	var ee *compose.ElementError
	require.ErrorAs(t, se.Err, &ee)
	require.Equal(t, 2, ee.Index)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "23505", pgErr.Code)
	require.Contains(t, err.Error(), "compose: element 2: ")
}

// An ElementError must not hide a failure that Run retries.
func TestElementErrorKeepsRetriesWorking(t *testing.T) {
	pool := newPool(t)
	attempts := 0
	flaky := tx.Func(func(context.Context, pgx.Tx) (int, error) {
		attempts++
		if attempts == 1 {
			return 0, &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
		}
		return 7, nil
	})
	got, err := tx.Run(ctxT(t), pool, compose.Sequence([]tx.Tx[int]{selectInt(1), flaky}))
	require.NoError(t, err)
	require.Equal(t, []int{1, 7}, got)
	require.Equal(t, 2, attempts)
}
