package txtest_test

import (
	"context"
	"fmt"

	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

// Count reads how often a named hook ran; RequireCount and RequireOnce assert it in a test.
func ExampleHookCounter_Count() {
	pool, done := examplePool() // in a test: pgtest.Pool(t)
	defer done()
	var hooks txtest.HookCounter
	order := tx.Then(tx.Exec("UPDATE accounts SET balance = balance - 5 WHERE id = 1"),
		tx.Then(tx.AfterCommit(hooks.Hook("email")), tx.AfterCommit(hooks.Hook("email"))))
	_, err := tx.Run(context.Background(), pool, order)
	fmt.Println(err, hooks.Count("email"), hooks.Count("sms"))
	// in a test: hooks.RequireCount(t, "email", 2)
	// Output: <nil> 2 0
}

// Attempts counts every attempt through the Injector; Injected those it made fail.
func ExampleInjector_Injected() {
	pool, done := examplePool()
	defer done()
	db := txtest.Inject(pool, txtest.FailFirst(2))
	_, err := tx.Run(context.Background(), db, tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = 1"))
	fmt.Println(err, db.Attempts(), db.Injected())
	// Output: <nil> 3 2
}
