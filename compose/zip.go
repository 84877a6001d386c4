package compose

import (
	"github.com/samber/lo"

	"github.com/pgxact/pgxact/tx"
)

// Zip returns a Tx that runs a, then b, and yields both results. a and b must not depend on each other's results, so
// when both are plain statements (tx.Exec, tx.Query, tx.QueryOne, or Map/Then/Sequence of them) they travel in one
// round trip. If a fails, b does not run — except where they share a round trip and a fails on the Go side (no row for
// a QueryOne, a scan error): b's statements have then run on the server already, and only the rollback undoes them.
func Zip[A, B any](a tx.Tx[A], b tx.Tx[B]) tx.Tx[lo.Tuple2[A, B]] {
	// tx.All needs one element type: each side fills its own field of the tuple, and the two halves are merged
	// afterwards. This keeps the types static — no boxing into any, no type assertions.
	type pair = lo.Tuple2[A, B]
	halves := tx.All([]tx.Tx[pair]{
		element(0, tx.Map(a, func(v A) pair { return pair{A: v} })),
		element(1, tx.Map(b, func(v B) pair { return pair{B: v} })),
	})
	return tx.Map(halves, func(r []pair) pair { return pair{A: r[0].A, B: r[1].B} })
}

// Zip3 is Zip for three independent Tx values, run in order a, b, c, whose plain statements share one round trip.
// Prefer it to nesting Zip, which yields nested tuples.
func Zip3[A, B, C any](a tx.Tx[A], b tx.Tx[B], c tx.Tx[C]) tx.Tx[lo.Tuple3[A, B, C]] {
	type triple = lo.Tuple3[A, B, C]
	thirds := tx.All([]tx.Tx[triple]{
		element(0, tx.Map(a, func(v A) triple { return triple{A: v} })),
		element(1, tx.Map(b, func(v B) triple { return triple{B: v} })),
		element(2, tx.Map(c, func(v C) triple { return triple{C: v} })),
	})
	return tx.Map(thirds, func(r []triple) triple { return triple{A: r[0].A, B: r[1].B, C: r[2].C} })
}
