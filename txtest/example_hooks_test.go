package txtest_test

import (
	"context"
	"fmt"

	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

// A deposit whose receipt is sent from an AfterCommit hook: the body runs twice, the receipt goes out once.
func ExampleNewHookCounter() {
	pool, done := examplePool() // in a test: pgtest.Pool(t)
	defer done()

	hooks := txtest.NewHookCounter() // the same as a zero HookCounter, as a pointer to share
	deposit := tx.Then(
		tx.Exec("UPDATE accounts SET balance = balance + 10 WHERE id = 1"),
		tx.AfterCommit(hooks.Hook("receipt")),
	)
	db := txtest.Inject(pool, txtest.FailFirst(1))
	if _, err := tx.Run(context.Background(), db, deposit); err != nil {
		fmt.Println(err)
	}
	fmt.Println("attempts:", db.Attempts(), "receipts:", hooks.Count("receipt"))
	// Output: attempts: 2 receipts: 1
}
