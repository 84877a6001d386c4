package tx_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// examplePool gives an example its own database with two accounts; the returned func drops it.
func examplePool() (*pgxpool.Pool, func()) {
	ctx := context.Background()
	c, err := pgtest.Shared()
	if err != nil {
		log.Fatal(err)
	}
	exampleDBs++
	name := fmt.Sprintf("example_%d_%d", time.Now().UnixNano(), exampleDBs)
	url, err := c.CreateDatabase(ctx, name)
	if err != nil {
		log.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	_, err = pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
		INSERT INTO accounts VALUES (1, 100), (2, 50);
		CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE)`)
	if err != nil {
		log.Fatal(err)
	}
	return pool, func() {
		pool.Close()
		_ = c.DropDatabase(ctx, name)
	}
}

var exampleDBs int

var errInsufficientFunds = errors.New("insufficient funds")

func balanceOf(id int) tx.Tx[int] {
	return tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], id)
}

func ExampleRun() {
	pool, done := examplePool()
	defer done()
	transfer := func(from, to, amount int) tx.Tx[int] {
		return tx.Bind(balanceOf(from), func(b int) tx.Tx[int] {
			if b < amount {
				return tx.Fail[int](errInsufficientFunds)
			}
			move := tx.Exec(`UPDATE accounts SET balance = balance + CASE id WHEN $1 THEN -$3::int ELSE $3::int END
				WHERE id IN ($1, $2)`, from, to, amount)
			return tx.Then(move, balanceOf(from))
		})
	}
	left, err := tx.Run(context.Background(), pool, transfer(1, 2, 30)) // SERIALIZABLE, retried on 40001/40P01
	fmt.Println(left, err)
	_, err = tx.Run(context.Background(), pool, transfer(1, 2, 500))
	fmt.Println(errors.Is(err, errInsufficientFunds))
	// Output:
	// 70 <nil>
	// true
}

func ExampleAll() {
	pool, done := examplePool()
	defer done()
	// Independent reads: one round trip, with BEGIN in it.
	both, err := tx.Run(context.Background(), pool, tx.All([]tx.Tx[int]{balanceOf(1), balanceOf(2)}), tx.ReadOnly())
	fmt.Println(both, err)
	// Output: [100 50] <nil>
}

func ExampleMap() {
	pool, done := examplePool()
	defer done()
	total := tx.Map(tx.Query("SELECT balance FROM accounts", pgx.RowTo[int]), func(bs []int) int {
		sum := 0
		for _, b := range bs {
			sum += b
		}
		return sum
	})
	v, err := tx.Run(context.Background(), pool, total)
	fmt.Println(v, err)
	// Output: 150 <nil>
}

func ExampleRecover() {
	pool, done := examplePool()
	defer done()
	insert := func(s string) tx.Tx[string] {
		return tx.Map(tx.Exec("INSERT INTO log(note) VALUES ($1)", s), func(pgconn.CommandTag) string { return "inserted " + s })
	}
	// An idempotent insert: a unique violation rolls back to the savepoint and the transaction goes on.
	once := func(s string) tx.Tx[string] {
		return tx.Recover(insert(s), func(err error) tx.Tx[string] {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				return tx.Pure("already there: " + s)
			}
			return tx.Fail[string](err)
		})
	}
	v, err := tx.Run(context.Background(), pool, tx.All([]tx.Tx[string]{once("a"), once("a")}))
	fmt.Println(v, err)
	// Output: [inserted a already there: a] <nil>
}

func ExampleNested() {
	pool, done := examplePool()
	defer done()
	risky := tx.Nested(tx.Then(tx.Exec("INSERT INTO log(note) VALUES ('risky')"), tx.Exec("SELECT 1/0")))
	work := tx.Bind(tx.Recover(tx.Map(risky, func(pgconn.CommandTag) bool { return true }),
		func(error) tx.Tx[bool] { return tx.Pure(false) }),
		func(ok bool) tx.Tx[int] {
			return tx.QueryOne("SELECT count(*)::int FROM log", pgx.RowTo[int])
		})
	n, err := tx.Run(context.Background(), pool, work)
	fmt.Println(n, err)
	// Output: 0 <nil>
}

func ExampleAfterCommit() {
	pool, done := examplePool()
	defer done()
	work := tx.Then(tx.Exec("UPDATE accounts SET balance = 0 WHERE id = 2"),
		tx.AfterCommit(func(context.Context) { fmt.Println("committed: notify once") }))
	_, err := tx.Run(context.Background(), pool, work)
	fmt.Println(err)
	// Output:
	// committed: notify once
	// <nil>
}

func ExampleSetLocal() {
	pool, done := examplePool()
	defer done()
	tenant := tx.Then(tx.SetLocal("app.tenant_id", "acme"),
		tx.QueryOne("SELECT current_setting('app.tenant_id')", pgx.RowTo[string]))
	v, err := tx.Run(context.Background(), pool, tenant)
	fmt.Println(v, err)
	_, err = tx.Run(context.Background(), pool, tx.SetLocal("app.tenant_id; DROP TABLE accounts", "x"))
	fmt.Println(errors.Is(err, tx.ErrInvalid))
	// Output:
	// acme <nil>
	// true
}

func ExampleRetry() {
	pool, done := examplePool()
	defer done()
	// Take a row lock without waiting; if it is busy (55P03), roll back to the savepoint and try again shortly.
	busy := retry.New(retry.On(retry.LockNotAvailable), retry.MaxAttempts(5),
		retry.WithBackoff(retry.Constant(10*time.Millisecond)))
	lock := tx.Retry(busy, tx.QueryOne("SELECT balance FROM accounts WHERE id = 1 FOR UPDATE NOWAIT", pgx.RowTo[int]))
	v, err := tx.Run(context.Background(), pool, lock)
	fmt.Println(v, err)
	// Output: 100 <nil>
}

func ExampleWithPolicy() {
	pool, done := examplePool()
	defer done()
	policy := retry.New(retry.On(retry.Serialization, retry.Deadlock), retry.MaxAttempts(3),
		retry.WithBackoff(retry.FullJitter(retry.Exponential(time.Millisecond, 50*time.Millisecond), nil)))
	v, err := tx.Run(context.Background(), pool, balanceOf(2), tx.WithPolicy(policy), tx.WithIsolation(pgx.RepeatableRead))
	fmt.Println(v, err)
	// Output: 50 <nil>
}

func ExampleFunc() {
	pool, done := examplePool()
	defer done()
	// Plain pgx code (or sqlc's generated Queries, New(q)) inside a pgxact transaction.
	count := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		var n int
		err := q.QueryRow(ctx, "SELECT count(*) FROM accounts").Scan(&n)
		return n, err
	})
	n, err := tx.Run(context.Background(), pool, count)
	fmt.Println(n, err)
	// Output: 2 <nil>
}
