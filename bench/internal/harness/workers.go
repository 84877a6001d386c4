package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/impl"
	"github.com/pgxact/pgxact/bench/internal/workload"
)

// txGrace bounds a transaction that is still running when its slice ends; runners retry for at most about 10s.
const txGrace = 30 * time.Second

// tally is what the workers of one slice did: the transactions that returned within its window, and apart from
// them the drain, the transactions still in flight when the window closed.
//
// The drain is left out of the measure because it runs below the worker count, for longer the longer an
// implementation's retry tails are: counted against the slice's wall time, it would measure such implementations
// partly at lower concurrency (crdb's wall time was 67 % over its 2 s slices at 32 workers on transfer).
type tally struct {
	elapsed    time.Duration // the window
	drain      time.Duration // from the window's end to the last worker's return
	drained    int64         // transactions that returned after the window, whatever their outcome
	allCommits int64         // commits, in the drain too: what the workload's check counts
	commits    int64
	attempts   int64
	errors     int64
	kinds      map[string]int64
	latencies  []time.Duration
	violations []error
}

func (t *tally) add(o *tally) {
	t.drained += o.drained
	t.allCommits += o.allCommits
	t.commits += o.commits
	t.attempts += o.attempts
	t.errors += o.errors
	for k, n := range o.kinds {
		t.kinds[k] += n
	}
	t.latencies = append(t.latencies, o.latencies...)
	t.violations = append(t.violations, o.violations...)
}

func (t *tally) addTo(r *Result) {
	r.Rounds = append(r.Rounds, Round{Elapsed: t.elapsed, Commits: t.commits, Drained: t.drained})
	r.Elapsed += t.elapsed
	r.Drain += t.drain
	r.Drained += t.drained
	r.Commits += t.commits
	r.Attempts += t.attempts
	r.Errors += t.errors
	for k, n := range t.kinds {
		r.ErrorKinds[k] += n
	}
	r.Latencies = append(r.Latencies, t.latencies...)
	for _, v := range t.violations {
		r.violate(v)
	}
}

// runWorkers runs workers goroutines, each with its own Runner, starting transactions until d has passed.
func runWorkers(ctx context.Context, db *pgxpool.Pool, w workload.Workload, im impl.Impl, workers int,
	d time.Duration, seed uint64) (*tally, error) {
	txCtx, cancel := context.WithTimeout(ctx, d+txGrace)
	defer cancel()
	total := &tally{kinds: map[string]int64{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := range workers {
		run := im.New(db, w)
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() {
			t := work(txCtx, run, r, deadline)
			mu.Lock()
			defer mu.Unlock()
			total.add(t)
		})
	}
	wg.Wait()
	total.elapsed, total.drain = d, max(time.Since(deadline), 0)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	return total, nil
}

// work is one worker's loop.
func work(ctx context.Context, run impl.Runner, r *rand.Rand, deadline time.Time) *tally {
	t := &tally{kinds: map[string]int64{}}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		began := time.Now()
		n, err := run(ctx, r)
		done := time.Now()
		if err == nil {
			t.allCommits++
		} else if errors.Is(err, workload.ErrInvariant) {
			t.violations = append(t.violations, err) // in the drain too: a violation is never left out
		}
		// The loop ends at the first return at or after the deadline: each worker's last transaction is drained.
		if !done.Before(deadline) {
			t.drained++
			continue
		}
		t.attempts += int64(n)
		if err != nil {
			t.errors++
			t.kinds[errorKind(err)]++
			continue
		}
		t.commits++
		t.latencies = append(t.latencies, done.Sub(began))
	}
	return t
}
