package tx

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Tx describes work inside a PostgreSQL transaction that yields a T. Building a Tx runs nothing: Run executes it.
//
// A Tx is an immutable value: it may be run any number of times, from any number of goroutines at once, and every
// run starts from scratch — no state survives between runs, which is what makes whole-transaction retries correct.
// The zero Tx is not valid work: running it (directly or inside a combinator) fails with an error wrapping ErrInvalid.
type Tx[T any] struct {
	s *step[T]    // a static step; nil for a dynamic one
	d *dynamic[T] // a dynamic step; nil for a static one
}

// dynamic is a dynamic step: a function of the session. It is a pointer in Tx, not a func field, so that Tx values
// stay comparable with ==, as they were when a Tx was a pointer alone.
type dynamic[T any] struct {
	run func(ctx context.Context, s *session) (T, error)
}

// dyn is the dynamic Tx of run.
func dyn[T any](run func(ctx context.Context, s *session) (T, error)) Tx[T] {
	return Tx[T]{d: &dynamic[T]{run}}
}

// step is a static Tx: a list of statements known before anything runs, and a finish function that turns their results
// into a T. A Tx is either static or dynamic, a function of the session. Static steps are what the runner can
// pipeline: independent statements go out in one round trip, with BEGIN fused into the first. A dynamic Tx is its
// function alone, with no step: Bind, Map and the like are built anew for every transaction, often several times over, and a
// step (statements and their backing array, a value, flags) is well over a hundred bytes that a dynamic Tx never
// reads.
type step[T any] struct {
	stmts  []stmt
	one    [1]stmt                                // the backing array of stmts for a step of a single statement (see own)
	room   room                                   // where stmts lie in a grower's array, if they do (see concat)
	finish func(s *session, res []any) (T, error) // nil: the step yields value, or its single result (yieldsResult)
	value  T

	// fails marks a static step that ends in a constant failure (Fail, an invalid SetLocal, anything built on them):
	// its done always returns an error. Static combinators stop at such a step, so no statement that could only run
	// after the failure is sent — a sequence's nextval or a pg_sleep is not undone by the rollback that follows.
	fails bool

	// sure marks a static step whose done cannot fail once its statements have succeeded, and which runs no user
	// function on their results (Exec, SetLocal, AfterCommit, Pure, and Then, All or MapError over them). Only such
	// work may carry its COMMIT in the same round trip (FuseCommit): nothing can reject it after COMMIT was sent.
	sure bool

	// yieldsResult marks a step of one statement whose value is that statement's result (Exec, Query, QueryOne). It
	// stands for a finish function: in a generic function a closure carries its type's dictionary, so even one that
	// captures nothing would be an allocation per statement.
	yieldsResult bool
}

// own makes st a step of the single statement x, stored inside the step: no slice allocation of its own.
func (st *step[T]) own(x stmt) []stmt {
	st.one[0] = x
	return st.one[:]
}

// done turns the results of a static step's statements into its value.
func (st *step[T]) done(s *session, res []any) (T, error) {
	if st.finish == nil {
		if st.yieldsResult {
			return res[0].(T), nil
		}
		return st.value, nil
	}
	return st.finish(s, res)
}

func (t Tx[T]) static() bool { return t.s != nil }

// zero reports whether t is the zero Tx, neither static nor dynamic.
func (t Tx[T]) zero() bool { return t.s == nil && t.d == nil }

// exec runs t within the session s.
func (t Tx[T]) exec(ctx context.Context, s *session) (T, error) {
	if t.d != nil {
		return t.d.run(ctx, s)
	}
	if t.s == nil {
		var zero T
		return zero, invalid("zero Tx value (build Tx values with the tx constructors)")
	}
	if len(t.s.stmts) == 0 {
		return t.s.done(s, nil) // Pure, AfterCommit: nothing to send, no round trip to pay for
	}
	res, err := s.send(ctx, t.s.stmts)
	if err != nil {
		var zero T
		return zero, err
	}
	return t.s.done(s, res)
}

// Pure returns a Tx that yields v and sends no statement. Run with work that sends none still takes a connection
// from db (a pool may dial one), but sends neither BEGIN nor COMMIT on it; a DB that Run drives through BeginTx
// begins and commits a transaction all the same.
func Pure[T any](v T) Tx[T] {
	return Tx[T]{s: &step[T]{value: v, sure: true}}
}

// Fail returns a Tx that fails with err, rolling back the transaction unless a Recover catches it.
// A nil err is invalid input.
func Fail[T any](err error) Tx[T] {
	if err == nil {
		err = invalid("Fail with a nil error")
	}
	return Tx[T]{s: &step[T]{fails: true, finish: func(*session, []any) (T, error) {
		var zero T
		return zero, err
	}}}
}

// funcOutcome is the error of Func code that returned err. f may have ended the transaction with SQL of its own
// (COMMIT, ROLLBACK, COMMIT AND CHAIN, PREPARE TRANSACTION...): then the work before it may be committed, and only
// ErrTxControl says so, whatever f returned. The session knows from the connection's status, or from the command tags
// the handle read (a chained COMMIT leaves the connection in the next transaction). f's own error is then kept as text
// only: wrapped, a 40001 or a network error in it would make the runner retry work that may be committed already.
func funcOutcome(s *session, err error) error {
	// Also on a connection that died since: it keeps the status of its last answer, 'I' after a COMMIT of f's own.
	ctl := s.checkOpen()
	switch {
	case ctl == nil:
		return err
	case err == nil:
		return ctl
	default:
		return endedThen(ctl, err)
	}
}

// endedThen is the error of work whose transaction ended inside it (ctl, wrapping ErrTxControl) and which then failed
// with err: ctl is what Run must act on (nothing of it may run again), err what the caller wants to read.
func endedThen(ctl, err error) error { return fmt.Errorf("%w; the work then failed: %v", ctl, err) }

// Func lifts plain pgx code into a Tx: f runs with the transaction as a pgx.Tx, so raw pgx calls and sqlc-generated
// Queries (New(q)) work unchanged. f must not call Commit or Rollback on q (savepoints via q.Begin are fine), and must
// keep side effects outside the database for AfterCommit, because f runs again on every retry.
//
// Each Func is a round-trip boundary. The BEGIN of a transaction that starts with f goes out on its own before f runs
// (a transaction of one statement in a Func costs three round trips, as with pgx.BeginTxFunc); statements of the
// runner before f carry it as usual. User code's statements can fail in ways that leave nothing sent (a QueryRewriter,
// an argument pgx cannot encode) or abort the transaction while preparing, and BEGIN riding with them would be lost or
// taken down with them.
//
// q is valid only while f runs: once f returns, q and the savepoints begun from it refuse every call with
// pgx.ErrTxClosed, as pgx's own Tx does once ended (Conn still returns the connection, as pgx's does).
//
// Transaction control sent as SQL (COMMIT, ROLLBACK, their AND CHAIN forms, PREPARE TRANSACTION) makes Run fail with
// ErrTxControl and not retry: it is noticed from the connection's status and from the command tag of every result
// read through q; results f leaves unread (rows not closed, a batch not closed) are judged by their statements' text,
// since the server has run them, and so is a COMMIT whose answer a lost connection took. A COMMIT before the last
// statement of a multi-statement Exec (pgx reports the last tag only) is noticed by its text. Not noticed is anything
// sent through q.Conn() directly, which bypasses q.
//
// A serialization failure or deadlock that q reports dooms the transaction, whatever f makes of the error, and also
// when f rolls back a savepoint of its own (q.Begin's) over it and goes on: the transaction is not committed, a
// Recover around it does not roll back to its savepoint and go on, and Run restarts the transaction, as for a failure
// it sees itself. So does a failure of the server's that pgx hid from f behind a Scan's error, except that Run fails
// then rather than restart, since it cannot tell what the failure was. One met through q.Conn() is not seen; return
// it wrapped with %w for Run to see it.
func Func[T any](f func(ctx context.Context, q pgx.Tx) (T, error)) Tx[T] {
	if f == nil {
		return Fail[T](invalid("Func with a nil function"))
	}
	return dyn(func(ctx context.Context, s *session) (T, error) {
		h, err := s.handle(ctx)
		if err != nil {
			var zero T
			return zero, err
		}
		defer h.close() // also when f panics: a q it stored must not outlive it
		v, err := f(ctx, h)
		return v, funcOutcome(s, err)
	})
}
