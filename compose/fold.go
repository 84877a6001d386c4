package compose

import (
	"slices"

	"github.com/pgxact/pgxact/tx"
)

// Fold returns a Tx that threads an accumulator through xs: starting from init, it runs f(acc, x) for each x in
// order, each step receiving the result of the one before, and yields the last result. An empty or nil xs yields init.
//
// Because every step depends on the previous result, Fold cannot batch: each step whose Tx sends statements costs at
// least one round trip of its own. Prefer Sequence or Traverse when the steps are independent, and keep Fold for work
// that is truly sequential (allocate from a running total, follow a chain of rows).
//
// f is called while the Tx runs, once per element per attempt; the accumulator restarts from init on every attempt,
// so f should return a new Acc rather than modify one that init shares. Steps run in a loop, not by recursion: a Fold
// over many elements needs memory in proportion to their number, not stack depth. Fold does not keep xs: the
// caller may reuse the slice. A nil f yields a Tx that fails with an error for which errors.Is(err, tx.ErrInvalid)
// is true.
func Fold[X, Acc any](xs []X, init Acc, f func(Acc, X) tx.Tx[Acc]) tx.Tx[Acc] {
	if f == nil {
		return tx.Fail[Acc](invalid("Fold"))
	}
	if len(xs) == 0 {
		return tx.Pure(init)
	}
	xs = slices.Clone(xs)
	// The accumulator lives in a cell made afresh for each run, so that concurrent runs and retries never share it.
	// Nesting one Bind per element would recurse as deep as xs is long when it runs; instead the steps are
	// elements of tx.All, which runs its elements one after the other, and each step reads and writes the cell.
	newCell := tx.Map(tx.Pure(init), func(v Acc) *Acc { return &v })
	return tx.Bind(newCell, func(acc *Acc) tx.Tx[Acc] {
		unit := tx.Pure(struct{}{})
		store := func(next Acc) struct{} { *acc = next; return struct{}{} }
		steps := make([]tx.Tx[struct{}], len(xs))
		for i, x := range xs {
			// The Bind defers f until the step runs, so that it sees the accumulator the step before left.
			steps[i] = tx.Bind(unit, func(struct{}) tx.Tx[struct{}] { return element(i, tx.Map(f(*acc, x), store)) })
		}
		return tx.Map(tx.All(steps), func([]struct{}) Acc { return *acc })
	})
}
