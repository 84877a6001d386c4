package jepsen_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/jepsen"
	"github.com/pgxact/pgxact/tx"
)

// listRecorder collects a list-append history from concurrent clients.
type listRecorder struct {
	mu          sync.Mutex
	txns        []jepsen.ListTxn
	errs        *tally
	lostResults int // successful runs that did not yield the transaction's result
}

func (r *listRecorder) record(ops []jepsen.Op, done []jepsen.Op, err error) {
	r.errs.add(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil && len(done) == len(ops):
		ops = done
	case err == nil:
		// Run succeeded without its result: keep the appends, which committed, and drop the unknown reads.
		r.lostResults++
		ops = appendsOf(ops)
	}
	r.txns = append(r.txns, jepsen.ListTxn{Ops: ops, Outcome: jepsen.OutcomeOf(err)})
}

func appendsOf(ops []jepsen.Op) []jepsen.Op {
	var out []jepsen.Op
	for _, o := range ops {
		if o.Append {
			out = append(out, o)
		}
	}
	return out
}

func (r *listRecorder) history() []jepsen.ListTxn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]jepsen.ListTxn(nil), r.txns...)
}

// listOps draws a transaction over a small window of keys that moves on every `every` transactions, so lists stay
// short while every key sees heavy contention: reads of `reads` distinct keys, then appends to `appends` of them.
func listOps(rng *rand.Rand, seq, window, every, reads, appends int) []jepsen.Op {
	base := (seq / every) * window / 2 // consecutive windows overlap by half
	keys := rng.Perm(window)
	var ops []jepsen.Op
	for _, k := range keys[:reads] {
		ops = append(ops, jepsen.Op{Key: base + k})
	}
	for j, k := range rng.Perm(reads)[:appends] {
		ops = append(ops, jepsen.Op{Append: true, Key: base + keys[k], Value: seq*8 + j})
	}
	return ops
}

// runLists runs total list-append transactions from clients and returns the checked history.
func runLists(ctx context.Context, t *testing.T, d db, pool *pgxpool.Pool, clients, total int, gen func(*rand.Rand, int) []jepsen.Op, opts ...tx.Option) (jepsen.ListReport, *listRecorder, int) {
	t.Helper()
	rec := &listRecorder{errs: newTally()}
	ran := jepsen.RunWorkers(ctx, clients, total, func(ctx context.Context, seq int) {
		rng := rand.New(rand.NewPCG(5, uint64(seq)))
		ops := gen(rng, seq)
		if rng.IntN(100) < 3 { // a deadline that may strike anywhere, COMMIT included
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.Int64N(int64(100*time.Millisecond))))
			defer cancel()
		}
		done, err := tx.Run(ctx, pool, jepsen.ListTx(ops), opts...)
		rec.record(ops, done, err)
	})
	final, err := jepsen.ReadLists(context.WithoutCancel(ctx), d.admin)
	require.NoError(t, err)
	return jepsen.CheckList(rec.history(), final), rec, ran
}

func TestListAppendSerializableUnderFaults(t *testing.T) {
	sc := suiteScale()
	d := newDB(t)
	ctx := testCtx(t, sc.limit+2*time.Minute)
	require.NoError(t, jepsen.ListSetup(ctx, d.admin))
	before := jepsen.SnapshotGoroutines()

	proxy := d.startProxy(t)
	cutter := jepsen.NewCutter(0.03, 0.001, sc.cuts, 6)
	proxy.SetRule(cutter.Rule())
	pool := newPool(t, d.poolConfig(t, 8, proxy))
	killer, err := pgx.Connect(ctx, d.connString)
	require.NoError(t, err)

	loadCtx, stopLoad := context.WithTimeout(ctx, sc.limit)
	defer stopLoad()
	var kills int
	var killErr error
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		kills, killErr = jepsen.Terminator{MinPause: 10 * time.Millisecond, MaxPause: 80 * time.Millisecond, Max: sc.kills, Seed: 7, App: loadApp}.Run(loadCtx, killer)
	}()
	started := time.Now()
	gen := func(rng *rand.Rand, seq int) []jepsen.Op { return listOps(rng, seq, 8, 400, 1+rng.IntN(3), 1) }
	report, rec, ran := runLists(loadCtx, t, d, pool, sc.workers, sc.listOps, gen, tx.WithPolicy(suitePolicy()))
	elapsed := time.Since(started)
	stopLoad()
	<-killerDone
	require.NoError(t, killErr)
	require.NoError(t, killer.Close(ctx))
	proxy.SetRule(nil)

	t.Logf("list-append SERIALIZABLE (%s scale): %d txns by %d clients in %v (%.0f/s)\n%v\nfaults: kills %d, cuts %+v, pool waits %d\noutcomes:%v",
		sc.name, ran, sc.workers, elapsed.Round(time.Millisecond), float64(ran)/elapsed.Seconds(), report, kills, cutter.Counts(),
		pool.Stat().EmptyAcquireCount(), rec.errs)
	require.Equal(t, sc.listOps, ran, "the load phase hit its time limit of %v", sc.limit)
	require.Zero(t, rec.lostResults, "successful runs that lost their result")
	require.Empty(t, report.Counts, "anomalies at SERIALIZABLE: %v", report)
	require.Zero(t, rec.errs.get("other"), "errors of no expected kind:%v", rec.errs)
	require.Positive(t, report.Edges["rw"], "the workload should produce anti-dependencies for the checker to weigh")

	d.requireQuiescent(t, pool)
	pool.Close()
	require.NoError(t, proxy.Close())
	requireNoLeaks(t, before)
}

// TestListAppendRepeatableReadControl shows that the checker finds what it looks for: at REPEATABLE READ (snapshot
// isolation) write-skew shaped transactions — read two keys, append to one — form G2-item cycles.
func TestListAppendRepeatableReadControl(t *testing.T) {
	sc := suiteScale()
	d := newDB(t)
	ctx := testCtx(t, sc.limit+time.Minute)
	require.NoError(t, jepsen.ListSetup(ctx, d.admin))
	pool := newPool(t, d.poolConfig(t, 16, nil))

	round := 0
	report := runControl(ctx, t, sc, func(ctx context.Context) jepsen.ListReport {
		round++
		gen := func(rng *rand.Rand, seq int) []jepsen.Op {
			return listOps(rng, seq+round*200, 2, 100, 2, 1)
		}
		r, _, _ := runLists(ctx, t, d, pool, sc.workers, 200, gen, tx.WithIsolation(pgx.RepeatableRead), tx.WithPolicy(suitePolicy()))
		return r
	}, func(r jepsen.ListReport) bool { return r.Found(jepsen.KindG2Item) > 0 })
	t.Logf("list-append control at REPEATABLE READ: %v", report)
	require.Positive(t, report.Found(jepsen.KindG2Item), "write skew at REPEATABLE READ should show as G2-item")
}
