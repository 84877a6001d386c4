package jepsen_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/jepsen"
	"github.com/pgxact/pgxact/tx"
)

// bankRecorder collects a bank history from concurrent clients.
type bankRecorder struct {
	mu        sync.Mutex
	transfers []jepsen.TransferResult
	reads     [][]int64
	errs      *tally
	attempts  map[int64]*attemptLog // by transfer id, to explain anomalies
	odd       []string              // reads of the wrong shape, with their attempts
}

func newBankRecorder() *bankRecorder {
	return &bankRecorder{errs: newTally(), attempts: map[int64]*attemptLog{}}
}

func (r *bankRecorder) transfer(t jepsen.Transfer, err error, log *attemptLog) {
	r.errs.add(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transfers = append(r.transfers, jepsen.TransferResult{Transfer: t, Outcome: jepsen.OutcomeOf(err)})
	if log != nil {
		r.attempts[t.ID] = log
	}
}

func (r *bankRecorder) read(balances []int64, err error) {
	r.errs.add(err)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, balances)
}

// explain describes the attempts of the transfers a report suspects.
func (r *bankRecorder) explain(ids []int64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for i, id := range ids {
		if i == 10 {
			break
		}
		fmt.Fprintf(&b, "\n  transfer %d:%v", id, r.attempts[id])
	}
	for _, o := range r.odd[:min(len(r.odd), 10)] {
		b.WriteString("\n  " + o)
	}
	return b.String()
}

// attemptStats counts the attempts of all transfers, the transfers that needed more than one, and the attempts
// whose COMMIT answer was lost and that pg_xact_status showed aborted, so that they were retried.
func (r *bankRecorder) attemptStats() (attempts, retried, resolvedAborted int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.attempts {
		attempts += len(l.attempts)
		if len(l.attempts) > 1 {
			retried++
		}
		for _, a := range l.attempts {
			if a.Err != nil && strings.Contains(a.Err.Error(), "aborted: ") && strings.Contains(a.Err.Error(), "tx: commit: transaction ") {
				resolvedAborted++
			}
		}
	}
	return attempts, retried, resolvedAborted
}

// attemptLog records the attempts of one Run.
type attemptLog struct {
	tx.NopObserver
	attempts []tx.AttemptInfo
}

func (l *attemptLog) EndAttempt(_ context.Context, a tx.AttemptInfo) {
	l.attempts = append(l.attempts, a)
}

func (l *attemptLog) String() string {
	if l == nil {
		return " (no log)"
	}
	var b strings.Builder
	for _, a := range l.attempts {
		fmt.Fprintf(&b, "\n    attempt %d (%v, class %v, retry %v): %v", a.Attempt, a.Duration.Round(time.Microsecond), a.Class, a.Retry, a.Err)
	}
	return b.String()
}

func (r *bankRecorder) history(b jepsen.Bank, final jepsen.BankState) jepsen.BankHistory {
	r.mu.Lock()
	defer r.mu.Unlock()
	return jepsen.BankHistory{Bank: b, Transfers: r.transfers, Reads: r.reads, Final: final}
}

// randomTransfer draws a transfer between two distinct accounts; amounts sometimes exceed what a source holds.
func randomTransfer(rng *rand.Rand, b jepsen.Bank, id int64) jepsen.Transfer {
	from := 1 + rng.IntN(b.Accounts)
	to := 1 + rng.IntN(b.Accounts-1)
	if to >= from {
		to++
	}
	return jepsen.Transfer{ID: id, From: from, To: to, Amount: 1 + rng.Int64N(b.Initial/4)}
}

// injected counts the faults a run's clients chose for themselves.
type injected struct {
	deadlines, cancels, lockTimeouts, stmtTimeouts atomic.Int64
}

// chaos decorates one operation with a fault, now and then: a context deadline of up to 150ms (which mostly
// strikes while the client waits for the pool); a cancellation up to 3ms after the attempt starts its work (which
// strikes a statement or COMMIT); a 5ms lock_timeout (fires when a concurrent transfer holds the row); or a
// statement_timeout that a pg_sleep is sure to exceed.
func (in *injected) chaos(ctx context.Context, rng *rand.Rand, t tx.Tx[struct{}]) (context.Context, context.CancelFunc, tx.Tx[struct{}]) {
	switch n := rng.IntN(100); {
	case n < 3:
		in.deadlines.Add(1)
		ctx, cancel := context.WithTimeout(ctx, time.Duration(rng.Int64N(int64(150*time.Millisecond))))
		return ctx, cancel, t
	case n < 6:
		in.cancels.Add(1)
		ctx, cancel := context.WithCancel(ctx)
		after := time.Duration(rng.Int64N(int64(3 * time.Millisecond)))
		// Arming the timer is a side effect in the body, run again by every attempt: harmless, cancel is idempotent.
		arm := tx.Map(tx.Pure(after), func(d time.Duration) struct{} {
			time.AfterFunc(d, cancel)
			return struct{}{}
		})
		return ctx, cancel, tx.Then(arm, t)
	case n < 10:
		in.lockTimeouts.Add(1)
		return ctx, func() {}, tx.Then(tx.SetLocal("lock_timeout", "5ms"), t)
	case n < 11:
		in.stmtTimeouts.Add(1)
		sleepy := tx.Bind(tx.SetLocal("statement_timeout", "1ms"), func(struct{}) tx.Tx[struct{}] {
			return tx.Then(tx.Exec("SELECT pg_sleep(0.05)"), t)
		})
		return ctx, func() {}, sleepy
	default:
		return ctx, func() {}, t
	}
}

func TestBankSerializableUnderFaults(t *testing.T) {
	sc := suiteScale()
	d := newDB(t)
	ctx := testCtx(t, sc.limit+2*time.Minute)
	bank := jepsen.Bank{Accounts: 32, Initial: 1000}
	require.NoError(t, bank.Setup(ctx, d.admin))
	before := jepsen.SnapshotGoroutines()

	proxy := d.startProxy(t)
	cutter := jepsen.NewCutter(0.03, 0.001, sc.cuts, 1)
	proxy.SetRule(cutter.Rule())
	pool := newPool(t, d.poolConfig(t, 8, proxy)) // 64 clients, 8 connections: clients queue for the pool
	killer, err := pgx.Connect(ctx, d.connString)
	require.NoError(t, err)

	loadCtx, stopLoad := context.WithTimeout(ctx, sc.limit)
	defer stopLoad()
	var kills int
	var killErr error
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		kills, killErr = jepsen.Terminator{MinPause: 10 * time.Millisecond, MaxPause: 80 * time.Millisecond, Max: sc.kills, Seed: 2, App: loadApp}.Run(loadCtx, killer)
	}()

	rec := newBankRecorder()
	var in injected
	policy := tx.WithPolicy(suitePolicy())
	started := time.Now()
	ran := jepsen.RunWorkers(loadCtx, sc.workers, sc.bankOps, func(ctx context.Context, seq int) {
		rng := rand.New(rand.NewPCG(3, uint64(seq)))
		if rng.IntN(5) == 0 {
			var opts []tx.Option
			if rng.IntN(2) == 0 {
				opts = append(opts, tx.ReadOnly())
			}
			log := &attemptLog{}
			balances, err := tx.Run(ctx, pool, bank.ReadTx(), append(opts, policy, tx.WithObserver(log))...)
			rec.read(balances, err)
			if err == nil && len(balances) != bank.Accounts {
				rec.mu.Lock()
				rec.odd = append(rec.odd, fmt.Sprintf("read %v (read only %v):%v", balances, len(opts) > 0, log))
				rec.mu.Unlock()
			}
			return
		}
		tr := randomTransfer(rng, bank, int64(seq))
		ctx, cancel, work := in.chaos(ctx, rng, bank.TransferTx(tr))
		defer cancel()
		log := &attemptLog{}
		_, err := tx.Run(ctx, pool, work, policy, tx.WithObserver(log))
		rec.transfer(tr, err, log)
	})
	elapsed := time.Since(started)
	stopLoad()
	<-killerDone
	require.NoError(t, killErr)
	require.NoError(t, killer.Close(ctx))
	proxy.SetRule(nil)
	require.Equal(t, sc.bankOps, ran, "the load phase hit its time limit of %v", sc.limit)

	final, err := bank.ReadState(ctx, d.admin)
	require.NoError(t, err)
	report := jepsen.CheckBank(rec.history(bank, final))
	cuts := cutter.Counts()
	attempts, retried, resolvedAborted := rec.attemptStats()
	t.Logf("bank (%s scale): %d ops by %d clients on %d connections in %v (%.0f/s); %d attempts, %d retried transfers, "+
		"%d commits resolved as aborted and retried\n%v\nfaults: kills %d, cuts %+v, "+
		"deadlines %d, cancellations %d, lock_timeout %d, statement_timeout %d, pool waits %d\noutcomes:%v",
		sc.name, ran, sc.workers, pool.Config().MaxConns, elapsed.Round(time.Millisecond), float64(ran)/elapsed.Seconds(),
		attempts, retried, resolvedAborted, report, kills, cuts, in.deadlines.Load(), in.cancels.Load(), in.lockTimeouts.Load(), in.stmtTimeouts.Load(),
		pool.Stat().EmptyAcquireCount(), rec.errs)
	require.Zero(t, report.Anomalies(), "%v%s", report, rec.explain(report.Suspects))
	require.Zero(t, rec.errs.get("other"), "errors of no expected kind:%v", rec.errs)
	require.Positive(t, report.Acknowledged)
	require.Positive(t, kills)
	require.Positive(t, cuts.CommitAfter)

	d.requireQuiescent(t, pool)
	pool.Close()
	require.NoError(t, proxy.Close())
	requireNoLeaks(t, before)
}

// TestBankReadCommittedControl shows that the checker catches what it is for: the same transfers written as
// read-modify-write with plain pgx at READ COMMITTED lose updates, and the totals stop adding up.
func TestBankReadCommittedControl(t *testing.T) {
	sc := suiteScale()
	d := newDB(t)
	ctx := testCtx(t, sc.limit+time.Minute)
	bank := jepsen.Bank{Accounts: 4, Initial: 1000}
	require.NoError(t, bank.Setup(ctx, d.admin))
	pool := newPool(t, d.poolConfig(t, 16, nil))

	rec := newBankRecorder()
	report := runControl(ctx, t, sc, func(ctx context.Context) jepsen.BankReport {
		jepsen.RunWorkers(ctx, sc.workers, 200, func(ctx context.Context, seq int) {
			rng := rand.New(rand.NewPCG(4, uint64(seq)))
			if rng.IntN(5) == 0 {
				rec.read(bank.ReadPlain(ctx, pool, pgx.ReadCommitted))
				return
			}
			tr := randomTransfer(rng, bank, rng.Int64())
			rec.transfer(tr, bank.TransferRMW(ctx, pool, pgx.ReadCommitted, tr), nil)
		})
		final, err := bank.ReadState(ctx, d.admin)
		require.NoError(t, err)
		return jepsen.CheckBank(rec.history(bank, final))
	}, func(r jepsen.BankReport) bool { return r.WrongTotals > 0 })
	t.Logf("bank control at READ COMMITTED: %v", report)
	require.Positive(t, report.WrongTotals, "read-modify-write at READ COMMITTED should have lost updates")
	require.Positive(t, report.LedgerMismatch)
}

// runControl repeats a round of a negative control until found says its anomaly showed up, or the scale's bounds
// run out.
func runControl[R any](ctx context.Context, t *testing.T, sc scale, round func(context.Context) R, found func(R) bool) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, sc.limit)
	defer cancel()
	var r R
	for done := 0; done < sc.controlOps && ctx.Err() == nil; done += 200 {
		if r = round(ctx); found(r) {
			break
		}
	}
	return r
}
