package txtest

import (
	"runtime"

	"github.com/pgxact/pgxact/retry"
)

// The sizes retry.Default() documents for its Budget and Gate. Policy copies them rather than sharing Default's,
// because what it must not share is the state: a test's retries should behave like production's, not depend on what
// earlier tests of the binary spent.
const (
	defaultBudgetMax   = 100
	defaultBudgetRatio = 3
)

// Policy returns a retry policy for tests: retry.Default()'s classes, limits and backoff (Serialization, Deadlock and
// ConnectionLost; 20 attempts, 10s; full-jitter exponential backoff from 1ms to 30ms), and a Budget (100 tokens, 3
// per success) and a Gate (a slot per processor, at least 2) sized like Default's — but new, its own.
//
// A test needs its own because retry.Default() shares one Budget and one Gate with every Run of the process that does
// not pass tx.WithPolicy, and a test binary is one process. Every injected failure spends a token of that budget and
// every commit gives back only 3, so runs of FailFirst(4) or more drain it (seven runs of FailFirst(10) do), and from
// then on each later Run with the default policy gives up at its first failure: a test that passes alone fails after
// others. Call Policy once per test, or once per Run whose attempts a test counts:
//
//	db := txtest.Inject(pool, txtest.FailFirst(2))
//	v, err := tx.Run(ctx, db, work, tx.WithPolicy(txtest.Policy())) // work runs 3 times, commits once
//
// RequireRetrySafe uses a Policy of its own unless its options say otherwise.
func Policy() retry.Policy {
	return retry.New(retry.On(retry.Serialization, retry.Deadlock, retry.ConnectionLost),
		retry.WithBudget(retry.NewBudget(defaultBudgetMax, defaultBudgetRatio)),
		retry.WithGate(retry.NewGate(max(2, runtime.GOMAXPROCS(0)))))
}
