package tx

import "context"

// attemptKey is the context key under which Run tells an Acquirer which attempt of the run it lends a connection for.
type attemptKey struct{}

// AttemptOf reports which attempt of a Run ctx belongs to, counting from 1, for the ctx that Run passes to an
// Acquirer's AcquireTx: so that an Acquirer can treat a run's first attempt and its retries apart (txtest's EachRun
// fails the first attempts of every run this way). It is 0 for any other ctx.
func AttemptOf(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}
