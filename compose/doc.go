// Package compose combines many tx.Tx values into one, keeping independent work batched.
//
// # The rule
//
// Work whose steps do not depend on each other's results may share round trips; work whose next step needs the
// previous result may not. Sequence, Traverse, Zip, Zip3, When and ForEach take work that is independent — each
// element may see the effects of the elements before it, never their results — so the plain statements of all their
// elements (tx.Exec, tx.Query, tx.QueryOne, and Map, Then or compose combinations of them) go to the server in one
// round trip, however many there are. Fold, like tx.Bind, feeds each result into the next step, so each step that
// sends statements waits for the one before: n steps cost n round trips. Where the work is independent, prefer the
// independent combinators:
//
//	// One round trip for both reads (and BEGIN), not two.
//	both := compose.Zip(
//		tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], from),
//		tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], to),
//	)
//
// A tx.Func element, or one built with tx.Bind, runs on its own; the plain elements on either side of it are still
// batched with their neighbours.
//
// # Order and failure
//
// Elements run in order, and the first failure stops the work: the server runs the statements of a round trip in
// order and skips the rest after an error, and the transaction rolls back, so nothing of the failed run is committed.
// A failure found on the Go side after the round trip (no row for a QueryOne, a scan error) comes after the server
// has run the whole round trip, though: the rollback undoes the later elements' writes, but not what no rollback
// undoes (a sequence's nextval, a pg_sleep).
// The error names the failing element with an *ElementError (the Fold step, the Zip argument); nested combinators
// nest them. A statement failure is in addition a *tx.StatementError, outside the ElementError, whose Index is the
// statement's position in its round trip: for elements of one statement each, in a combinator that starts its
// round trip, that Index equals the element's.
//
// # Building and running
//
// Like every tx.Tx, the results of these functions are immutable values that run nothing until tx.Run: they may be
// run many times and from many goroutines. Functions that take a slice do not keep it. The functions given to
// Traverse and ForEach are called while building; the one given to Fold is called while running, on every attempt.
package compose
