package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/impl"
	"github.com/pgxact/pgxact/bench/internal/workload"
)

// Options configures a cell. The zero value is not usable: Workers and Duration must be positive.
type Options struct {
	Workers  int
	Duration time.Duration // per implementation, split over Rounds slices
	Rounds   int           // slices per implementation; 0 means 4
	Seed     uint64        // makes the transactions' random parameters reproducible
	// Progress, if not nil, is told before every slice.
	Progress func(Progress)
	// Extras run the workload beside the implementations, a slice of each in every round (see Extra).
	Extras []Extra
}

// Extra is a way of running a cell's workload that is not a Go implementation: the pgbench program, say. RunCell gives
// it a slice in every round, after the same Reset as the implementations' slices, and checks the workload's invariant
// against the commits it reports, so that its figures are measured on the same machine, minutes apart at most, as the
// implementations' are; measured once after them, they would carry the host's drift into every ratio.
type Extra struct {
	Name string
	// Slice runs the workload with workers clients for about d and returns what it did: Elapsed, Commits, Attempts,
	// Errors, ErrorKinds and Latencies are added up over the rounds; the rest is ignored.
	Slice func(ctx context.Context, workers int, d time.Duration) (Result, error)
}

// Progress says where a cell is.
type Progress struct {
	Impl          string
	Round, Rounds int
}

const defaultRounds = 4

// RunCell runs w with each of impls for o.Duration, interleaved in rounds, on db, and returns one Result per
// implementation in the order of impls. It returns an error only when the database fails outside the measured
// transactions (Reset, Check) or ctx ends; transaction failures are counted, not returned.
func RunCell(ctx context.Context, db *pgxpool.Pool, w workload.Workload, impls []impl.Impl, o Options) ([]Result, error) {
	if o.Workers < 1 || o.Duration <= 0 {
		return nil, fmt.Errorf("harness: need workers >= 1 and a positive duration, got %d and %v", o.Workers, o.Duration)
	}
	rounds := o.Rounds
	if rounds <= 0 {
		rounds = defaultRounds
	}
	results := make([]Result, len(impls)+len(o.Extras))
	for i := range results {
		name := ""
		if i < len(impls) {
			name = impls[i].Name
		} else {
			name = o.Extras[i-len(impls)].Name
		}
		results[i] = Result{Workload: w.Name(), Impl: name, Workers: o.Workers, ErrorKinds: map[string]int64{},
			InvariantOK: true}
	}
	sliceLen := o.Duration / time.Duration(rounds)
	if err := warmUp(ctx, db, w, impls, o.Workers, min(sliceLen, maxWarmUp), o.Seed); err != nil {
		return nil, err
	}
	for round := range rounds {
		for j := range results {
			i := (round + j) % len(results)
			if o.Progress != nil {
				o.Progress(Progress{Impl: results[i].Impl, Round: round + 1, Rounds: rounds})
			}
			var err error
			if i < len(impls) {
				seed := o.Seed ^ uint64(round)<<32 ^ uint64(i)<<48
				err = runSlice(ctx, db, w, impls[i], o.Workers, sliceLen, seed, &results[i])
			} else {
				err = runExtraSlice(ctx, db, w, o.Extras[i-len(impls)], o.Workers, sliceLen, &results[i])
			}
			if err != nil {
				return nil, err
			}
		}
	}
	for i := range results {
		slices.Sort(results[i].Latencies)
	}
	return results, nil
}

// maxWarmUp bounds the unmeasured slice each implementation runs before a cell.
const maxWarmUp = 100 * time.Millisecond

// warmUp opens the connections the cell's workers will use and runs each implementation for an unmeasured slice, so
// that no implementation pays for new server backends or empty statement caches in its measured time (otherwise the
// first one to run after the worker count grows would).
func warmUp(ctx context.Context, db *pgxpool.Pool, w workload.Workload, impls []impl.Impl, workers int,
	d time.Duration, seed uint64) error {
	if err := openConns(ctx, db, min(workers, int(db.Config().MaxConns))); err != nil {
		return err
	}
	for _, im := range impls {
		if err := w.Reset(ctx, db); err != nil {
			return err
		}
		if _, err := runWorkers(ctx, db, w, im, workers, d, ^seed); err != nil {
			return err
		}
	}
	return nil
}

// openConns makes the pool hold at least n open connections, by acquiring n at once.
func openConns(ctx context.Context, db *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := db.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("harness: warm-up: %w", err)
		}
		conns = append(conns, c)
	}
	return nil
}

// runSlice resets the tables, runs one slice and checks the invariant, adding to res.
func runSlice(ctx context.Context, db *pgxpool.Pool, w workload.Workload, im impl.Impl, workers int,
	d time.Duration, seed uint64, res *Result) error {
	if err := w.Reset(ctx, db); err != nil {
		return err
	}
	s, err := runWorkers(ctx, db, w, im, workers, d, seed)
	if err != nil {
		return err
	}
	s.addTo(res)
	if c, ok := w.(workload.Counter); ok {
		addCounts(res, c.Counts())
	}
	return check(ctx, db, w, s.allCommits, res)
}

// runExtraSlice resets the tables, runs one slice of x and checks the invariant against the commits x reports, adding
// to res.
func runExtraSlice(ctx context.Context, db *pgxpool.Pool, w workload.Workload, x Extra, workers int, d time.Duration,
	res *Result) error {
	if err := w.Reset(ctx, db); err != nil {
		return err
	}
	got, err := x.Slice(ctx, workers, d)
	if err != nil {
		return fmt.Errorf("harness: %s: %w", x.Name, err)
	}
	t := tally{elapsed: got.Elapsed, commits: got.Commits, attempts: got.Attempts, errors: got.Errors,
		kinds: got.ErrorKinds, latencies: got.Latencies}
	t.addTo(res)
	return check(ctx, db, w, got.Commits, res)
}

// check checks w's invariant against commits, recording a violation in res; other failures are returned.
func check(ctx context.Context, db *pgxpool.Pool, w workload.Workload, commits int64, res *Result) error {
	err := w.Check(ctx, db, commits)
	switch {
	case errors.Is(err, workload.ErrInvariant):
		res.violate(err)
	case err != nil:
		return err
	}
	return nil
}

func addCounts(r *Result, counts map[string]int64) {
	if r.Counts == nil {
		r.Counts = map[string]int64{}
	}
	for k, n := range counts {
		r.Counts[k] += n
	}
}

func (r *Result) violate(err error) {
	if r.InvariantOK {
		r.InvariantOK, r.Violation = false, err.Error()
	}
}
