package tx

import "context"

// Nested returns a Tx that runs t under a savepoint. If t succeeds the savepoint is released; if t fails, its work
// (and the AfterCommit hooks it registered) is rolled back to the savepoint and t's error is returned, leaving the
// outer transaction usable: pair it with Recover (a Bind's function sees only successes), or reshape the error with
// MapError. SAVEPOINT, RELEASE and ROLLBACK TO ride along with neighbouring statements instead of costing round trips
// of their own, with three exceptions: a SAVEPOINT goes out on its own when the work under it has a statement new to
// the connection, whose preparing could fail and abort the transaction before the savepoint was there; the ROLLBACK
// TO after a failure the server reported goes out on its own, ahead of whatever must be prepared next, which a
// transaction in the failed state would refuse (riding along when nothing needs preparing is not done: one round
// trip on a failure path); and so does a ROLLBACK TO of work that may have changed what names refer to (DDL, a
// search_path, Func code) when what comes next must be prepared, since it may bring back what that names. DDL is
// known by the statements' text: one that a function called by a SELECT runs is not seen, so put a Bind (or a Func)
// between such work and a fallback that uses what it dropped.
func Nested[T any](t Tx[T]) Tx[T] {
	return dyn(func(ctx context.Context, s *session) (T, error) {
		return scoped(ctx, s, t)
	})
}

func scoped[T any](ctx context.Context, s *session, t Tx[T]) (T, error) {
	m := s.savepoint()
	v, err := t.exec(ctx, s)
	if err != nil {
		s.rollbackTo(m)
		var zero T
		return zero, err
	}
	s.release(m)
	return v, nil
}
