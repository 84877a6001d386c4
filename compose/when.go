package compose

import "github.com/pgxact/pgxact/tx"

// When returns t with its result discarded if cond is true, and a Tx that does nothing otherwise. cond is decided
// when When is called, not when the Tx runs, so When suits conditions known while building the work (a flag, an
// optional argument); a condition on something read in the transaction needs tx.Bind. Discarding the result keeps
// both branches of one type; code that needs the result writes an ordinary if around the Tx it builds.
//
// When keeps t batchable: inside Sequence or Zip, its statements share the round trip of their neighbours.
func When[T any](cond bool, t tx.Tx[T]) tx.Tx[struct{}] {
	if !cond {
		return tx.Pure(struct{}{})
	}
	return tx.Then(t, tx.Pure(struct{}{})) // not Map, which tx.FuseCommit does not take: see ForEach
}
