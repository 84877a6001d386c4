package tx_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

var errBoom = errors.New("boom")

func TestConstructors(t *testing.T) {
	pool := newPool(t, 3)
	ctx := ctxT(t)

	t.Run("Pure yields its value", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.Pure(42))
		require.NoError(t, err)
		require.Equal(t, 42, v)
	})
	t.Run("Fail returns its error", func(t *testing.T) {
		_, err := tx.Run(ctx, pool, tx.Fail[int](errBoom))
		require.ErrorIs(t, err, errBoom)
	})
	t.Run("Exec yields the command tag", func(t *testing.T) {
		tag, err := tx.Run(ctx, pool, tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id <= $1", 2))
		require.NoError(t, err)
		require.Equal(t, int64(2), tag.RowsAffected())
		require.Equal(t, 101, balance(t, pool, 2))
	})
	t.Run("Query yields every row in order", func(t *testing.T) {
		ids, err := tx.Run(ctx, pool, tx.Query("SELECT id FROM accounts ORDER BY id", pgx.RowTo[int]))
		require.NoError(t, err)
		require.Equal(t, []int{1, 2, 3}, ids)
	})
	t.Run("QueryOne yields the single row", func(t *testing.T) {
		b, err := tx.Run(ctx, pool, tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], 3))
		require.NoError(t, err)
		require.Equal(t, 100, b)
	})
	t.Run("QueryOne without a row is ErrNoRows", func(t *testing.T) {
		_, err := tx.Run(ctx, pool, tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], 99))
		require.ErrorIs(t, err, pgx.ErrNoRows)
	})
	t.Run("QueryOne with two rows is ErrTooManyRows", func(t *testing.T) {
		_, err := tx.Run(ctx, pool, tx.QueryOne("SELECT balance FROM accounts", pgx.RowTo[int]))
		require.ErrorIs(t, err, pgx.ErrTooManyRows)
	})
	t.Run("Func runs raw pgx code in the transaction", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.Func(func(ctx context.Context, q pgx.Tx) (string, error) {
			var iso string
			err := q.QueryRow(ctx, "SHOW transaction_isolation").Scan(&iso)
			return iso, err
		}))
		require.NoError(t, err)
		require.Equal(t, "serializable", v)
	})
	t.Run("a failed statement names its SQL and keeps the PgError reachable", func(t *testing.T) {
		_, err := tx.Run(ctx, pool, tx.Exec("INSERT INTO accounts VALUES (1, 0)"))
		var se *tx.StatementError
		require.ErrorAs(t, err, &se)
		require.Contains(t, err.Error(), "INSERT INTO accounts")
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "23505", pgErr.Code)
	})
}

func TestCombinators(t *testing.T) {
	pool := newPool(t, 3)
	ctx := ctxT(t)
	bal := func(id int) tx.Tx[int] {
		return tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], id)
	}
	move := func(from, to, amount int) tx.Tx[pgconn.CommandTag] {
		return tx.Exec("UPDATE accounts SET balance = balance + CASE id WHEN $1 THEN -$3::int ELSE $3::int END WHERE id IN ($1, $2)",
			from, to, amount)
	}

	t.Run("Map transforms the result", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.Map(bal(1), strconv.Itoa))
		require.NoError(t, err)
		require.Equal(t, "100", v)
	})
	t.Run("Bind feeds a result to the next step", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.Bind(bal(1), func(b int) tx.Tx[int] {
			return tx.Then(move(1, 2, b/2), bal(2))
		}))
		require.NoError(t, err)
		require.Equal(t, 150, v)
		require.Equal(t, 50, balance(t, pool, 1))
	})
	t.Run("Then sees the first step's effects and stops at its error", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.Then(move(2, 3, 10), bal(3)))
		require.NoError(t, err)
		require.Equal(t, 110, v)

		ran := false
		second := tx.Func(func(context.Context, pgx.Tx) (int, error) { ran = true; return 0, nil })
		_, err = tx.Run(ctx, pool, tx.Then(tx.Exec("SELECT 1/0"), second))
		require.Error(t, err)
		require.False(t, ran)
	})
	t.Run("All yields results in order", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.All([]tx.Tx[int]{bal(3), tx.Pure(7), bal(1)}))
		require.NoError(t, err)
		require.Equal(t, []int{balance(t, pool, 3), 7, balance(t, pool, 1)}, v)
	})
	t.Run("All with a failing element commits nothing", func(t *testing.T) {
		before := count(t, pool, "SELECT count(*) FROM log")
		_, err := tx.Run(ctx, pool, tx.All([]tx.Tx[pgconn.CommandTag]{
			tx.Exec("INSERT INTO log(note) VALUES ('a')"),
			tx.Exec("INSERT INTO log(note) VALUES ('a')"),
			tx.Exec("INSERT INTO log(note) VALUES ('b')"),
		}))
		var se *tx.StatementError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 1, se.Index, "the duplicate, not the 25P02 after it")
		require.Equal(t, before, count(t, pool, "SELECT count(*) FROM log"))
	})
	t.Run("All mixing statements and Go code keeps order", func(t *testing.T) {
		fn := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) { return 5, nil })
		v, err := tx.Run(ctx, pool, tx.All([]tx.Tx[int]{tx.Pure(1), fn, bal(1), tx.Pure(4)}))
		require.NoError(t, err)
		require.Equal(t, []int{1, 5, balance(t, pool, 1), 4}, v)
	})
	t.Run("All of nothing yields an empty slice", func(t *testing.T) {
		v, err := tx.Run(ctx, pool, tx.All[int](nil))
		require.NoError(t, err)
		require.Empty(t, v)
	})
}

// TestMonadLaws checks the laws by running both sides against the database.
func TestMonadLaws(t *testing.T) {
	pool := newPool(t, 3)
	ctx := ctxT(t)
	m := tx.QueryOne("SELECT balance FROM accounts WHERE id = 1", pgx.RowTo[int])
	f := func(x int) tx.Tx[int] {
		return tx.QueryOne("SELECT $1::int + balance FROM accounts WHERE id = 2", pgx.RowTo[int], x)
	}
	g := func(x int) tx.Tx[int] { return tx.QueryOne("SELECT $1::int * 2", pgx.RowTo[int], x) }
	inc := func(x int) int { return x + 1 }
	dbl := func(x int) int { return x * 2 }

	cases := []struct {
		name        string
		left, right tx.Tx[int]
	}{
		{"left identity", tx.Bind(tx.Pure(5), f), f(5)},
		{"right identity", tx.Bind(m, tx.Pure[int]), m},
		{"associativity", tx.Bind(tx.Bind(m, f), g), tx.Bind(m, func(x int) tx.Tx[int] { return tx.Bind(f(x), g) })},
		{"map identity", tx.Map(m, func(x int) int { return x }), m},
		{"map composition", tx.Map(m, func(x int) int { return dbl(inc(x)) }), tx.Map(tx.Map(m, inc), dbl)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := tx.Run(ctx, pool, c.left)
			require.NoError(t, err)
			r, err := tx.Run(ctx, pool, c.right)
			require.NoError(t, err)
			require.Equal(t, l, r)
		})
	}
}
