package compose_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

var sizes = []int{100, 1_000, 10_000}

// BenchmarkSequence shows that building and running a Sequence of n Pure values grows linearly with n: ns/op and
// allocs/op should grow tenfold from one size to the next, not a hundredfold.
func BenchmarkSequence(b *testing.B) {
	pool := pgtest.Pool(b)
	for _, n := range sizes {
		ts := make([]tx.Tx[int], n)
		for i := range ts {
			ts[i] = tx.Pure(i)
		}
		b.Run(fmt.Sprintf("build/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = compose.Sequence(ts)
			}
		})
		b.Run(fmt.Sprintf("run/%d", n), func(b *testing.B) {
			work := compose.Sequence(ts)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tx.Run(b.Context(), pool, work); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFold is the same measure for a Fold of n Pure steps, built and run.
func BenchmarkFold(b *testing.B) {
	pool := pgtest.Pool(b)
	add := func(acc, x int) tx.Tx[int] { return tx.Pure(acc + x) }
	for _, n := range sizes {
		xs := make([]int, n)
		b.Run(fmt.Sprintf("%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tx.Run(b.Context(), pool, compose.Fold(xs, 0, add)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTraverseQueries runs 100 one-row queries in a transaction with Traverse, beside the same work written by
// hand as one pgx batch.
func BenchmarkTraverseQueries(b *testing.B) {
	const n = 100
	pool := pgtest.Pool(b)
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	b.Run("compose", func(b *testing.B) {
		work := compose.Traverse(xs, selectInt)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tx.Run(b.Context(), pool, work, tx.WithIsolation(pgx.ReadCommitted)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pgx", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := pgxBatch(b.Context(), pool, xs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// pgxBatch is the hand-written baseline: BEGIN and the queries in one batch, then COMMIT.
func pgxBatch(ctx context.Context, pool *pgxpool.Pool, xs []int) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	batch := &pgx.Batch{}
	batch.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	got := make([]int, len(xs))
	for i, x := range xs {
		batch.Queue("SELECT $1::int", x).QueryRow(func(row pgx.Row) error { return row.Scan(&got[i]) })
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		_, _ = conn.Exec(ctx, "ROLLBACK")
		return err
	}
	_, err = conn.Exec(ctx, "COMMIT")
	return err
}
