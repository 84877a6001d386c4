package txtest_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

// A test that makes a transfer's first two attempts fail, and checks that it is applied once.
func ExampleInject() {
	testTransfer := func(t *testing.T) {
		pool := pgtest.Pool(t) // with an accounts table
		db := txtest.Inject(pool, txtest.FailFirst(2), txtest.InBody())
		move := tx.Exec("UPDATE accounts SET balance = balance + CASE id WHEN 1 THEN -10 ELSE 10 END WHERE id IN (1, 2)")
		if _, err := tx.Run(t.Context(), db, move); err != nil {
			t.Fatal(err)
		}
		if db.Attempts() != 3 {
			t.Fatalf("attempts: %d", db.Attempts())
		}
		// ...then check that account 1 lost 10, not 30.
	}
	_ = testTransfer
}

// An outbox whose messages are published by an AfterCommit hook: the body may run twice, the hook runs once.
func ExampleRequireRetrySafe() {
	testOutbox := func(t *testing.T) {
		pool := pgtest.Pool(t) // with an events table
		var published atomic.Int32
		work := tx.Then(
			tx.Exec("INSERT INTO events (kind) VALUES ('order placed')"),
			tx.AfterCommit(func(context.Context) { published.Add(1) }),
		)
		txtest.RequireRetrySafe(t, pool, work, func() txtest.Counts {
			return txtest.Counts{"published": int(published.Load())}
		})
	}
	_ = testOutbox
}

func ExampleHookCounter() {
	testEmail := func(t *testing.T) {
		pool := pgtest.Pool(t)
		var hooks txtest.HookCounter
		work := tx.Then(tx.QueryOne("SELECT 1", pgx.RowTo[int]), tx.AfterCommit(hooks.Hook("email")))
		if _, err := tx.Run(t.Context(), txtest.Inject(pool), work); err != nil {
			t.Fatal(err)
		}
		hooks.RequireOnce(t, "email")
	}
	_ = testEmail
}
