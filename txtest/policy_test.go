package txtest_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

var errSerialization = &pgconn.PgError{Code: "40001"}

// drainDefaultBudget empties the process-wide budget of retry.Default(), as the injected failures of earlier tests
// in the binary can: once it stops retries, each run that fails spends a token and gives none back. It fills the
// budget again when t ends, so that later tests are not affected.
func drainDefaultBudget(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		for range 100 { // a success gives back 3 tokens, capped at the 100 the budget holds
			retry.Default().Succeeded()
		}
	})
	for range 100 { // every failure spends a token, allowed or not
		retry.Default().Next(retry.Attempt{N: 1, Err: errSerialization})
	}
	for range 10 { // what a few commits give back, such as RequireRetrySafe's clean run, does not help
		retry.Default().Succeeded()
	}
	_, ok := retry.Default().Next(retry.Attempt{N: 1, Err: errSerialization})
	require.False(t, ok, "the default budget still allows retries")
}

func TestPolicyIsDefaultWithStateOfItsOwn(t *testing.T) {
	cases := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"retries the classes Default retries", func(t *testing.T) {
			for _, code := range []string{"40001", "40P01", "55P03", "23505", "22012"} {
				err := &pgconn.PgError{Code: code}
				require.Equal(t, retry.Default().Retryable(err), txtest.Policy().Retryable(err), code)
			}
		}},
		{"has Default's attempt and time limits", func(t *testing.T) {
			p := txtest.Policy()
			_, ok := p.Next(retry.Attempt{N: 19, Err: errSerialization})
			require.True(t, ok, "attempt 20 is allowed")
			_, ok = p.Next(retry.Attempt{N: 20, Err: errSerialization})
			require.False(t, ok, "attempt 21 is not")
			start := time.Now()
			want, _ := retry.Default().Deadline(start)
			got, ok := p.Deadline(start)
			require.True(t, ok)
			require.Equal(t, want, got)
		}},
		{"has a gate of its own", func(t *testing.T) {
			g := txtest.Policy().Gate()
			require.NotNil(t, g)
			require.NotSame(t, retry.Default().Gate(), g)
			require.NotSame(t, txtest.Policy().Gate(), g)
		}},
		{"has a full budget of its own, whatever Default's holds", func(t *testing.T) {
			drainDefaultBudget(t)
			p := txtest.Policy()
			allowed := 0
			for ; allowed < 100; allowed++ {
				if _, ok := p.Next(retry.Attempt{N: 1, Err: errSerialization}); !ok {
					break
				}
			}
			require.Equal(t, 49, allowed, "100 tokens: retries while more than 50 remain")
			_, ok := txtest.Policy().Next(retry.Attempt{N: 1, Err: errSerialization})
			require.True(t, ok, "another Policy has a budget of its own too")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, c.check)
	}
}

// The default budget, drained by earlier tests' injected failures, must not decide whether a test passes: once
// Inject(pool, FailFirst(10)) had run a few times with the default policy, every later Run gave up at its first
// failure, RequireRetrySafe's included.
func TestInjectedRunsDoNotDependOnTheDefaultBudget(t *testing.T) {
	pool := newPool(t)
	cases := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"tx.Run with txtest.Policy", func(t *testing.T) {
			for i := range 12 {
				var runs atomic.Int32
				db := txtest.Inject(pool, txtest.FailFirst(10))
				_, err := tx.Run(ctxT(t), db, countedTransfer(&runs), tx.WithPolicy(txtest.Policy()))
				require.NoError(t, err, "run %d", i)
				require.EqualValues(t, 11, runs.Load(), "run %d: body runs", i)
			}
		}},
		{"RequireRetrySafe", func(t *testing.T) {
			var runs atomic.Int32
			observe := func() txtest.Counts { return txtest.Counts{} }
			require.Empty(t, failure(t, func(tb testing.TB) {
				txtest.RequireRetrySafe(tb, pool, countedTransfer(&runs), observe)
			}))
			require.EqualValues(t, 3, runs.Load(), "one clean run, one retried")
		}},
		{"RequireRetrySafe with the caller's policy", func(t *testing.T) {
			var runs atomic.Int32
			observe := func() txtest.Counts { return txtest.Counts{} }
			msg := failure(t, func(tb testing.TB) {
				txtest.RequireRetrySafe(tb, pool, countedTransfer(&runs), observe, tx.WithPolicy(retry.Never()))
			})
			require.Contains(t, msg, "run failed", "retry.Never, given by the caller, does not retry the injected failure")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			drainDefaultBudget(t)
			c.check(t)
		})
	}
}
