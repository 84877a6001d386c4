package compose_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/tx"
)

func TestWhenRunsTheWorkOnlyIfCondHolds(t *testing.T) {
	tests := []struct {
		name string
		cond bool
		want []int
	}{
		{"true runs it", true, []int{1}},
		{"false skips it", false, []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newPool(t)
			_, err := tx.Run(ctxT(t), pool, compose.When(tt.cond, insert(1)))
			require.NoError(t, err)
			require.ElementsMatch(t, tt.want, ids(t, pool))
		})
	}
}

func TestWhenFalseIgnoresFailingWork(t *testing.T) {
	_, err := tx.Run(ctxT(t), newPool(t), compose.When(false, tx.Fail[int](errBoom)))
	require.NoError(t, err)
}

func TestWhenTrueFailsWithTheWork(t *testing.T) {
	_, err := tx.Run(ctxT(t), newPool(t), compose.When(true, tx.Fail[int](errBoom)))
	require.ErrorIs(t, err, errBoom)
}

func TestWhenStaysBatched(t *testing.T) {
	tc := newTripCounter(t)
	work := compose.Sequence([]tx.Tx[struct{}]{
		compose.When(true, insert(1)), compose.When(false, insert(2)), compose.When(true, insert(3)),
	})
	require.Equal(t, 2, runTrips(t, tc, work))
	require.Equal(t, 1, runTrips(t, tc, work, tx.FuseCommit()), "Execs only: COMMIT rides along")
	require.Equal(t, []int{1, 3}, ids(t, tc.conn))
}
