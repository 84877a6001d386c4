package txtest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pgxact/pgxact/tx"
)

// Counts are named counts of side effects: messages sent, calls made, rows written. See RequireRetrySafe.
type Counts map[string]int

// RequireRetrySafe checks that work keeps its side effects retry-safe, and fails t at once if it does not.
//
// It runs work on db twice with tx.Run and opts. The first run is clean: one attempt, which commits. The second run's
// first attempt fails at COMMIT with a real serialization failure (see AtCommit), so the whole body runs, is rolled
// back, and runs again before committing. observe is called before and after each run; every count must change by
// the same amount in both runs. A count that grew more in the second run escaped the rolled-back attempt: it belongs
// in tx.AfterCommit, or outside the transaction. Counts of database rows are safe by construction — the rollback
// undoes them — so observe is for what the database cannot undo.
//
// work must be able to commit twice in a row on db, as it would in production (use generated keys, not fixed ones),
// and it must send at least one statement, or there is no COMMIT to fail. RequireRetrySafe also fails t if the clean
// run needed a retry (run it on a quiet database) or if either run fails.
//
// The runs retry under a Policy of their own unless opts give tx.WithPolicy. Under retry.Default() the retried run
// would depend on what earlier tests of the binary left in its process-wide budget, and could give up at the injected
// failure (see Policy).
func RequireRetrySafe[T any](t testing.TB, db tx.DB, work tx.Tx[T], observe func() Counts, opts ...tx.Option) {
	t.Helper()
	if observe == nil {
		t.Fatalf("txtest: RequireRetrySafe with a nil observe function: it must count the side effects to compare")
	}
	// First, so that a tx.WithPolicy in the caller's opts, applied after it, wins.
	opts = append([]tx.Option{tx.WithPolicy(Policy())}, opts...)
	clean := runObserved(t, Inject(db, FailFirst(0)), work, observe, opts)
	faulty := Inject(db, FailFirst(1), AtCommit())
	retried := runObserved(t, faulty, work, observe, opts)
	switch {
	case faulty.Injected() != 1:
		t.Fatalf("txtest: RequireRetrySafe could not inject a failure")
	case faulty.Attempts() != 2:
		t.Fatalf("txtest: the run with an injected failure made %d attempts, want 2: does work send any statement?",
			faulty.Attempts())
	}
	if diff := compareDeltas(clean, retried); diff != "" {
		t.Fatalf("txtest: side effects escaped a rolled-back attempt (change without retry / with one retry):\n%s", diff)
	}
}

// delta is the change observe saw across one run, per name.
type delta map[string]int

func runObserved[T any](t testing.TB, db *Injector, work tx.Tx[T], observe func() Counts, opts []tx.Option) delta {
	t.Helper()
	before := observe()
	if _, err := tx.Run(t.Context(), db, work, opts...); err != nil {
		t.Fatalf("txtest: RequireRetrySafe: run failed: %v", err)
	}
	after := observe()
	if db.Injected() == 0 && db.Attempts() != 1 {
		t.Fatalf("txtest: RequireRetrySafe: the clean run made %d attempts, want 1", db.Attempts())
	}
	d := delta{}
	for _, counts := range []Counts{before, after} { // a name may appear on one side only
		for name := range counts {
			d[name] = after[name] - before[name]
		}
	}
	return d
}

// compareDeltas lists, one name a line and in name order, every count whose change differs between the runs.
func compareDeltas(clean, retried delta) string {
	all := maps.Clone(clean)
	maps.Copy(all, retried)
	names := slices.Sorted(maps.Keys(all))
	var b strings.Builder
	for _, name := range names {
		if clean[name] != retried[name] {
			fmt.Fprintf(&b, "\t%s: %+d / %+d\n", name, clean[name], retried[name])
		}
	}
	return b.String()
}
