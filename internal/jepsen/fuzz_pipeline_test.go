package jepsen_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// FuzzPipeline decodes the input into a small program of combinators, runs it with tx.Run and with the model, and
// requires the same outcome: success or failure, the value, the rows left in the table, and the hooks that ran.
func FuzzPipeline(f *testing.F) {
	pool := pgtest.Pool(f)
	_, err := pool.Exec(context.Background(), "CREATE TABLE items (id serial PRIMARY KEY, v int NOT NULL)")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := decodePipeline(data)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pool.Exec(ctx, "TRUNCATE items")
		require.NoError(t, err)

		var m model
		want, ok := m.eval(p)
		if !ok {
			m = model{} // the transaction rolls back
		}
		var ran []int
		got, err := tx.Run(ctx, pool, p.build(&ran), tx.WithPolicy(retry.Never()))

		rows, qerr := pool.Query(ctx, "SELECT v FROM items ORDER BY id")
		require.NoError(t, qerr)
		items, qerr := pgx.CollectRows(rows, pgx.RowTo[int])
		require.NoError(t, qerr)
		require.Equal(t, ok, err == nil, "%v: model ok=%v, Run error: %v", p, ok, err)
		if ok {
			require.Equal(t, want, got, "%v: value", p)
		}
		require.Equal(t, append([]int{}, m.items...), append([]int{}, items...), "%v: rows", p)
		require.Equal(t, append([]int{}, m.hooks...), append([]int{}, ran...), "%v: hooks", p)
	})
}
