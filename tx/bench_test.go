package tx_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// fakeDB is a network-free tx.DB: its transactions accept Exec and commit, so the benchmarks below measure the
// combinators and the runner, not PostgreSQL.
type fakeDB struct{}

func (fakeDB) BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error) { return fakeTx{}, nil }

type fakeTx struct{ pgx.Tx } // methods not overridden are never called by these benchmarks

func (fakeTx) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, nil
}
func (fakeTx) Commit(context.Context) error                     { return nil }
func (fakeTx) Rollback(context.Context) error                   { return nil }
func (fakeTx) Conn() *pgx.Conn                                  { return nil }
func (fakeTx) QueryRow(context.Context, string, ...any) pgx.Row { return fakeRow{} }

type fakeRow struct{}

func (fakeRow) Scan(...any) error { return nil } // leaves the transaction id unknown

func bindChain(k int) tx.Tx[int] {
	t := tx.Pure(0)
	for range k {
		t = tx.Bind(t, func(x int) tx.Tx[int] { return tx.Pure(x + 1) })
	}
	return t
}

// BenchmarkBindStep reports the cost of one Bind step (ns/op and allocs/op are per step: divide by nothing).
func BenchmarkBindStep(b *testing.B) {
	const k = 1000
	chain := bindChain(k)
	ctx := context.Background()
	opt := tx.WithPolicy(retry.Never())
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if _, err := tx.Run(ctx, fakeDB{}, chain, opt); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*k), "ns/step")
}

// BenchmarkGrowth runs large pipelines to show time and memory grow linearly with their size.
func BenchmarkGrowth(b *testing.B) {
	ctx := context.Background()
	opt := tx.WithPolicy(retry.Never())
	touch := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) { _, err := q.Exec(ctx, "SELECT 1"); return 1, err })
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("Sequence/%d", n), func(b *testing.B) {
			ts := make([]tx.Tx[int], n)
			for i := range ts {
				ts[i] = tx.Pure(i)
			}
			all := tx.All(ts)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tx.Run(ctx, fakeDB{}, all, opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("Nested/%d", n), func(b *testing.B) {
			t := touch
			for range n {
				t = tx.Nested(t)
			}
			b.ReportAllocs()
			for b.Loop() {
				// ReadOnly: touch's Exec would otherwise have COMMIT look at the transaction id first, in a batch
				// fakeTx does not take; the look is the database's cost, not the combinators'.
				if _, err := tx.Run(ctx, fakeDB{}, t, opt, tx.ReadOnly()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
