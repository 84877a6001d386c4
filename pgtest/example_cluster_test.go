package pgtest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/pgtest"
)

// Shared is for tests that need the server itself rather than one database of it: a replica, pgbouncer, a database
// with a chosen name. It starts the server on first use; every later call returns the same one.
func ExampleShared() {
	cluster, err := pgtest.Shared()
	if err != nil {
		fmt.Println(err)
		return
	}
	again, _ := pgtest.Shared()
	fmt.Println(cluster == again)
	// Output: true
}

// A database made and dropped by hand, as ConnString does for each test. DropDatabase ends the sessions still
// connected to it, so a leaked connection cannot keep it alive.
func ExampleCluster() {
	ctx := context.Background()
	cluster, err := pgtest.Shared() // outside tests: pgtest.Start, then cluster.Stop when done
	if err != nil {
		fmt.Println(err)
		return
	}
	connString, err := cluster.CreateDatabase(ctx, "") // "": a generated, unique name
	if err != nil {
		fmt.Println(err)
		return
	}
	config, _ := pgx.ParseConfig(connString)
	conn, err := pgx.Connect(ctx, cluster.ConnString(config.Database)) // the same string as connString
	if err != nil {
		fmt.Println(err)
		return
	}
	var name string
	_ = conn.QueryRow(ctx, "SELECT current_database()").Scan(&name)
	fmt.Println(name == config.Database)

	fmt.Println(cluster.DropDatabase(ctx, config.Database))
	_, err = conn.Exec(ctx, "SELECT 1")
	fmt.Println("connection ended:", conn.IsClosed(), err != nil)
	// Output:
	// true
	// <nil>
	// connection ended: true true
}

// A test of reads on a hot standby. The standby copies the primary's databases, including the test's own.
func ExampleCluster_StartReplica() {
	testStandbyReads := func(t *testing.T) {
		cluster, err := pgtest.Shared()
		if err != nil {
			t.Fatal(err)
		}
		config := pgtest.Config(t)
		standby, err := cluster.StartReplica(t.Context())
		if errors.Is(err, pgtest.ErrExternal) {
			t.Fatal("needs an embedded server: unset DATABASE_URL") // fail, never skip: a skipped test passes
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = standby.Stop() }) // replicas stop before their primary
		replicaPool, err := pgxpool.New(t.Context(), standby.ConnString(config.ConnConfig.Database))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(replicaPool.Close)
		// ... write through a pool on config, read through replicaPool (which may lag a little).
	}
	_ = testStandbyReads
}

// A test through pgbouncer in transaction pooling mode, as production may run. Before pgbouncer 1.21, pgx's default
// cached prepared statements do not survive the pooling, so such tests use the exec mode.
func ExampleCluster_StartPgbouncer() {
	testThroughPgbouncer := func(t *testing.T) {
		cluster, err := pgtest.Shared()
		if err != nil {
			t.Fatal(err)
		}
		config := pgtest.Config(t)
		bouncer, err := cluster.StartPgbouncer(t.Context())
		if errors.Is(err, pgtest.ErrExternal) || errors.Is(err, pgtest.ErrNoPgbouncer) {
			t.Fatal(err) // fail, never skip: a skipped test passes
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bouncer.Stop() })
		pooled, err := pgxpool.ParseConfig(bouncer.ConnString(config.ConnConfig.Database))
		if err != nil {
			t.Fatal(err)
		}
		if !bouncer.PreparedStatements() {
			pooled.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		}
		pool, err := pgxpool.NewWithConfig(t.Context(), pooled)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		// ... run the work on pool.
	}
	_ = testThroughPgbouncer
}
