package tx_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/tx"
)

// attemptAcquirer is an Acquirer that says which attempt of a Run it lends a connection for.
type attemptAcquirer struct{ *pgxpool.Pool }

func (a attemptAcquirer) AcquireTx(ctx context.Context, _ pgx.TxOptions) (*pgx.Conn, func(), error) {
	fmt.Println("lending for attempt", tx.AttemptOf(ctx))
	c, err := a.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.Conn(), c.Release, nil
}

// An Acquirer learns from AttemptOf which attempt of a Run it lends a connection for: here the first one fails with a
// serialization failure and Run restarts the transaction.
func ExampleAttemptOf() {
	pool, done := examplePool()
	defer done()
	first := true
	work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		if first {
			first = false
			return 0, &pgconn.PgError{Severity: "ERROR", Code: "40001", Message: "a conflict, for the example"}
		}
		var balance int
		err := q.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = 1").Scan(&balance)
		return balance, err
	})
	balance, err := tx.Run(context.Background(), attemptAcquirer{pool}, work)
	fmt.Println(balance, err)
	// Output:
	// lending for attempt 1
	// lending for attempt 2
	// 100 <nil>
}
