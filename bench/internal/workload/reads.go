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
	readsRows   = 10_000
	readsSelect = "SELECT v FROM bench_kv WHERE id = $1"
)

// readsValue is the value stored under id, so that every read can be checked.
func readsValue(id int64) int64 { return id*7 + 3 }

type reads struct{ k int }

// Reads returns the workload of k independent point reads in one transaction. Every value read is checked; a wrong
// one fails the transaction with an error wrapping ErrInvariant.
func Reads(k int) Workload { return reads{k: k} }

func (reads) Name() string { return "reads" }

func (reads) Setup(ctx context.Context, db *pgxpool.Pool) error {
	return execAll(ctx, db,
		"DROP TABLE IF EXISTS bench_kv",
		"CREATE TABLE bench_kv (id bigint PRIMARY KEY, v bigint NOT NULL)",
		"INSERT INTO bench_kv (id, v) SELECT g, g * 7 + 3 FROM generate_series(1, 10000) AS g",
		"ANALYZE bench_kv",
	)
}

func (reads) Reset(context.Context, *pgxpool.Pool) error { return nil }

// Check has nothing to verify on the table: reads check their own results.
func (reads) Check(context.Context, *pgxpool.Pool, int64) error { return nil }

func (w reads) ids(r *rand.Rand) []int64 {
	ids := make([]int64, w.k)
	for i := range ids {
		ids[i] = 1 + r.Int64N(readsRows)
	}
	return ids
}

func (w reads) Tx(r *rand.Rand) tx.Tx[struct{}] {
	ids := w.ids(r)
	ts := make([]tx.Tx[int64], len(ids))
	for i, id := range ids {
		ts[i] = tx.QueryOne(readsSelect, pgx.RowTo[int64], id)
	}
	return tx.Bind(tx.All(ts), func(vs []int64) tx.Tx[struct{}] {
		for i, v := range vs {
			if err := checkRead(ids[i], v); err != nil {
				return tx.Fail[struct{}](err)
			}
		}
		return tx.Pure(struct{}{})
	})
}

func (w reads) Body(r *rand.Rand) Body {
	ids := w.ids(r)
	return func(ctx context.Context, q Querier) error {
		for _, id := range ids {
			var v int64
			if err := q.QueryRow(ctx, readsSelect, id).Scan(&v); err != nil {
				return err
			}
			if err := checkRead(id, v); err != nil {
				return err
			}
		}
		return nil
	}
}

func checkRead(id, v int64) error {
	if v != readsValue(id) {
		return fmt.Errorf("%w: read %d under id %d, stored %d", ErrInvariant, v, id, readsValue(id))
	}
	return nil
}
