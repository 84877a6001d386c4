// Package bench_test holds Go benchmarks of pgxact against hand-written pgx on one connection, where round trips and
// per-transaction overhead show without contention. Run them with:
//
//	go test -run '^$' -bench . -benchmem
//
// txbench (cmd/txbench) measures the same workloads under contention.
package bench_test

import (
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/impl"
	"github.com/pgxact/pgxact/bench/internal/workload"
	"github.com/pgxact/pgxact/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func BenchmarkTransaction(b *testing.B) {
	config := pgtest.Config(b)
	config.MaxConns = 1 // one connection: the cost of a transaction, not the server's concurrency
	pool, err := pgxpool.NewWithConfig(b.Context(), config)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	cases := []struct {
		name string
		w    workload.Workload
	}{
		{"single", workload.Single()},
		{"reads-k5", workload.Reads(5)},
		{"reads-k20", workload.Reads(20)},
		{"chain-k5", workload.Chain(5)},
	}
	for _, c := range cases {
		if err := c.w.Setup(b.Context(), pool); err != nil {
			b.Fatal(err)
		}
		for _, name := range []string{"pgxact", "pgxact-fused", "pgx"} {
			b.Run(c.name+"/"+name, func(b *testing.B) { benchRunner(b, pool, c.w, name) })
		}
	}
}

// benchRunner runs one workload transaction per iteration with the named implementation; any failure fails the
// benchmark, since nothing contends.
func benchRunner(b *testing.B, pool *pgxpool.Pool, w workload.Workload, name string) {
	im, err := impl.ByName(name)
	if err != nil {
		b.Fatal(err)
	}
	run := im.New(pool, w)
	r := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := run(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}
