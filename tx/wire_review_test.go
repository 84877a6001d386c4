package tx_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// TestStaleQueryStatementsAreForgotten: a prepared statement whose result type changed (ALTER TABLE) is refused with
// 0A000 when it runs. Read through Query or QueryOne, its error arrives when its rows are closed; the wire must forget
// it then too, whether it went out alone or in a round trip of several statements, or every later Run on the
// connection fails the same way.
func TestStaleQueryStatementsAreForgotten(t *testing.T) {
	values := func(r pgx.CollectableRow) ([]any, error) { return r.Values() }
	shape := func(id int) tx.Tx[[]any] { return tx.QueryOne("SELECT * FROM shape WHERE id = $1", values, id) }
	cases := []struct {
		name string
		work tx.Tx[[]any]
	}{
		// The second link of a Bind chain goes out in a round trip of its own: nothing pending, no id look (ReadOnly).
		{"alone", tx.Bind(tx.QueryOne("SELECT $1::int", pgx.RowTo[int], 1), shape)},
		// Here the refusal of Bind comes instead of the result; errors of a result begun come through the rows too.
		{"in a round trip of several", tx.Map(tx.All([]tx.Tx[[]any]{
			tx.QueryOne("SELECT $1::int", values, 1), shape(1)}), func(vs [][]any) []any { return vs[1] })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := wirePool(t, nil)
			ctx := ctxT(t)
			_, err := pool.Exec(ctx, "CREATE TABLE shape (id int PRIMARY KEY); INSERT INTO shape VALUES (1)")
			require.NoError(t, err)
			_, err = tx.Run(ctx, pool, c.work, tx.ReadOnly())
			require.NoError(t, err)
			_, err = pool.Exec(ctx, "ALTER TABLE shape ADD COLUMN note text NOT NULL DEFAULT 'x'")
			require.NoError(t, err)

			fails := 0
			var v []any
			for i := range 3 {
				v, err = tx.Run(ctx, pool, c.work, tx.ReadOnly(), tx.WithPolicy(retry.Never()))
				t.Logf("run %d: %v", i, err)
				if err != nil {
					fails++
				}
			}
			require.LessOrEqual(t, fails, 1, "the stale statement must be forgotten after its first refusal: %v", err)
			require.Equal(t, []any{int32(1), "x"}, v)
		})
	}
}
