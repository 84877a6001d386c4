package pgtest_test

import (
	"context"
	"log"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/pgtest"
)

// A test binary that uses pgtest declares TestMain as below, in any one of its _test.go files: Main runs the tests,
// then stops the shared server and removes its directory, also on Ctrl-C.
func ExampleMain() {
	testMain := func(m *testing.M) { pgtest.Main(m) } // func TestMain(m *testing.M) { pgtest.Main(m) }
	_ = testMain
}

// A demo program, not a test, gets its own throwaway server from Start (the DATABASE_URL server, if that is set)
// and stops it on the way out.
func ExampleStart() {
	ctx := context.Background()
	cluster, err := pgtest.Start(ctx)
	if err != nil {
		log.Fatal(err) // says how to install PostgreSQL
	}
	defer cluster.Stop() // should the program die first, a watchdog process removes the server
	// A generated name: a DATABASE_URL server may be shared.
	connString, err := cluster.CreateDatabase(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, connString)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	// ... run the demo on pool.
}
