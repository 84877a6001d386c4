package tx

import (
	"context"
)

// MapError returns a Tx that runs t and, if t fails, fails with f(err) instead: it adds context to errors, as
// package compose does to name the element that failed. f must return a non-nil error; a nil result keeps err.
//
// MapError keeps t's statements batchable. When one of them fails in a round trip shared with other work, f receives
// the statement's own error, and the *StatementError that reports the statement's position wraps what f returns.
//
// f cannot undo a serialization failure or a deadlock: the transaction stays doomed whatever f returns. Recover does
// not take the result, and Run runs the transaction again as for the failure itself; if it fails for good, its error
// wraps both what f returned and the server's error.
func MapError[T any](t Tx[T], f func(error) error) Tx[T] {
	if f == nil {
		return Fail[T](invalid("MapError with a nil function"))
	}
	if t.zero() {
		return t // running it reports the zero Tx
	}
	mapped := func(err error) error {
		if e := f(err); e != nil {
			return e
		}
		return err
	}
	if !t.static() {
		return dyn(func(ctx context.Context, s *session) (T, error) {
			v, err := t.exec(ctx, s)
			if err != nil {
				return v, mapped(err)
			}
			return v, nil
		})
	}
	stmts := make([]stmt, len(t.s.stmts))
	for i, st := range t.s.stmts {
		read := st.read
		st.read = func(br results) (any, error) {
			v, err := read(br)
			if err != nil {
				return nil, mapped(err)
			}
			return v, nil
		}
		if inner := st.mapErr; inner != nil {
			st.mapErr = func(err error) error { return mapped(inner(err)) }
		} else {
			st.mapErr = mapped
		}
		stmts[i] = st
	}
	st := t.s
	// f runs only on a statement's error, which the server reports before it reaches COMMIT: MapError keeps sure.
	return Tx[T]{s: &step[T]{stmts: stmts, fails: st.fails, sure: st.sure, finish: func(s *session, res []any) (T, error) {
		v, err := st.done(s, res)
		if err != nil {
			return v, mapped(err)
		}
		return v, nil
	}}}
}
