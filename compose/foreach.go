package compose

import "github.com/pgxact/pgxact/tx"

// ForEach returns a Tx that runs f(x) for every x in xs, in order, for its effects: it is Traverse with the results
// discarded, so f may return any Tx — tx.Exec's command tag needs no mapping away. f is called when ForEach is called,
// and the elements' statements are batched. An empty or nil xs does nothing.
//
// A nil f yields a Tx that fails with an error for which errors.Is(err, tx.ErrInvalid) is true.
func ForEach[X, T any](xs []X, f func(X) tx.Tx[T]) tx.Tx[struct{}] {
	if f == nil {
		return tx.Fail[struct{}](invalid("ForEach"))
	}
	// Then with Pure rather than Map: the same result, and work that is only Execs stays eligible for tx.FuseCommit,
	// which takes no Map (a Go function after a fused COMMIT could no longer undo it).
	return tx.Then(Traverse(xs, f), tx.Pure(struct{}{}))
}
