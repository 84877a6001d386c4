package tx

import "context"

// AfterCommit returns a Tx that registers f to run after the transaction commits. Hooks run once, in registration
// order, after the attempt that committed, with Run's ctx; hooks registered by a failed attempt, or inside a savepoint
// that was rolled back, are dropped. This is where side effects outside the database belong (sending a message,
// bumping a metric): the body of a Tx runs again on every retry, a hook never does. A hook's panic cannot undo the
// commit: the remaining hooks still run, then Run panics with it. Hooks run only when Run knows the transaction
// committed: not when it returns ErrCommitUnknown, nor ErrTxControl (user SQL ended the transaction, which may have
// committed), so a hook runs at most once, and may not run for a transaction that did commit.
func AfterCommit(f func(ctx context.Context)) Tx[struct{}] {
	if f == nil {
		return Fail[struct{}](invalid("AfterCommit with a nil function"))
	}
	return Tx[struct{}]{s: &step[struct{}]{sure: true, finish: func(s *session, _ []any) (struct{}, error) {
		s.hooks = append(s.hooks, f)
		return struct{}{}, nil
	}}}
}
