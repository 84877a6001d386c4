package bench_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/workload"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

// shapesUpdate is the single workload's statement.
const shapesUpdate = "UPDATE bench_items SET n = n + 1 WHERE id = $1"

// BenchmarkSingleShapes splits pgxact's time on the single workload, on one connection, into what its messages cost
// and what its own code adds. Each iteration runs a block of 100 transactions in each of five ways, in an order
// rotated from one iteration to the next, so that the ways share the host's drift; it reports each way's µs per
// transaction, and the CPU time the client (this process) spent per transaction:
//
//   - pgx: pgx.BeginTxFunc around the UPDATE, three round trips;
//   - wire-look: the messages pgxact sends, written by hand with pgconn: BEGIN, the UPDATE and the transaction-id
//     look in one batch of prepared statements, then COMMIT;
//   - wire: the same without the look, which pgxact needs to resolve a lost COMMIT;
//   - pgxact: tx.Run of tx.Exec;
//   - pgxact-fused: the same with FuseCommit, one round trip.
//
// Run it with, in bench/: go test -run '^$' -bench SingleShapes -benchtime 30x
func BenchmarkSingleShapes(b *testing.B) {
	ctx := context.Background()
	config := pgtest.Config(b)
	config.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := workload.Single().Setup(ctx, pool); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	id := func() int64 { return 1 + r.Int64N(100_000) }
	wire := newHandWire(b, pool)
	ways := []struct {
		name string
		run  func() error
	}{
		{"pgx", func() error {
			return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(q pgx.Tx) error {
				_, err := q.Exec(ctx, shapesUpdate, id())
				return err
			})
		}},
		{"wire-look", func() error { return wire.run(ctx, id(), true) }},
		{"wire", func() error { return wire.run(ctx, id(), false) }},
		{"pgxact", func() error { _, err := tx.Run(ctx, pool, tx.Exec(shapesUpdate, id())); return err }},
		{"pgxact-fused", func() error {
			_, err := tx.Run(ctx, pool, tx.Exec(shapesUpdate, id()), tx.FuseCommit())
			return err
		}},
	}
	const block = 100
	spent := make([]time.Duration, len(ways))
	cpu := make([]time.Duration, len(ways))
	rounds := 0
	for b.Loop() {
		for k := range ways {
			i := (k + rounds) % len(ways)
			start, cpuStart := time.Now(), processCPU(b)
			for range block {
				if err := ways[i].run(); err != nil {
					b.Fatal(err)
				}
			}
			spent[i] += time.Since(start)
			cpu[i] += processCPU(b) - cpuStart
		}
		rounds++
	}
	for i, w := range ways {
		b.ReportMetric(float64(spent[i].Microseconds())/float64(block*rounds), w.name+"-µs/tx")
		b.ReportMetric(float64(cpu[i].Microseconds())/float64(block*rounds), w.name+"-client-cpu-µs/tx")
	}
}

// processCPU is the CPU time this process has used, user and system: the client's side of a transaction, the server
// being another process.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// handWire sends the single workload's transaction as pgxact's wire does, by hand: statements prepared once on the
// pool's only connection, then bound and executed by name.
type handWire struct {
	pool                      *pgxpool.Pool
	begin, update, look, done string
}

func newHandWire(b *testing.B, pool *pgxpool.Pool) *handWire {
	b.Helper()
	c, err := pool.Acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Release()
	w := &handWire{pool: pool, begin: "shapes_begin", update: "shapes_update", look: "shapes_look", done: "shapes_commit"}
	for name, sql := range map[string]string{
		w.begin:  "BEGIN ISOLATION LEVEL SERIALIZABLE",
		w.update: shapesUpdate,
		w.look:   "SELECT pg_current_xact_id_if_assigned()",
		w.done:   "COMMIT",
	} {
		if _, err := c.Conn().PgConn().Prepare(context.Background(), name, sql, nil); err != nil {
			b.Fatal(err)
		}
	}
	return w
}

func (w *handWire) run(ctx context.Context, id int64, look bool) error {
	c, err := w.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	pc := c.Conn().PgConn()
	var batch pgconn.Batch
	batch.ExecPrepared(w.begin, nil, nil, nil)
	batch.ExecPrepared(w.update, [][]byte{strconv.AppendInt(nil, id, 10)}, nil, nil)
	if look {
		batch.ExecPrepared(w.look, nil, nil, nil)
	}
	if _, err := pc.ExecBatch(ctx, &batch).ReadAll(); err != nil {
		return err
	}
	_, err = pc.ExecPrepared(ctx, w.done, nil, nil, nil).Close()
	return err
}
