package txtest_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

// examplePool stands in for pgtest.Pool(t) in examples, which have no *testing.T: a pool on a new database of the
// test binary's server, with accounts 1 and 2 holding 100 each. done closes the pool and drops the database.
func examplePool() (pool *pgxpool.Pool, done func()) {
	ctx := context.Background()
	cluster, err := pgtest.Shared()
	if err != nil {
		panic(err)
	}
	connString, err := cluster.CreateDatabase(ctx, "")
	if err != nil {
		panic(err)
	}
	config, err := pgxpool.ParseConfig(connString)
	if err != nil {
		panic(err)
	}
	if pool, err = pgxpool.NewWithConfig(ctx, config); err == nil {
		_, err = pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
			INSERT INTO accounts VALUES (1, 100), (2, 100)`)
	}
	if err != nil {
		panic(err)
	}
	return pool, func() {
		pool.Close()
		_ = cluster.DropDatabase(ctx, config.ConnConfig.Database)
	}
}

// The first two attempts fail, so the body runs three times and commits once.
func ExampleFailFirst() {
	pool, done := examplePool() // in a test: pgtest.Pool(t)
	defer done()

	bodies := 0 // a Go-side count the rollback cannot undo: exactly what retries make wrong
	work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		bodies++
		var balance int
		err := q.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = 1").Scan(&balance)
		return balance, err
	})
	db := txtest.Inject(pool, txtest.FailFirst(2))
	// A policy of the test's own: retry.Default()'s budget is the whole binary's, and other tests may have drained it.
	balance, err := tx.Run(context.Background(), db, work, tx.WithPolicy(txtest.Policy()))
	fmt.Println(balance, err)
	fmt.Printf("body ran %d times, attempts %d, failed %d\n", bodies, db.Attempts(), db.Injected())
	// Output:
	// 100 <nil>
	// body ran 3 times, attempts 3, failed 2
}

// At COMMIT, the failing attempt has run its whole body: its INSERT is rolled back, so the retry's INSERT of the same
// key succeeds and one row remains.
func ExampleAtCommit() {
	pool, done := examplePool() // in a test: pgtest.Pool(t)
	defer done()

	open := tx.Func(func(ctx context.Context, q pgx.Tx) (struct{}, error) {
		_, err := q.Exec(ctx, "INSERT INTO accounts VALUES (3, 0)")
		fmt.Println("body done:", err)
		return struct{}{}, err
	})
	db := txtest.Inject(pool, txtest.FailFirst(1), txtest.AtCommit()) // AtCommit is the default
	if _, err := tx.Run(context.Background(), db, open); err != nil {
		fmt.Println(err)
	}
	var n int
	_ = pool.QueryRow(context.Background(), "SELECT count(*) FROM accounts WHERE id = 3").Scan(&n)
	fmt.Println("rows:", n)
	// Output:
	// body done: <nil>
	// body done: <nil>
	// rows: 1
}

// In the body, the doomed attempt fails at its first read of an ordinary table, as a transaction that lost a real
// serializable conflict would: code after that read never runs on the failed attempt.
func ExampleInBody() {
	pool, done := examplePool() // in a test: pgtest.Pool(t)
	defer done()

	withdraw := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		var balance int
		if err := q.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = 1").Scan(&balance); err != nil {
			fmt.Println("read failed:", err)
			return 0, err
		}
		_, err := q.Exec(ctx, "UPDATE accounts SET balance = $1 WHERE id = 1", balance-10)
		return balance - 10, err
	})
	db := txtest.Inject(pool, txtest.InBody()) // needs SERIALIZABLE READ WRITE, tx.Run's default
	balance, err := tx.Run(context.Background(), db, withdraw)
	fmt.Println(balance, err)
	// Output:
	// read failed: ERROR: could not serialize access due to read/write dependencies among transactions (SQLSTATE 40001)
	// 90 <nil>
}

// An Injector counts attempts, not runs: FailFirst(1), the default, fails only the first Run's first attempt. Give
// each Run whose retries a test counts its own Injector.
func ExampleInjector() {
	pool, done := examplePool() // in a test: pgtest.Pool(t)
	defer done()

	db := txtest.Inject(pool)
	read := tx.QueryOne("SELECT balance FROM accounts WHERE id = 2", pgx.RowTo[int])
	for range 2 {
		balance, err := tx.Run(context.Background(), db, read)
		fmt.Printf("balance %d, err %v; attempts so far %d, failed %d\n", balance, err, db.Attempts(), db.Injected())
	}
	// Output:
	// balance 100, err <nil>; attempts so far 2, failed 1
	// balance 100, err <nil>; attempts so far 3, failed 1
}

// With EachRun, every transaction run through one Injector fails its first attempts: a whole service under test can
// share one db.
func ExampleEachRun() {
	pool, done := examplePool() // in a test: pgtest.Pool(t)
	defer done()

	db := txtest.Inject(pool, txtest.FailFirst(1), txtest.EachRun())
	read := tx.QueryOne("SELECT balance FROM accounts WHERE id = 2", pgx.RowTo[int])
	for range 2 {
		balance, err := tx.Run(context.Background(), db, read, tx.WithPolicy(txtest.Policy()))
		fmt.Printf("balance %d, err %v; attempts so far %d, failed %d\n", balance, err, db.Attempts(), db.Injected())
	}
	// Output:
	// balance 100, err <nil>; attempts so far 2, failed 1
	// balance 100, err <nil>; attempts so far 4, failed 2
}

// Policy is retry.Default()'s policy with a budget and a gate of its own, so that a test's retries do not depend on
// what other tests of the binary spent.
func ExamplePolicy() {
	pool, done := examplePool() // in a test: pgtest.Pool(t)
	defer done()

	db := txtest.Inject(pool, txtest.FailFirst(5))
	read := tx.QueryOne("SELECT balance FROM accounts WHERE id = 1", pgx.RowTo[int])
	balance, err := tx.Run(context.Background(), db, read, tx.WithPolicy(txtest.Policy()))
	fmt.Println(balance, err, db.Attempts())
	// Output:
	// 100 <nil> 6
}
