package tx

import (
	"context"
	"errors"

	"github.com/pgxact/pgxact/retry"
)

// Recover returns a Tx that runs t under a savepoint and, if t fails, rolls back to the savepoint and continues with
// the Tx that f builds from the error — an idempotent insert that falls back to a select on 23505, for instance.
//
// Errors that doom the whole transaction are not recovered, because the transaction cannot go on after them:
// serialization failures and deadlocks (the snapshot and SSI predicate locks outlive the savepoint; only a restart of
// the whole transaction helps), lost connections, cancelled contexts, invalid input, and ErrTxControl (the transaction
// ended inside t: there is no savepoint left to go back to).
func Recover[T any](t Tx[T], f func(error) Tx[T]) Tx[T] {
	if f == nil {
		return Fail[T](invalid("Recover with a nil function"))
	}
	return dyn(func(ctx context.Context, s *session) (T, error) {
		v, err := scoped(ctx, s, t)
		if err == nil {
			return v, nil
		}
		if !recoverable(s, err) {
			return v, s.refused(err)
		}
		return f(err).exec(ctx, s)
	})
}

// recoverable reports whether the transaction can go on after err. A network error dooms it only when it lost the
// session's connection: one from elsewhere (a Func that called a web service, read a file) leaves the transaction
// as it was, and the savepoint can take back what the failed work did.
func recoverable(s *session, err error) bool {
	return !s.doomed && mayRecover(s, err)
}

// refused is the error a scope returns when it does not recover err: when only the session's doom stood in the way
// (a 23505 after a deadlock that Func code handled under its own savepoint), it carries the server's error that
// doomed the session, so that Run restarts the transaction rather than fail for good with what the scope was there
// to recover.
func (s *session) refused(err error) error {
	if s.doomErr == nil || dooms(err) || !mayRecover(s, err) {
		return err
	}
	return &doomedError{doom: s.doomErr, err: err}
}

// mayRecover is recoverable without the session's doom.
func mayRecover(s *session, err error) bool {
	var hidden *hiddenFailure
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrTxControl) || errors.As(err, &hidden) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	c := retry.Classify(retry.Uncommitted(err))
	if c == retry.ConnectionLost && !s.closed() {
		return true
	}
	return !c.TransactionFatal()
}
