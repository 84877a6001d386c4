// Package harness runs benchmark cells: one workload, several implementations, one number of concurrent workers.
//
// # Interleaving
//
// A cell does not run all of one implementation and then all of the next, which would hand whichever ran last the
// warmer caches, the bigger tables and the autovacuum backlog. It runs rounds; each round gives every implementation
// one short slice, in an order rotated by one per round (A B C D, B C D A, ...). Each implementation's figures are
// the sum of its slices.
//
// # Slices
//
// Before a slice the workload's tables are Reset; then the workers run transactions back to back until the slice's
// time is up (a transaction in flight is finished, not cancelled, so every commit is counted exactly); then the
// workload's Check runs against the commits counted. A failed Check, or a transaction error wrapping
// workload.ErrInvariant, marks the implementation's result InvariantOK = false. A workload that is a
// workload.Counter has its counts summed into Result.Counts.
//
// Before its first round a cell opens every connection its workers need and runs each implementation for a short
// unmeasured slice, so that new server backends and empty statement caches cost no implementation its figures.
package harness
