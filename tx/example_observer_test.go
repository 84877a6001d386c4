package tx_test

import (
	"context"
	"fmt"

	"github.com/pgxact/pgxact/tx"
)

// outcomes embeds NopObserver, so it implements only the event it cares about.
type outcomes struct {
	tx.NopObserver
	runs int
}

func (o *outcomes) EndRun(_ context.Context, r tx.RunInfo) {
	o.runs++
	fmt.Println("run", o.runs, "attempts", r.Attempts, "error", r.Err)
}

func ExampleNopObserver() {
	pool, done := examplePool()
	defer done()
	o := &outcomes{}
	_, _ = tx.Run(context.Background(), pool, tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = 1"),
		tx.WithObserver(o))
	// Output: run 1 attempts 1 error <nil>
}
