package tx_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// raiseConflict fails with a real serialization failure (SQLSTATE 40001) from the server, as a losing SERIALIZABLE
// transaction would.
const raiseConflict = `DO $$BEGIN RAISE 'simulated conflict' USING ERRCODE = '40001'; END$$`

// Both UPDATEs travel in one round trip; the error says which of them failed.
func ExampleStatementError() {
	pool, done := examplePool()
	defer done()
	work := tx.Then(tx.Exec("UPDATE accounts SET balance = balance - 10 WHERE id = 1"),
		tx.Exec("UPDATE accounts SET balance = balance / 0 WHERE id = 2"))
	_, err := tx.Run(context.Background(), pool, work)
	var se *tx.StatementError
	if errors.As(err, &se) {
		fmt.Println(se.Index, se.SQL)
	}
	var pgErr *pgconn.PgError
	fmt.Println(errors.As(err, &pgErr) && pgErr.Code == "22012") // the cause is still there
	// Output:
	// 1 UPDATE accounts SET balance = balance / 0 WHERE id = 2
	// true
}

// Every attempt fails with 40001: Run gives up after the policy's two attempts.
func ExampleRetryError() {
	pool, done := examplePool()
	defer done()
	policy := retry.New(retry.On(retry.Serialization), retry.MaxAttempts(2),
		retry.WithBackoff(retry.Constant(time.Millisecond)))
	_, err := tx.Run(context.Background(), pool, tx.Exec(raiseConflict), tx.WithPolicy(policy))
	var re *tx.RetryError
	if errors.As(err, &re) {
		fmt.Println(re.Attempts, re.Err)
	}
	fmt.Println(retry.Classify(err)) // RetryError unwraps to the last attempt's error
	// Output:
	// 2 tx: statement 0 (DO $$BEGIN RAISE 'simulated conflict' USING ERRCODE = '40001'; END$$): ERROR: simulated conflict (SQLSTATE 40001)
	// Serialization
}

// attemptPrinter prints every attempt's outcome; NopObserver supplies the methods it does not need.
type attemptPrinter struct{ tx.NopObserver }

func (attemptPrinter) EndAttempt(_ context.Context, a tx.AttemptInfo) {
	if a.Err == nil {
		fmt.Printf("attempt %d: committed\n", a.Attempt)
		return
	}
	fmt.Printf("attempt %d: %s (%v), retry: %v\n", a.Attempt, a.SQLState, a.Class, a.Retry)
}

func (attemptPrinter) EndRun(_ context.Context, r tx.RunInfo) {
	fmt.Printf("run: %d attempts, err=%v\n", r.Attempts, r.Err)
}

func ExampleWithObserver() {
	pool, done := examplePool()
	defer done()
	attempts := 0 // the first attempt loses a conflict, the second commits
	work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		attempts++
		if attempts == 1 {
			_, err := q.Exec(ctx, raiseConflict)
			return 0, err
		}
		return attempts, nil
	})
	policy := retry.New(retry.On(retry.Serialization), retry.WithBackoff(retry.Constant(time.Millisecond)))
	_, err := tx.Run(context.Background(), pool, work, tx.WithPolicy(policy), tx.WithObserver(attemptPrinter{}))
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// attempt 1: 40001 (Serialization), retry: true
	// attempt 2: committed
	// run: 2 attempts, err=<nil>
}
