package bench_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
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
	pool := onePool(b, workload.Single())
	r := rand.New(rand.NewPCG(1, 2))
	id := func() int64 { return 1 + r.Int64N(100_000) }
	wire := newHandWire(b, pool)
	ways := []shape{
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
	runShapes(b, pool, ways)
}

// onePool returns a pool of one connection to the test server, with w set up on it.
func onePool(b *testing.B, w workload.Workload) *pgxpool.Pool {
	b.Helper()
	config := pgtest.Config(b)
	config.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), config)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := w.Setup(context.Background(), pool); err != nil {
		b.Fatal(err)
	}
	return pool
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
	w := &handWire{pool: pool, begin: "shapes_begin", update: "shapes_update", look: "shapes_look", done: "shapes_commit"}
	prepare(b, pool, map[string]string{
		w.begin:  "BEGIN ISOLATION LEVEL SERIALIZABLE",
		w.update: shapesUpdate,
		w.look:   "SELECT pg_current_xact_id_if_assigned()",
		w.done:   "COMMIT",
	})
	return w
}

func (w *handWire) run(ctx context.Context, id int64, look bool) error {
	pc, release, err := acquire(ctx, w.pool)
	if err != nil {
		return err
	}
	defer release()
	batch := w.statements(id)
	if look {
		batch.ExecPrepared(w.look, nil, nil, nil)
	}
	if _, err := pc.ExecBatch(ctx, batch).ReadAll(); err != nil {
		return err
	}
	_, err = pc.ExecPrepared(ctx, w.done, nil, nil, nil).Close()
	return err
}

// statements is the transaction's first round trip without the look: BEGIN and the UPDATE of row id.
func (w *handWire) statements(id int64) *pgconn.Batch {
	batch := &pgconn.Batch{}
	batch.ExecPrepared(w.begin, nil, nil, nil)
	batch.ExecPrepared(w.update, [][]byte{strconv.AppendInt(nil, id, 10)}, nil, nil)
	return batch
}

// shape is one way of running a workload's transaction.
type shape struct {
	name string
	run  func() error
}

// runShapes runs blocks of 100 transactions in each way per iteration, in an order rotated from one iteration to the
// next, and reports each way's µs per transaction, the client's CPU and heap allocations per transaction, and the server's CPU: the CPU time
// of the backend serving the pool's only connection, read from /proc/<pid>/schedstat. The server's figure is left
// out where that file cannot be read (a DATABASE_URL on another machine).
func runShapes(b *testing.B, pool *pgxpool.Pool, ways []shape) {
	b.Helper()
	backend := backendCPU(b, pool)
	const block = 100
	spent := make([]time.Duration, len(ways))
	client := make([]time.Duration, len(ways))
	server := make([]time.Duration, len(ways))
	allocs := make([]uint64, len(ways))
	rounds := 0
	for b.Loop() {
		for k := range ways {
			i := (k + rounds) % len(ways)
			mallocs := heapAllocs()
			start, clientStart, serverStart := time.Now(), processCPU(b), backend()
			for range block {
				if err := ways[i].run(); err != nil {
					b.Fatal(err)
				}
			}
			spent[i] += time.Since(start)
			client[i] += processCPU(b) - clientStart
			server[i] += backend() - serverStart
			allocs[i] += heapAllocs() - mallocs
		}
		rounds++
	}
	n := float64(block * rounds)
	for i, w := range ways {
		b.ReportMetric(float64(spent[i].Microseconds())/n, w.name+"-µs/tx")
		b.ReportMetric(float64(client[i].Microseconds())/n, w.name+"-client-cpu-µs/tx")
		b.ReportMetric(float64(allocs[i])/n, w.name+"-allocs/tx")
		if server[i] > 0 {
			b.ReportMetric(float64(server[i].Microseconds())/n, w.name+"-server-cpu-µs/tx")
		}
	}
}

// heapAllocs is the number of heap objects allocated so far.
func heapAllocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// backendCPU returns a function reading the CPU time of the backend behind the pool's only connection, or zero
// where /proc does not show it.
func backendCPU(b *testing.B, pool *pgxpool.Pool) func() time.Duration {
	b.Helper()
	var pid int
	if err := pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	path := "/proc/" + strconv.Itoa(pid) + "/schedstat"
	return func() time.Duration {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		ns, err := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return time.Duration(ns)
	}
}

// BenchmarkChainShapes does for the chain workload (k = 5: four dependent SELECTs, then the UPDATE) what
// BenchmarkSingleShapes does for single:
//
//   - pgx: pgx.BeginTxFunc around the workload's pgx code, seven round trips;
//   - wire-look: pgxact's messages by hand: BEGIN with the first SELECT, three SELECTs, the UPDATE with the
//     transaction-id look, then COMMIT, six round trips;
//   - wire: the same without the look;
//   - pgxact: tx.Run of the workload's Tx.
//
// Run it with, in bench/: go test -run '^$' -bench ChainShapes -benchtime 30x
func BenchmarkChainShapes(b *testing.B) {
	ctx := context.Background()
	w := workload.Chain(5)
	pool := onePool(b, w)
	r := rand.New(rand.NewPCG(1, 2))
	wire := newHandChain(b, pool)
	ways := []shape{
		{"pgx", func() error {
			body := w.Body(r)
			return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(q pgx.Tx) error {
				return body(ctx, q)
			})
		}},
		{"wire-look", func() error { return wire.run(ctx, r.Int64N(10_000), true) }},
		{"wire", func() error { return wire.run(ctx, r.Int64N(10_000), false) }},
		{"pgxact", func() error { _, err := tx.Run(ctx, pool, w.Tx(r)); return err }},
	}
	runShapes(b, pool, ways)
}

// BenchmarkTPCBShapes compares pgbench's tpcb-like transaction (scale 10, READ COMMITTED) on one connection, where
// no row is contended: pgx sends BEGIN, the five statements and COMMIT one round trip each, as pgbench's builtin
// script does; pgxact sends the five statements with BEGIN in one round trip, then COMMIT. The server's CPU per
// transaction is what pgxact's two round trips save it.
//
// Run it with, in bench/: go test -run '^$' -bench TPCBShapes -benchtime 30x
func BenchmarkTPCBShapes(b *testing.B) {
	ctx := context.Background()
	w := workload.TPCB(10)
	pool := onePool(b, w)
	r := rand.New(rand.NewPCG(1, 2))
	ways := []shape{
		{"pgx", func() error {
			body := w.Body(r)
			return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(q pgx.Tx) error {
				return body(ctx, q)
			})
		}},
		{"pgxact", func() error {
			_, err := tx.Run(ctx, pool, w.Tx(r), tx.WithIsolation(pgx.ReadCommitted))
			return err
		}},
	}
	runShapes(b, pool, ways)
}

// handChain sends the chain workload's transaction as pgxact's wire does, by hand.
type handChain struct {
	pool                           *pgxpool.Pool
	begin, hop, update, look, done string
}

func newHandChain(b *testing.B, pool *pgxpool.Pool) *handChain {
	b.Helper()
	w := &handChain{pool: pool, begin: "chain_begin", hop: "chain_hop", update: "chain_update", look: "chain_look",
		done: "chain_commit"}
	prepare(b, pool, map[string]string{
		w.begin:  "BEGIN ISOLATION LEVEL SERIALIZABLE",
		w.hop:    "SELECT next FROM bench_links WHERE id = $1",
		w.update: "UPDATE bench_links SET hits = hits + 1 WHERE id = $1 RETURNING next",
		w.look:   "SELECT pg_current_xact_id_if_assigned()",
		w.done:   "COMMIT",
	})
	return w
}

// prepare prepares each named statement on the pool's only connection.
func prepare(b *testing.B, pool *pgxpool.Pool, stmts map[string]string) {
	b.Helper()
	pc, release, err := acquire(context.Background(), pool)
	if err != nil {
		b.Fatal(err)
	}
	defer release()
	for name, sql := range stmts {
		if _, err := pc.Prepare(context.Background(), name, sql, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func (w *handChain) run(ctx context.Context, id int64, look bool) error {
	pc, release, err := acquire(ctx, w.pool)
	if err != nil {
		return err
	}
	defer release()
	var first pgconn.Batch
	first.ExecPrepared(w.begin, nil, nil, nil)
	first.ExecPrepared(w.hop, [][]byte{strconv.AppendInt(nil, id, 10)}, nil, nil)
	res, err := pc.ExecBatch(ctx, &first).ReadAll()
	if err == nil {
		id, err = lastValue(res)
	}
	for range 3 {
		if err != nil {
			break
		}
		res := pc.ExecPrepared(ctx, w.hop, [][]byte{strconv.AppendInt(nil, id, 10)}, nil, nil).Read()
		id, err = lastValue([]*pgconn.Result{res})
	}
	if err == nil {
		var last pgconn.Batch
		last.ExecPrepared(w.update, [][]byte{strconv.AppendInt(nil, id, 10)}, nil, nil)
		if look {
			last.ExecPrepared(w.look, nil, nil, nil)
		}
		res, err = pc.ExecBatch(ctx, &last).ReadAll()
		if err == nil && look {
			res = res[:1]
		}
		if err == nil {
			_, err = lastValue(res)
		}
	}
	if err != nil {
		_, _ = pc.Exec(ctx, "ROLLBACK").ReadAll()
		return err
	}
	_, err = pc.ExecPrepared(ctx, w.done, nil, nil, nil).Close()
	return err
}

// lastValue is the one value of the last result's one row, as an integer.
func lastValue(res []*pgconn.Result) (int64, error) {
	r := res[len(res)-1]
	if r.Err != nil {
		return 0, r.Err
	}
	if len(r.Rows) != 1 || len(r.Rows[0]) != 1 {
		return 0, errors.New("not one value")
	}
	return strconv.ParseInt(string(r.Rows[0][0]), 10, 64)
}

// acquire lends the pool's connection as a pgconn, and the function that gives it back.
func acquire(ctx context.Context, pool *pgxpool.Pool) (*pgconn.PgConn, func(), error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.Conn().PgConn(), c.Release, nil
}
