package otelpgxact_test

import (
	"context"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"

	otelpgxact "github.com/pgxact/pgxact/otel"
	"github.com/pgxact/pgxact/tx"
)

// Trace transactions and, under each attempt, pgx's queries.
func ExampleObserver() {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig("postgres://app@127.0.0.1:5432/app")
	if err != nil {
		panic(err)
	}
	cfg.ConnConfig.Tracer = otelpgx.NewTracer() // uses the global TracerProvider, like Observer(nil)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	observe := tx.WithObserver(otelpgxact.Observer(nil))
	_, err = tx.Run(ctx, pool, tx.Exec("UPDATE counters SET n = n + 1 WHERE id = $1", 1), observe)
	_ = err
}
