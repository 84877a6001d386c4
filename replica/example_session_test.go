package replica_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
)

// examplePrimary is a pool on a new database of the test binary's server, for examples that need a primary but no
// standby. done closes the pool and drops the database.
func examplePrimary() (pool *pgxpool.Pool, done func()) {
	ctx := context.Background()
	cluster, err := pgtest.Shared()
	if err != nil {
		panic(err)
	}
	connString, err := cluster.CreateDatabase(ctx, "")
	if err != nil {
		panic(err)
	}
	config, err := pgxpool.ParseConfig(connString)
	if err == nil {
		pool, err = pgxpool.NewWithConfig(ctx, config)
	}
	if err != nil {
		panic(err)
	}
	return pool, func() {
		pool.Close()
		_ = cluster.DropDatabase(ctx, config.ConnConfig.Database)
	}
}

// A token is where the session's last commit ended in the primary's log, so it changes only when the session
// commits; SessionFrom continues the session in a later request, or in another process. Tokens come from commits on
// the primary: this Router needs no replica to make one.
func ExampleSession_Token() {
	primary, done := examplePrimary()
	defer done()
	router, err := replica.New(primary, nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	s := router.Session()
	fmt.Printf("before any commit: %q\n", s.Token())
	if _, err := tx.Run(context.Background(), s, tx.Exec("CREATE TABLE orders (id int)")); err != nil {
		fmt.Println(err)
	}
	token := s.Token() // such as "0/1A2B3C8": put it in a cookie
	later, err := router.SessionFrom(token)
	fmt.Println(token != "", later.Token() == token, err)
	_, err = router.SessionFrom("forged")
	fmt.Println(errors.Is(err, replica.ErrInvalidToken))
	// Output:
	// before any commit: ""
	// true true <nil>
	// true
}
