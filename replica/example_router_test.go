package replica_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
)

// A Router in place of the primary pool: reads that may lag go to the standbys in turn, writes to the primary.
func ExampleNew() {
	ctx := context.Background()
	primary, err := pgxpool.New(ctx, "postgres://app@db-primary:5432/shop")
	if err != nil {
		log.Fatal(err)
	}
	defer primary.Close() // the Router does not own its pools
	var standbys []*pgxpool.Pool
	for _, host := range []string{"db-standby-1", "db-standby-2"} {
		// One pool per standby, so the Router can track how far each has replayed; connect_timeout keeps a dead
		// standby from holding a read until its context ends.
		pool, err := pgxpool.New(ctx, "postgres://app@"+host+":5432/shop?connect_timeout=2")
		if err != nil {
			log.Fatal(err)
		}
		defer pool.Close()
		standbys = append(standbys, pool)
	}
	router, err := replica.New(primary, standbys)
	if err != nil {
		log.Fatal(err)
	}

	// READ ONLY: a standby, at REPEATABLE READ (standbys refuse SERIALIZABLE, tx.Run's default).
	n, err := tx.Run(ctx, router, tx.QueryOne("SELECT count(*) FROM orders", pgx.RowTo[int]), tx.ReadOnly())
	if err != nil {
		log.Fatal(err)
	}
	// tx.Run's default, SERIALIZABLE READ WRITE: the primary.
	if _, err := tx.Run(ctx, router, tx.Exec("INSERT INTO orders DEFAULT VALUES")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "orders, give or take the standby's lag (a Session reads its own writes)")
}

// Read-your-writes within one request: the read after the write runs on a standby that has replayed the write, or
// on the primary if none has within WithMaxWait, so it always counts the order just placed.
func ExampleRouter_Session() {
	ctx := context.Background()
	primary, _ := pgxpool.New(ctx, "postgres://app@db-primary:5432/shop")
	standby, _ := pgxpool.New(ctx, "postgres://app@db-standby:5432/shop?connect_timeout=2")
	router, err := replica.New(primary, []*pgxpool.Pool{standby})
	if err != nil {
		log.Fatal(err)
	}

	s := router.Session() // per user or request flow, not per process
	if _, err := tx.Run(ctx, s, tx.Exec("INSERT INTO orders DEFAULT VALUES")); err != nil {
		log.Fatal(err)
	}
	n, err := tx.Run(ctx, s, tx.QueryOne("SELECT count(*) FROM orders", pgx.RowTo[int]), tx.ReadOnly())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "orders, including the one just placed")
}
