package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/pgtest"
)

// ConnString is for code under test that takes a connection string rather than a pool, such as a program's own
// start-up.
func ExampleConnString() {
	testStartUp := func(t *testing.T) {
		connString := pgtest.ConnString(t) // a new, empty database, dropped at t's cleanup
		conn, err := pgx.Connect(t.Context(), connString)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		// ... start the program on connString, then check what it did through conn.
	}
	_ = testStartUp
}

// Config is for tests that tune the pool: here one connection, so that work which needs two at once deadlocks in
// the test rather than under load in production.
func ExampleConfig() {
	testOneConnection := func(t *testing.T) {
		config := pgtest.Config(t)
		config.MaxConns = 1
		pool, err := pgxpool.NewWithConfig(t.Context(), config)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close) // registered after the database's drop, so it runs first
		// ... run the work on pool.
	}
	_ = testOneConnection
}

// Each test gets its own database, so parallel tests can create the same table.
func ExamplePool() {
	testParallel := func(t *testing.T) {
		for _, name := range []string{"first", "second"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				pool := pgtest.Pool(t) // closed, and the database dropped, at t's cleanup
				if _, err := pool.Exec(t.Context(), "CREATE TABLE users (id bigint PRIMARY KEY)"); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	_ = testParallel
}
