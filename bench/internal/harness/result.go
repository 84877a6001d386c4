package harness

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/bench/internal/impl"
	"github.com/pgxact/pgxact/tx"
)

// Result is what one implementation did in one cell, summed over its slices.
type Result struct {
	Workload string
	Impl     string
	Workers  int

	// The figures below count the transactions that returned within the slices' windows (see Drained).
	Elapsed     time.Duration    // the slices' length: the time in which transactions were started
	Commits     int64            // transactions that committed
	Attempts    int64            // attempts made, by committed and failed transactions alike
	Errors      int64            // transactions that failed for good
	ErrorKinds  map[string]int64 // Errors by kind (SQLSTATE, or a short description)
	Latencies   []time.Duration  // of committed transactions, retries included; sorted
	InvariantOK bool
	Violation   string           // the first invariant violation, if any
	Counts      map[string]int64 // what a workload.Counter counted in its slices; nil for other workloads
	Rounds      []Round          // one per slice, in the order they ran (see Round)
	// Drained counts the transactions that returned after their slice's window, at most one per worker and slice,
	// and Drain the time from the windows' end to their last return: they are left out of every figure above.
	Drained int64
	Drain   time.Duration
}

// Round is what one slice of a Result measured. The implementations of a cell run their slices of a round one
// after another, so round i of each saw about the same machine, and the spread of a ratio over the rounds shows how
// much of it is noise.
type Round struct {
	Elapsed time.Duration
	Commits int64
	Drained int64
}

// CommitsPerSec is the slice's goodput.
func (r Round) CommitsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Commits) / r.Elapsed.Seconds()
}

// CommitsPerSec is the goodput.
func (r Result) CommitsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Commits) / r.Elapsed.Seconds()
}

// AttemptsPerCommit is 0 when nothing committed.
func (r Result) AttemptsPerCommit() float64 {
	if r.Commits == 0 {
		return 0
	}
	return float64(r.Attempts) / float64(r.Commits)
}

// Percentile returns the p-th percentile (0 < p <= 100) of the commit latencies, by the nearest-rank method; 0 when
// nothing committed.
func (r Result) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(p/100*float64(n)+0.999999) - 1
	return r.Latencies[min(max(rank, 0), n-1)]
}

// TopErrorKinds lists error kinds by decreasing count, as "kind×count".
func (r Result) TopErrorKinds() []string {
	kinds := slices.SortedFunc(maps.Keys(r.ErrorKinds), func(a, b string) int {
		return int(r.ErrorKinds[b] - r.ErrorKinds[a])
	})
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = fmt.Sprintf("%s×%d", k, r.ErrorKinds[k])
	}
	return out
}

// errorKind names an error for the error histogram: its SQLSTATE, marked when a retry loop gave up on it or when
// the implementation hid it, or else a short description.
func errorKind(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return "other: " + truncate(err.Error(), 60)
	}
	var retryErr *tx.RetryError
	switch {
	case errors.Is(err, impl.ErrCommitHidden):
		return pgErr.Code + " at COMMIT, hidden by ExecuteTx"
	case errors.As(err, &retryErr):
		return pgErr.Code + " (retries exhausted)"
	}
	return pgErr.Code
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
