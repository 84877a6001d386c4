package compose_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/samber/lo"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/tx"
)

var errBoom = errors.New("boom")

func TestSequenceYieldsResultsInOrder(t *testing.T) {
	pool := newPool(t)
	tests := []struct {
		name string
		ts   []tx.Tx[int]
		want []int
	}{
		{"nil slice yields an empty slice", nil, []int{}},
		{"empty slice yields an empty slice", []tx.Tx[int]{}, []int{}},
		{"pure values", []tx.Tx[int]{tx.Pure(3), tx.Pure(1), tx.Pure(2)}, []int{3, 1, 2}},
		{"queries", []tx.Tx[int]{selectInt(3), selectInt(1), selectInt(2)}, []int{3, 1, 2}},
		{"queries around a Func", []tx.Tx[int]{
			selectInt(1),
			tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				var v int
				return v, q.QueryRow(ctx, "SELECT 2").Scan(&v)
			}),
			selectInt(3), tx.Pure(4),
		}, []int{1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tx.Run(ctxT(t), pool, compose.Sequence(tt.ts))
			require.NoError(t, err)
			require.NotNil(t, got)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestSequenceRunsEffectsInOrder(t *testing.T) {
	pool := newPool(t)
	_, err := tx.Run(ctxT(t), pool, compose.Sequence([]tx.Tx[pgconn.CommandTag]{insert(5), insert(2), insert(9)}))
	require.NoError(t, err)
	require.Equal(t, []int{5, 2, 9}, ids(t, pool))
}

// TestSequenceLaterElementsSeeEarlierEffects: independence is about results, not effects.
func TestSequenceLaterElementsSeeEarlierEffects(t *testing.T) {
	pool := newPool(t)
	got, err := tx.Run(ctxT(t), pool, compose.Sequence([]tx.Tx[int]{
		tx.Map(insert(1), func(pgconn.CommandTag) int { return 0 }),
		tx.QueryOne("SELECT count(*)::int FROM items", pgx.RowTo[int]),
	}))
	require.NoError(t, err)
	require.Equal(t, []int{0, 1}, got)
}

func TestSequenceOfTenThousandPure(t *testing.T) {
	const n = 10_000
	ts := make([]tx.Tx[int], n)
	for i := range ts {
		ts[i] = tx.Pure(i)
	}
	got, err := tx.Run(ctxT(t), newPool(t), compose.Sequence(ts))
	require.NoError(t, err)
	require.Len(t, got, n)
	for i, v := range got {
		require.Equal(t, i, v)
	}
}

func TestSequenceOfAThousandInserts(t *testing.T) {
	const n = 1_000
	pool := newPool(t)
	ts := make([]tx.Tx[pgconn.CommandTag], n)
	for i := range ts {
		ts[i] = insert(i)
	}
	tags, err := tx.Run(ctxT(t), pool, compose.Sequence(ts))
	require.NoError(t, err)
	require.Len(t, tags, n)
	require.Equal(t, int64(1), tags[n-1].RowsAffected())
	got := ids(t, pool)
	require.Len(t, got, n)
	for i, v := range got {
		require.Equal(t, i, v)
	}
}

// TestSequenceFailureNamesTheElementAndCommitsNothing fails element k of five in several ways.
func TestSequenceFailureNamesTheElementAndCommitsNothing(t *testing.T) {
	const n = 5
	duplicate := func(int) tx.Tx[pgconn.CommandTag] { return insert(0) } // 0 is inserted first: 23505
	noRow := func(int) tx.Tx[pgconn.CommandTag] {
		return tx.Map(tx.QueryOne("SELECT 1 WHERE false", pgx.RowTo[int]),
			func(int) pgconn.CommandTag { return pgconn.CommandTag{} })
	}
	for k := 1; k < n; k++ {
		tests := []struct {
			name    string
			fail    func(k int) tx.Tx[pgconn.CommandTag]
			isStmt  bool
			wantErr error
		}{
			{"a statement error carries the element's index", duplicate, true, nil},
			{"no row carries the element's index", noRow, true, pgx.ErrNoRows},
			{"a Go-side failure is not a statement error", func(int) tx.Tx[pgconn.CommandTag] {
				return tx.Fail[pgconn.CommandTag](errBoom)
			}, false, errBoom},
			{"a failing Func is not a statement error", func(int) tx.Tx[pgconn.CommandTag] {
				return tx.Func(func(context.Context, pgx.Tx) (pgconn.CommandTag, error) {
					return pgconn.CommandTag{}, errBoom
				})
			}, false, errBoom},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				pool := newPool(t)
				ts := make([]tx.Tx[pgconn.CommandTag], n)
				for i := range ts {
					ts[i] = insert(i)
				}
				ts[k] = tt.fail(k)
				_, err := tx.Run(ctxT(t), pool, compose.Sequence(ts))
				require.Error(t, err)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				}
				var se *tx.StatementError
				require.Equal(t, tt.isStmt, errors.As(err, &se), "error: %v", err)
				if tt.isStmt {
					require.Equal(t, k, se.Index, "error: %v", err)
				}
				require.Empty(t, ids(t, pool), "nothing may be committed")
			})
		}
	}
}

func TestSequenceSendsIndependentStatementsInOneRoundTrip(t *testing.T) {
	tc := newTripCounter(t)
	inserts := func(from, to int) []tx.Tx[pgconn.CommandTag] {
		var ts []tx.Tx[pgconn.CommandTag]
		for i := from; i < to; i++ {
			ts = append(ts, insert(i))
		}
		return ts
	}
	fn := tx.Func(func(ctx context.Context, q pgx.Tx) (pgconn.CommandTag, error) {
		return q.Exec(ctx, "INSERT INTO items (id, note) VALUES (100, 'f')")
	})
	tests := []struct {
		name  string
		work  tx.Tx[[]pgconn.CommandTag]
		trips int
	}{
		// BEGIN and the statements in one trip, COMMIT in another.
		{"one statement", compose.Sequence(inserts(0, 1)), 2},
		{"fifty statements", compose.Sequence(inserts(0, 50)), 2},
		{"fused with a statement before it", tx.Then(insert(-1), compose.Sequence(inserts(0, 50))), 2},
		{"nested sequences", tx.Map(compose.Sequence([]tx.Tx[[]pgconn.CommandTag]{
			compose.Sequence(inserts(0, 10)), compose.Sequence(inserts(10, 20)),
		}), lo.Flatten[pgconn.CommandTag]), 2},
		{"a Func splits the batch in two", compose.Sequence(append(append(inserts(0, 10), fn), inserts(10, 20)...)), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.trips, runTrips(t, tc, tt.work))
		})
	}
}

func TestSequenceCanRunConcurrently(t *testing.T) {
	pool := newPool(t)
	work := compose.Sequence([]tx.Tx[int]{selectInt(1), tx.Pure(2), selectInt(3)})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for g := range errs {
		wg.Go(func() {
			got, err := tx.Run(ctxT(t), pool, work)
			if err == nil && len(got) != 3 {
				err = errors.New("wrong length")
			}
			errs[g] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}
