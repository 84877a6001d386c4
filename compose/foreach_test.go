package compose_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/tx"
)

func TestForEachRunsEveryElementInOrder(t *testing.T) {
	tests := []struct {
		name string
		xs   []int
	}{
		{"nil input does nothing", nil},
		{"elements run in order", []int{4, 1, 3, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newPool(t)
			_, err := tx.Run(ctxT(t), pool, compose.ForEach(tt.xs, insert))
			require.NoError(t, err)
			require.Equal(t, append([]int{}, tt.xs...), ids(t, pool))
		})
	}
}

func TestForEachFailureCommitsNothing(t *testing.T) {
	pool := newPool(t)
	_, err := tx.Run(ctxT(t), pool, compose.ForEach([]int{1, 2, 1}, insert))
	var se *tx.StatementError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 2, se.Index)
	require.Empty(t, ids(t, pool))
}

func TestForEachSendsOneRoundTrip(t *testing.T) {
	tc := newTripCounter(t)
	require.Equal(t, 2, runTrips(t, tc, compose.ForEach([]int{1, 2, 3, 4, 5}, insert)))
	require.Equal(t, 1, runTrips(t, tc, compose.ForEach([]int{1, 2, 3, 4, 5}, insert), tx.FuseCommit()),
		"Execs only: COMMIT rides along")
}
