package compose_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/tx"
)

// The lookup of the second id finds no row: the ElementError names it, and the cause stays reachable.
func ExampleElementError() {
	ctx := context.Background()
	lookup := func(id int) tx.Tx[int] {
		return tx.QueryOne("SELECT id FROM generate_series(1, 3) AS id WHERE id = $1", pgx.RowTo[int], id)
	}
	_, err := tx.Run(ctx, examplePool(), compose.Traverse([]int{3, 7, 1}, lookup))
	var ee *compose.ElementError
	if errors.As(err, &ee) {
		fmt.Println("element", ee.Index, "failed:", errors.Is(ee, pgx.ErrNoRows))
	}
	// The three statements shared a round trip, so a *tx.StatementError outside it gives the position there too.
	fmt.Println(err)
	// Output:
	// element 1 failed: true
	// tx: statement 1 (SELECT id FROM generate_series(1, 3) AS id WHERE id = $1): compose: element 1: no rows in result set
}
