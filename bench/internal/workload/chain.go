package workload

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/tx"
)

const (
	chainRows   = 10_000
	chainSelect = "SELECT next FROM bench_links WHERE id = $1"
	chainUpdate = "UPDATE bench_links SET hits = hits + 1 WHERE id = $1 RETURNING next"
)

// chainNext is the pointer stored in row id: a permutation of 0..chainRows-1 (7919 is prime and does not divide
// chainRows), so chains wander over the whole table and the harness can compute where one must end.
func chainNext(id int64) int64 { return (id*7919 + 13) % chainRows }

type chain struct{ k int }

// Chain returns the workload of k dependent statements: k-1 SELECTs each reading the pointer the next one follows,
// then an UPDATE of the row reached that returns its pointer. Its invariants are that the row counters add up to the
// number of commits and that every chain ends where the pointers say.
func Chain(k int) Workload { return chain{k: k} }

func (chain) Name() string { return "chain" }

func (chain) Setup(ctx context.Context, db *pgxpool.Pool) error {
	return execAll(ctx, db,
		"DROP TABLE IF EXISTS bench_links",
		"CREATE TABLE bench_links (id bigint PRIMARY KEY, next bigint NOT NULL, hits bigint NOT NULL DEFAULT 0)",
		"INSERT INTO bench_links (id, next) SELECT g, (g * 7919 + 13) % 10000 FROM generate_series(0, 9999) AS g",
		"ANALYZE bench_links",
	)
}

func (chain) Reset(ctx context.Context, db *pgxpool.Pool) error {
	return execAll(ctx, db, "UPDATE bench_links SET hits = 0 WHERE hits <> 0")
}

func (chain) Check(ctx context.Context, db *pgxpool.Pool, commits int64) error {
	return checkCount(ctx, db, "SELECT coalesce(sum(hits), 0)::bigint FROM bench_links", commits)
}

func (w chain) Tx(r *rand.Rand) tx.Tx[struct{}] {
	start := r.Int64N(chainRows)
	return tx.Bind(w.hop(start, w.k), func(end int64) tx.Tx[struct{}] {
		if err := checkChain(start, w.k, end); err != nil {
			return tx.Fail[struct{}](err)
		}
		return tx.Pure(struct{}{})
	})
}

// hop follows n pointers from id, the last one with the UPDATE.
func (w chain) hop(id int64, n int) tx.Tx[int64] {
	if n == 1 {
		return tx.QueryOne(chainUpdate, pgx.RowTo[int64], id)
	}
	return tx.Bind(tx.QueryOne(chainSelect, pgx.RowTo[int64], id), func(next int64) tx.Tx[int64] {
		return w.hop(next, n-1)
	})
}

func (w chain) Body(r *rand.Rand) Body {
	start := r.Int64N(chainRows)
	return func(ctx context.Context, q Querier) error {
		id := start
		for i := 1; i < w.k; i++ {
			if err := q.QueryRow(ctx, chainSelect, id).Scan(&id); err != nil {
				return err
			}
		}
		if err := q.QueryRow(ctx, chainUpdate, id).Scan(&id); err != nil {
			return err
		}
		return checkChain(start, w.k, id)
	}
}

func checkChain(start int64, k int, end int64) error {
	want := start
	for range k {
		want = chainNext(want)
	}
	if end != want {
		return fmt.Errorf("%w: chain of %d from %d ended at %d, not %d", ErrInvariant, k, start, end, want)
	}
	return nil
}
