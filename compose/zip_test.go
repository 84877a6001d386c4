package compose_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/samber/lo"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/tx"
)

func TestZipOfTwoQueryOneReturnsBoth(t *testing.T) {
	pool := newPool(t)
	got, err := tx.Run(ctxT(t), pool, compose.Zip(
		selectInt(42),
		tx.QueryOne("SELECT 'hello'::text", pgx.RowTo[string]),
	))
	require.NoError(t, err)
	require.Equal(t, lo.T2(42, "hello"), got)
}

func TestZip3ReturnsAllThree(t *testing.T) {
	pool := newPool(t)
	got, err := tx.Run(ctxT(t), pool, compose.Zip3(
		selectInt(1),
		tx.Pure("two"),
		tx.Query("SELECT g FROM generate_series(1, 3) g", pgx.RowTo[int32]),
	))
	require.NoError(t, err)
	require.Equal(t, lo.T3(1, "two", []int32{1, 2, 3}), got)
}

func TestZipRunsInOrderAndStopsAtTheFirstFailure(t *testing.T) {
	pool := newPool(t)
	count := tx.QueryOne("SELECT count(*)::int FROM items", pgx.RowTo[int])
	got, err := tx.Run(ctxT(t), pool, compose.Zip(insert(1), count))
	require.NoError(t, err)
	require.Equal(t, 1, got.B, "b sees a's effects")

	_, err = tx.Run(ctxT(t), pool, compose.Zip3(insert(2), insert(1), insert(3)))
	var se *tx.StatementError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 1, se.Index, "the second element fails")
	require.Equal(t, []int{1}, ids(t, pool), "nothing of the failed run is committed")

	_, err = tx.Run(ctxT(t), pool, compose.Zip(tx.Fail[int](errBoom), insert(4)))
	require.ErrorIs(t, err, errBoom)
	require.Equal(t, []int{1}, ids(t, pool))
}

func TestZipSendsOneRoundTrip(t *testing.T) {
	tc := newTripCounter(t)
	tests := []struct {
		name  string
		work  tx.Tx[struct{}]
		trips int
	}{
		{"Zip", compose.When(true, compose.Zip(selectInt(1), insert(1))), 2},
		{"Zip3", compose.When(true, compose.Zip3(selectInt(1), insert(1), tx.Pure(3))), 2},
		{"nested Zip", compose.When(true, compose.Zip(compose.Zip(selectInt(1), insert(1)), insert(2))), 2},
		{"Zip after a statement", tx.Then(insert(0), compose.When(true, compose.Zip(selectInt(1), insert(1)))), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.trips, runTrips(t, tc, tt.work))
		})
	}
}

func TestZipWithFailingQueryOneReportsNoRows(t *testing.T) {
	pool := newPool(t)
	_, err := tx.Run(ctxT(t), pool, compose.Zip(insert(1), tx.QueryOne("SELECT 1 WHERE false", pgx.RowTo[int])))
	require.ErrorIs(t, err, pgx.ErrNoRows)
	var se *tx.StatementError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 1, se.Index)
	require.Empty(t, ids(t, pool))
}
