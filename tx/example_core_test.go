package tx_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/tx"
)

func ExamplePure() {
	pool, done := examplePool()
	defer done()
	// Pure touches no database: a Run of it begins and commits nothing.
	v, err := tx.Run(context.Background(), pool, tx.Pure("hello"))
	fmt.Println(v, err)
	// Output: hello <nil>
}

func ExampleFail() {
	pool, done := examplePool()
	defer done()
	withdraw := tx.Then(tx.Exec("UPDATE accounts SET balance = balance - 500 WHERE id = 1"),
		tx.Fail[int](errInsufficientFunds))
	_, err := tx.Run(context.Background(), pool, withdraw)
	fmt.Println(errors.Is(err, errInsufficientFunds))
	b, _ := tx.Run(context.Background(), pool, balanceOf(1))
	fmt.Println(b) // rolled back
	// Output:
	// true
	// 100
}

func ExampleExec() {
	pool, done := examplePool()
	defer done()
	tag, err := tx.Run(context.Background(), pool, tx.Exec("UPDATE accounts SET balance = balance + $1", 10))
	fmt.Println(tag.RowsAffected(), err)
	// Output: 2 <nil>
}

func ExampleQuery() {
	pool, done := examplePool()
	defer done()
	type account struct {
		ID      int
		Balance int
	}
	all := tx.Query("SELECT id, balance FROM accounts ORDER BY id", pgx.RowToStructByPos[account])
	accounts, err := tx.Run(context.Background(), pool, all, tx.ReadOnly())
	fmt.Println(accounts, err)
	// Output: [{1 100} {2 50}] <nil>
}

func ExampleQueryOne() {
	pool, done := examplePool()
	defer done()
	_, err := tx.Run(context.Background(), pool, balanceOf(99))
	fmt.Println(errors.Is(err, pgx.ErrNoRows))
	// Output: true
}

func ExampleBind() {
	pool, done := examplePool()
	defer done()
	// The second statement depends on the first one's result, so Bind runs them one after the other.
	double := tx.Bind(balanceOf(2), func(b int) tx.Tx[pgconn.CommandTag] {
		return tx.Exec("UPDATE accounts SET balance = $1 WHERE id = 2", 2*b)
	})
	_, err := tx.Run(context.Background(), pool, tx.Then(double, balanceOf(2)))
	b, _ := tx.Run(context.Background(), pool, balanceOf(2))
	fmt.Println(b, err)
	// Output: 100 <nil>
}

func ExampleThen() {
	pool, done := examplePool()
	defer done()
	// Both statements travel in one round trip, with BEGIN in front of them.
	work := tx.Then(tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = 1"), balanceOf(1))
	b, err := tx.Run(context.Background(), pool, work)
	fmt.Println(b, err)
	// Output: 101 <nil>
}

func ExampleMapError() {
	pool, done := examplePool()
	defer done()
	errNoAccount := errors.New("no such account")
	lookup := tx.MapError(balanceOf(7), func(err error) error {
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("account 7: %w", errNoAccount)
		}
		return err
	})
	_, err := tx.Run(context.Background(), pool, lookup)
	fmt.Println(errors.Is(err, errNoAccount))
	// Output: true
}

func ExampleWithIsolation() {
	pool, done := examplePool()
	defer done()
	level := tx.QueryOne("SELECT current_setting('transaction_isolation')", pgx.RowTo[string])
	def, _ := tx.Run(context.Background(), pool, level)
	rc, _ := tx.Run(context.Background(), pool, level, tx.WithIsolation(pgx.ReadCommitted))
	fmt.Println(def, rc)
	// Output: serializable read committed
}

func ExampleReadOnly() {
	pool, done := examplePool()
	defer done()
	_, err := tx.Run(context.Background(), pool, tx.Exec("DELETE FROM accounts"), tx.ReadOnly())
	var pgErr *pgconn.PgError
	fmt.Println(errors.As(err, &pgErr) && pgErr.Code == "25006")
	// Output: true
}

func ExampleDeferrable() {
	pool, done := examplePool()
	defer done()
	// A SERIALIZABLE READ ONLY DEFERRABLE transaction waits for a safe snapshot, then can never fail with 40001.
	report := tx.QueryOne("SELECT sum(balance)::int FROM accounts", pgx.RowTo[int])
	total, err := tx.Run(context.Background(), pool, report, tx.ReadOnly(), tx.Deferrable())
	fmt.Println(total, err)
	// Output: 150 <nil>
}

func ExampleSlogObserver() {
	pool, done := examplePool()
	defer done()
	// Logs failed attempts and every run's end; here without times, so that the output is stable.
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "duration" {
			return slog.Attr{}
		}
		return a
	}})
	_, err := tx.Run(context.Background(), pool, balanceOf(99), tx.WithObserver(tx.SlogObserver(slog.New(h))))
	fmt.Println(errors.Is(err, pgx.ErrNoRows))
	// Output:
	// level=INFO msg="pgxact: attempt failed" attempt=1 sqlstate="" class=Other retry=false delay=0s error="tx: statement 0 (SELECT balance FROM accounts WHERE id = $1): no rows in result set"
	// level=WARN msg="pgxact: failed" attempts=1 error="tx: statement 0 (SELECT balance FROM accounts WHERE id = $1): no rows in result set"
	// true
}
