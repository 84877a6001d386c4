package compose_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

// examplePool stands in for the pool an application opens with pgxpool.New. It connects to the maintenance database
// of the test binary's server; the examples create nothing that outlives their transaction there.
var examplePool = sync.OnceValue(func() *pgxpool.Pool {
	cluster, err := pgtest.Shared()
	if err != nil {
		panic(err)
	}
	pool, err := pgxpool.New(context.Background(), cluster.ConnString("postgres"))
	if err != nil {
		panic(err)
	}
	return pool
})

// Independent reads: both statements, and BEGIN, travel in one round trip.
func ExampleZip() {
	ctx := context.Background()
	pool := examplePool()
	both := compose.Zip(
		tx.QueryOne("SELECT $1::int + 1", pgx.RowTo[int], 2),
		tx.QueryOne("SELECT upper($1)", pgx.RowTo[string], "hello"),
	)
	got, err := tx.Run(ctx, pool, both)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.A, got.B)
	// Output: 3 HELLO
}

func ExampleSequence() {
	ctx := context.Background()
	pool := examplePool()
	got, err := tx.Run(ctx, pool, compose.Sequence([]tx.Tx[string]{
		tx.QueryOne("SELECT 'first'::text", pgx.RowTo[string]),
		tx.Pure("second"),
		tx.QueryOne("SELECT 'third'::text", pgx.RowTo[string]),
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got)
	// Output: [first second third]
}

// Traverse builds one statement per element; all of them go to the server in one round trip.
func ExampleTraverse() {
	ctx := context.Background()
	pool := examplePool()
	square := func(n int) tx.Tx[int] { return tx.QueryOne("SELECT $1::int * $1::int", pgx.RowTo[int], n) }
	got, err := tx.Run(ctx, pool, compose.Traverse([]int{1, 2, 3}, square))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got)
	// Output: [1 4 9]
}

// Each step needs the previous result, so each costs a round trip: use Fold only for work that is sequential.
func ExampleFold() {
	ctx := context.Background()
	pool := examplePool()
	add := func(total, amount int) tx.Tx[int] {
		return tx.QueryOne("SELECT $1::int + $2::int", pgx.RowTo[int], total, amount)
	}
	got, err := tx.Run(ctx, pool, compose.Fold([]int{10, 20, 30}, 100, add))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got)
	// Output: 160
}

// ForEach runs work for its effects: here, the settings row-level security policies read, in one round trip.
func ExampleForEach() {
	ctx := context.Background()
	pool := examplePool()
	settings := [][2]string{{"app.tenant", "acme"}, {"app.user", "ada"}}
	work := tx.Then(
		compose.ForEach(settings, func(s [2]string) tx.Tx[struct{}] { return tx.SetLocal(s[0], s[1]) }),
		tx.QueryOne("SELECT current_setting('app.tenant') || '/' || current_setting('app.user')", pgx.RowTo[string]),
	)
	got, err := tx.Run(ctx, pool, work)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got)
	// Output: acme/ada
}

// When adds work that a condition known while building asks for, without breaking the batch.
func ExampleWhen() {
	ctx := context.Background()
	pool := examplePool()
	for _, audit := range []bool{false, true} {
		work := tx.Then(
			compose.When(audit, tx.SetLocal("app.audit", "on")),
			tx.QueryOne("SELECT coalesce(nullif(current_setting('app.audit', true), ''), 'off')", pgx.RowTo[string]),
		)
		got, err := tx.Run(ctx, pool, work)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(audit, got)
	}
	// Output:
	// false off
	// true on
}

// Three independent reads of different types, in one round trip.
func ExampleZip3() {
	three := compose.Zip3(
		tx.QueryOne("SELECT 7", pgx.RowTo[int]),
		tx.QueryOne("SELECT 'x'::text", pgx.RowTo[string]),
		tx.QueryOne("SELECT true", pgx.RowTo[bool]),
	)
	got, err := tx.Run(context.Background(), examplePool(), three)
	fmt.Println(got.A, got.B, got.C, err)
	// Output: 7 x true <nil>
}
