package compose_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/tx"
)

func TestTraverseYieldsResultsInOrder(t *testing.T) {
	pool := newPool(t)
	tests := []struct {
		name string
		xs   []int
		want []int
	}{
		{"nil input yields an empty slice", nil, []int{}},
		{"one element", []int{7}, []int{70}},
		{"many elements keep their order", []int{3, 1, 2, 5}, []int{30, 10, 20, 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tx.Run(ctxT(t), pool, compose.Traverse(tt.xs, func(x int) tx.Tx[int] { return selectInt(10 * x) }))
			require.NoError(t, err)
			require.NotNil(t, got)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestTraverseCallsFWhileBuilding(t *testing.T) {
	calls := 0
	work := compose.Traverse([]int{1, 2, 3}, func(x int) tx.Tx[int] { calls++; return tx.Pure(x) })
	require.Equal(t, 3, calls, "f runs when Traverse is called")
	pool := newPool(t)
	for range 2 {
		got, err := tx.Run(ctxT(t), pool, work)
		require.NoError(t, err)
		require.Equal(t, []int{1, 2, 3}, got)
	}
	require.Equal(t, 3, calls, "running the Tx does not call f again")
}

func TestTraverseFailureCommitsNothing(t *testing.T) {
	pool := newPool(t)
	_, err := tx.Run(ctxT(t), pool, compose.Traverse([]int{1, 2, 3, 2, 4}, insert))
	var se *tx.StatementError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 3, se.Index, "the second insert of 2 fails")
	require.Empty(t, ids(t, pool))
}

func TestTraverseSendsOneRoundTrip(t *testing.T) {
	tc := newTripCounter(t)
	require.Equal(t, 2, runTrips(t, tc, compose.Traverse([]int{1, 2, 3, 4, 5, 6, 7, 8}, insert)))
}

func TestNilFunctionsAreInvalid(t *testing.T) {
	pool := newPool(t)
	tests := []struct {
		name string
		work tx.Tx[struct{}]
	}{
		{"Traverse", tx.Map(compose.Traverse[int, int](nil, nil), func([]int) struct{} { return struct{}{} })},
		{"ForEach", compose.ForEach[int, pgconn.CommandTag]([]int{1}, nil)},
		{"Fold", tx.Map(compose.Fold[int, int]([]int{1}, 0, nil), func(int) struct{} { return struct{}{} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tx.Run(ctxT(t), pool, tt.work)
			require.ErrorIs(t, err, tx.ErrInvalid)
			require.ErrorContains(t, err, "compose: "+tt.name)
			require.False(t, errors.Is(err, errBoom))
		})
	}
}
