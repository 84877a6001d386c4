package compose

import (
	"fmt"

	"github.com/pgxact/pgxact/tx"
)

// Sequence returns a Tx that runs ts in order and yields their results in the same order. The elements must not
// depend on each other's results (they may depend on each other's effects: element i sees what elements before it
// wrote), so consecutive plain statements are sent to the server in one round trip. An empty or nil ts yields an
// empty, non-nil slice and sends no statement; Run still takes a connection for such work (see tx.Pure).
//
// The first failure stops the run; its error is an *ElementError naming the element. A statement that fails is
// also reported by a *tx.StatementError with its position in the round trip (see the package documentation).
//
// Sequence does not keep ts: the caller may reuse the slice.
func Sequence[T any](ts []tx.Tx[T]) tx.Tx[[]T] {
	return tx.All(elements(ts))
}

// Traverse returns a Tx that runs f(x) for every x in xs, in order, and yields the results in the same order. f is
// called when Traverse is called, once per element, not when the Tx runs: it builds the work, and must not depend on
// what earlier elements yield — use Fold for that. Like Sequence, the elements' statements are batched, and an empty
// or nil xs yields an empty, non-nil slice and sends no statement.
//
// A nil f yields a Tx that fails with an error for which errors.Is(err, tx.ErrInvalid) is true.
func Traverse[X, T any](xs []X, f func(X) tx.Tx[T]) tx.Tx[[]T] {
	if f == nil {
		return tx.Fail[[]T](invalid("Traverse"))
	}
	ts := make([]tx.Tx[T], len(xs))
	for i, x := range xs {
		ts[i] = element(i, f(x))
	}
	return tx.All(ts)
}

// invalid reports a nil function handed to combinator name, in the form tx uses for its own invalid input, so that
// callers check a single sentinel.
func invalid(name string) error {
	return fmt.Errorf("compose: %s with a nil function: %w", name, tx.ErrInvalid)
}
