package workload

import (
	"context"
	"math/rand/v2"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/tx"
)

// singleRows is large enough that concurrent updates rarely touch the same row.
const singleRows = 100_000

const singleUpdate = "UPDATE bench_items SET n = n + 1 WHERE id = $1"

type single struct{}

// Single returns the one-statement write workload: UPDATE one random row of a 100,000-row table. Its invariant is
// that the counters add up to the number of commits.
func Single() Workload { return single{} }

func (single) Name() string { return "single" }

func (single) Setup(ctx context.Context, db *pgxpool.Pool) error {
	return execAll(ctx, db,
		"DROP TABLE IF EXISTS bench_items",
		"CREATE TABLE bench_items (id bigint PRIMARY KEY, n bigint NOT NULL DEFAULT 0)",
		"INSERT INTO bench_items (id) SELECT g FROM generate_series(1, 100000) AS g",
		"ANALYZE bench_items",
	)
}

func (single) Reset(ctx context.Context, db *pgxpool.Pool) error {
	return execAll(ctx, db, "UPDATE bench_items SET n = 0 WHERE n <> 0")
}

func (single) Check(ctx context.Context, db *pgxpool.Pool, commits int64) error {
	return checkCount(ctx, db, "SELECT coalesce(sum(n), 0)::bigint FROM bench_items", commits)
}

func (single) Tx(r *rand.Rand) tx.Tx[struct{}] {
	return discard(tx.Exec(singleUpdate, 1+r.Int64N(singleRows)))
}

func (single) Body(r *rand.Rand) Body {
	id := 1 + r.Int64N(singleRows)
	return func(ctx context.Context, q Querier) error {
		_, err := q.Exec(ctx, singleUpdate, id)
		return err
	}
}
