package compose

import (
	"fmt"

	"github.com/pgxact/pgxact/tx"
)

// ElementError reports which element of a Sequence, Traverse, ForEach, Zip, Zip3 or Fold failed. Index counts from 0:
// the position in the slice, the argument position for Zip and Zip3 (a is 0), the step for Fold. Unwrap returns the
// element's error, so errors.Is and errors.As see through it; nested combinators nest ElementErrors, outermost first.
//
// When the element's statement failed in a round trip it shared with other elements, the error is a
// *tx.StatementError (with the statement's position in that round trip) wrapping the ElementError.
type ElementError struct {
	Index int
	Err   error
}

func (e *ElementError) Error() string { return fmt.Sprintf("compose: element %d: %v", e.Index, e.Err) }

func (e *ElementError) Unwrap() error { return e.Err }

// element makes the failures of t name it as element i. It keeps t batchable.
func element[T any](i int, t tx.Tx[T]) tx.Tx[T] {
	if t == (tx.Tx[T]{}) {
		// MapError hands a zero Tx back as it is, to fail when run, without naming it; name it here instead, as a
		// constant failure, so that nothing after it is sent either.
		return tx.Fail[T](&ElementError{Index: i, Err: fmt.Errorf("%w: zero Tx value", tx.ErrInvalid)})
	}
	return tx.MapError(t, func(err error) error { return &ElementError{Index: i, Err: err} })
}

// elements applies element to each of ts, in a new slice.
func elements[T any](ts []tx.Tx[T]) []tx.Tx[T] {
	out := make([]tx.Tx[T], len(ts))
	for i, t := range ts {
		out[i] = element(i, t)
	}
	return out
}
