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
	return tx.Map(Traverse(xs, f), discard[[]T])
}
