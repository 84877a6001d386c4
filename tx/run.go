package tx

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/retry"
)

// DB is what Run executes transactions on. *pgxpool.Pool and *pgx.Conn satisfy it, and Run recognises both: it then
// owns BEGIN and fuses it into the transaction's first round trip of statements (a Func sends it on its own first).
// Any other DB (a wrapper, a test double) is driven through BeginTx and the pgx.Tx it returns, one statement batch at
// a time.
//
// A *pgx.Conn serves one goroutine at a time, and cannot come back from a lost connection; use a pool to get retries
// after connection failures.
type DB interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Run executes t in a database transaction on db and returns its result: BEGIN (SERIALIZABLE unless WithIsolation
// says otherwise), t's work, COMMIT. Any error rolls the transaction back and is returned; a panic rolls it back and
// continues. Serialization failures, deadlocks and connection failures before COMMIT restart the whole transaction —
// t runs again from scratch — as the retry policy allows (WithPolicy; default retry.Default()). AfterCommit hooks
// run once, after the attempt that committed.
//
// When the connection breaks after COMMIT was sent, Run asks the server with pg_xact_status whether the transaction
// committed: if it did, Run succeeds; if it aborted, Run retries; if the answer cannot be had, Run returns an error
// for which errors.Is(err, ErrCommitUnknown) is true. An error from Run otherwise means nothing was committed, except
// ErrTxControl (COMMIT or ROLLBACK sent as user SQL).
//
// ctx bounds the whole run, retries and pauses included; it is never stored. Only cleanup outlives it, each part
// bounded by a few seconds: rolling back, and finding out whether a COMMIT whose answer was lost committed (ending
// ctx during COMMIT is a common way to lose that answer).
func Run[T any](ctx context.Context, db DB, t Tx[T], opts ...Option) (T, error) {
	var zero T
	r, err := newRunner(db, opts)
	if err == nil && t.zero() {
		err = invalid("zero Tx value (build Tx values with the tx constructors)")
	}
	if err != nil {
		// Invalid input runs nothing, but the observer hears of the run: a dashboard of failed runs must see it.
		obs := r.cfg.observer
		obs.EndRun(obs.StartRun(ctx), RunInfo{Err: err})
		return zero, err
	}
	start := time.Now()
	ctx = r.cfg.observer.StartRun(ctx)
	ended := false
	defer func() {
		if !ended { // a panic in the work or in a hook: the observer still hears the run end
			r.cfg.observer.EndRun(ctx, RunInfo{Attempts: r.attempts, Duration: time.Since(start), Err: errPanicked})
		}
	}()
	v, n, err := runAttempts(ctx, r, t, start)
	ended = true
	r.cfg.observer.EndRun(ctx, RunInfo{Attempts: n, Duration: time.Since(start), Err: err})
	return v, err
}

// errPanicked is the error observers see for a run or an attempt that a panic ended; Run itself goes on panicking.
var errPanicked = errors.New("tx: panic in the work or in an AfterCommit hook")

// attemptInFlight is the attempt of runAttempts that has begun and not yet been reported to the observer. One
// deferred call ends it on a panic, instead of a deferred call per attempt, each an allocation inside the loop.
type attemptInFlight struct {
	open    bool
	n       int
	ctx     context.Context
	began   time.Time
	release func()
}

func (a *attemptInFlight) endOnPanic(o Observer) {
	if a.release != nil {
		// Always: a panic in the observer or the policy after the attempt ended must not keep its Gate slot either.
		// release is idempotent, so an attempt that gave its slot back already gives nothing twice.
		a.release()
	}
	if a.open {
		o.EndAttempt(a.ctx, AttemptInfo{Attempt: a.n, Duration: time.Since(a.began), Err: errPanicked})
	}
}

func runAttempts[T any](ctx context.Context, r *runner, t Tx[T], start time.Time) (T, int, error) {
	var zero T
	var delay time.Duration
	var lastErr error
	var cur attemptInFlight
	defer cur.endOnPanic(r.cfg.observer)
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return zero, n - 1, fmt.Errorf("tx: before attempt %d: %w", n, err)
		}
		gctx, release, err := r.admit(ctx, n, start)
		if err != nil {
			if ctx.Err() == nil && lastErr != nil {
				// The policy's MaxElapsed passed while the retry waited for a slot: it may not begin any more.
				return zero, n - 1, r.final(lastErr, n-1, start)
			}
			// ctx ended while the attempt waited for its turn: report that, and what made it wait
			return zero, n - 1, interrupted(n, err, lastErr)
		}
		r.attempts = n
		cur = attemptInFlight{release: release} // before StartAttempt: a panic there must give the slot back too
		actx := r.cfg.observer.StartAttempt(gctx, n)
		began := time.Now()
		cur = attemptInFlight{open: true, n: n, ctx: actx, began: began, release: release}
		v, hooks, err := attempt(actx, r, t)
		cur.open = false
		info := AttemptInfo{Attempt: n, Duration: time.Since(began), Err: err}
		if err == nil {
			r.succeeded(ctx, actx, info, release, hooks)
			return v, n, nil
		}
		info.SQLState, info.Class = sqlState(err), retry.Classify(err)
		next, ok := r.cfg.policy.Next(retry.Attempt{N: n, Err: err, Elapsed: time.Since(start), Delay: delay})
		// An unknown outcome is never retried, whatever a policy says: the first attempt may have committed.
		ok = ok && !errors.Is(err, ErrCommitUnknown) && fits(ctx, next) && !r.lostForGood()
		info.Retry, info.Delay = ok, next
		r.cfg.observer.EndAttempt(actx, info)
		release()
		if !ok {
			return zero, n, r.final(err, n, start)
		}
		if !sleep(ctx, next) {
			return zero, n, interrupted(n+1, ctx.Err(), err)
		}
		delay, lastErr = next, err
	}
}

// succeeded reports a committed attempt and runs its AfterCommit hooks. The hooks run even when the policy or the
// observer panics here: the transaction has committed, and its hooks must run exactly once whatever happens after.
func (r *runner) succeeded(ctx, actx context.Context, info AttemptInfo, release func(), hooks []func(context.Context)) {
	defer func() {
		release() // before the hooks, which may be slow or run transactions of their own
		runHooks(ctx, hooks)
	}()
	r.cfg.policy.Succeeded()
	r.cfg.observer.EndAttempt(actx, info)
}

// interrupted is the error of a run whose ctx ended before attempt n could begin: errors.Is reaches both ctx's
// error and the failure of the attempt before, if there was one.
func interrupted(n int, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("tx: before attempt %d: %w", n, ctxErr)
	}
	return fmt.Errorf("tx: before attempt %d: %w (attempt %d: %w)", n, ctxErr, n-1, last)
}

// admit lets attempt n begin. It waits at the policy's Gate, which lets first attempts through at once unless
// retries are queueing there: under heavy contention transactions then queue in Go instead of failing one another in
// the database. A Run inside the attempt of another (user code calling Run from Func) does not wait for a slot its
// caller may be holding: it could wait forever.
func (r *runner) admit(ctx context.Context, n int, start time.Time) (context.Context, func(), error) {
	g := r.cfg.policy.Gate()
	if g == nil || ctx.Value(gateHeld{}) != nil {
		return ctx, func() {}, nil
	}
	wait := ctx
	if deadline, ok := r.cfg.policy.Deadline(start); ok && n > 1 {
		// MaxElapsed promises that no attempt begins after it: the wait for a slot counts too. The Gate looks at
		// its context only when it must queue, so a deadline already past is checked here.
		if !time.Now().Before(deadline) {
			return nil, nil, context.DeadlineExceeded
		}
		var cancel context.CancelFunc
		wait, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	done, err := g.Wait(wait, n)
	if err != nil {
		return nil, nil, err
	}
	released := false
	release := func() { // idempotent: called when the attempt ends, and deferred against panics
		if !released {
			released = true
			done()
		}
	}
	return context.WithValue(ctx, gateHeld{}, true), release, nil
}

// gateHeld marks the context of an attempt that holds a Gate slot.
type gateHeld struct{}

// final shapes the error of the last attempt: a RetryError when the policy would retry this kind of failure but
// had no attempt left to give.
func (r *runner) final(err error, n int, start time.Time) error {
	if r.cfg.policy.Retryable(err) {
		return &RetryError{Attempts: n, Elapsed: time.Since(start), Err: err}
	}
	return err
}

// lostForGood reports whether the db is a single connection that has died: retrying on it cannot succeed.
func (r *runner) lostForGood() bool {
	c, ok := r.db.(*pgx.Conn)
	return ok && c.IsClosed()
}

// fits reports whether a pause of d ends before ctx's deadline: sleeping past it would only delay the same error.
func fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// attempt runs t once, in a transaction of its own, and settles the outcome of an ambiguous COMMIT after the
// connection has gone back.
func attempt[T any](ctx context.Context, r *runner, t Tx[T]) (T, []func(context.Context), error) {
	var zero T
	s, err := r.open(ctx)
	if err != nil {
		return zero, nil, err
	}
	v, err := execCommit(ctx, s, t)
	err = s.carryDoom(err)
	var amb *ambiguousError
	if errors.As(err, &amb) {
		// v is the work's result; it stands if the transaction turns out to have committed.
		err = r.resolve(ctx, s, amb)
	}
	if err != nil {
		if r.recorder != nil && (errors.Is(err, ErrCommitUnknown) || errors.Is(err, ErrTxControl)) {
			// It may have committed: the recorder must assume the worst, or a read-your-writes read that checks
			// whether it did could go to a replica that has not replayed it and answer "no".
			r.recorder.RecordCommit(ctx, "")
		}
		return zero, nil, err
	}
	if r.recorder != nil && s.began() && (!r.cfg.readOnly || (s.writable && s.xid != 0)) {
		// A ReadOnly transaction is recorded only when its SQL made it writable and it did write (it has an id; a
		// notification alone is no data a replica could miss). Its position was not asked for: "unknown".
		r.record(ctx, s)
	}
	return v, s.hooks, nil
}

// record tells the recorder where s's commit ended, with its timeline when the recorder wants it and it is known.
func (r *runner) record(ctx context.Context, s *session) {
	if tr, ok := r.recorder.(TimelineRecorder); ok && s.lsn != "" {
		tr.RecordTimelineCommit(ctx, s.timeline, s.lsn)
		return
	}
	r.recorder.RecordCommit(ctx, s.lsn)
}

// execCommit runs t and commits, rolling back on error or panic; the connection is released in every case.
func execCommit[T any](ctx context.Context, s *session, t Tx[T]) (T, error) {
	var zero T
	defer s.close()
	done := false
	defer func() {
		// Runs on panics too, which then go on: a panic in user code is never turned into an error.
		if !done {
			s.abort(ctx)
		}
	}()
	if t.static() && s.fusable(t.s.stmts, t.s.sure && !t.s.fails) {
		v, err := execFused(ctx, s, t)
		if !errors.Is(err, errUnfused) {
			done = err == nil
			return v, err
		}
	}
	v, err := t.exec(ctx, s)
	if err != nil {
		if errors.Is(err, ErrTxControl) {
			return zero, err // user SQL ended the transaction, and what it committed must not run again
		}
		if pc := s.pgConn(); pc != nil && pc.IsBusy() {
			s.leftOpenMayEnd() // the statement whose results Func code left open has run: it may have ended it
		}
		if s.closed() && (s.userEnd || s.endSent() && !unsentError(err)) {
			// A COMMIT sent as SQL whose answer the lost connection took with it may have committed: that is no
			// "nothing committed", and must not be retried. An error from before sending clears the runner's own
			// round trip, not a COMMIT that Func code sent earlier (userEnd).
			s.ended = true
		}
		if s.ended {
			// The same, behind an error that does not wrap ErrTxControl (a MapError that replaced it): without this
			// Run would report nothing committed, and a retryable one would run the work again.
			return zero, endedThen(errEnded(), err)
		}
		if !s.closed() { // pgconn closes the connection on a FATAL too
			// The connection still works, so a network error in err is not its loss: it came from elsewhere (a
			// Func that called a web service, read a file) and says nothing a retry would fix.
			return zero, err
		}
		return zero, markUncommitted(err)
	}
	if s.endSent() && s.closed() {
		// Func code sent a COMMIT as SQL, lost its answer with the connection, and went on as if it had worked: the
		// transaction may have ended there, whatever the runner's own COMMIT would be taken to say.
		return zero, errEnded()
	}
	if pc := s.pgConn(); pc != nil && pc.IsBusy() && s.leftOpenMayEnd() {
		// Before anything else: transaction control that Func code left open has run, whatever the attempt met
		// before it (a serialization failure it handled under its own savepoint would otherwise restart work that
		// has committed).
		return zero, errEnded()
	}
	if s.doomed {
		return zero, s.doomedCommit()
	}
	if err := unreadableText(s.pgConn()); err != nil {
		// The work turned a setting off that the reading of its texts relies on (SET standard_conforming_strings):
		// what it sent since may have ended the transaction unseen. Rolled back, which undoes the SET too.
		return zero, err
	}
	if err := s.commit(ctx); err != nil {
		// The value goes back with the error: when COMMIT was ambiguous and turns out to have committed, it is Run's
		// result. attempt drops it for every other error.
		return v, err
	}
	done = true
	return v, nil
}

// markUncommitted records that err struck before COMMIT was sent, so that a lost connection counts as retryable.
// Errors whose class does not change keep their identity.
func markUncommitted(err error) error {
	if retry.Classify(err) == retry.Other && retry.Classify(retry.Uncommitted(err)) == retry.ConnectionLost {
		return retry.Uncommitted(err)
	}
	return err
}

// runHooks runs AfterCommit hooks in order. The transaction has committed, so a hook's panic cannot undo it: every
// hook still runs, and the first panic is raised again afterwards.
func runHooks(ctx context.Context, hooks []func(context.Context)) {
	var first any
	panicked := false
	for _, h := range hooks {
		func() {
			defer func() {
				if p := recover(); p != nil && !panicked {
					first, panicked = p, true
				}
			}()
			h(ctx)
		}()
	}
	if panicked {
		panic(first)
	}
}

// runner holds what one Run needs across attempts.
type runner struct {
	db  DB
	cfg config
	// At most one of these is set, when the runner owns BEGIN on the db's connections; with none, it goes through
	// db.BeginTx.
	pool     *pgxpool.Pool
	conn     *pgx.Conn
	acquirer Acquirer
	recorder CommitRecorder // nil unless db asks for commit LSNs
	attempts int            // attempts begun, for the observer when a panic ends the run
}

// acquire gives s a connection of its own from the runner's db.
func (r *runner) acquire(ctx context.Context, s *session) error {
	switch {
	case r.pool != nil:
		c, err := r.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		s.conn, s.pooled = c.Conn(), c
	case r.conn != nil:
		s.conn = r.conn
	default:
		conn, release, err := r.acquirer.AcquireTx(context.WithValue(ctx, attemptKey{}, r.attempts), r.cfg.acquireOptions())
		if err == nil && (conn == nil || release == nil) {
			err = invalid("the Acquirer lent no connection or no release function, and no error")
		}
		if err != nil {
			if release != nil {
				release() // whatever it did hold goes back: the contract is one call per AcquireTx
			}
			return err
		}
		s.conn, s.giveBack = conn, release
	}
	return nil
}

// newRunner returns the runner of one Run. On invalid input it returns the error with the runner, whose options are
// applied as far as they go, so that the run can still be reported to its observer.
func newRunner(db DB, opts []Option) (*runner, error) {
	r := &runner{db: db}
	// The options are applied to the runner's own config: a config of its own would escape to the heap through the
	// option functions, one allocation more per Run.
	if err := r.cfg.apply(opts); err != nil {
		return r, err
	}
	if isNil(db) {
		return r, invalid("nil db")
	}
	switch d := db.(type) {
	case *pgxpool.Pool:
		r.pool = d
	case *pgx.Conn:
		r.conn = d
	case Acquirer:
		r.acquirer = d
	}
	if rec, ok := db.(CommitRecorder); ok {
		r.recorder = rec
	}
	return r, nil
}

// isNil catches typed nils such as (*pgxpool.Pool)(nil), which would otherwise panic deep inside pgx.
func isNil(db DB) bool {
	return db == nil || nilPointer(db)
}

// nilPointer reports whether v holds a nil pointer.
func nilPointer(v any) bool {
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Pointer && r.IsNil()
}

// unreadableText returns why the runner cannot read SQL text on pc as the server will, nil if it can: where a
// statement ends and whether it ends the transaction are read from the text (see sqltext.go), with
// standard_conforming_strings on, PostgreSQL's default, as pgx's own argument substitution requires, and in a client
// encoding whose characters never hold a byte that is a backslash or a quote (a character of SJIS, BIG5, GBK,
// GB18030, UHC, JOHAB or SHIFT_JIS_2004 can end in 0x5C). The server reports both settings at startup and on every
// change, so this is a lookup.
func unreadableText(pc *pgconn.PgConn) error {
	if pc == nil {
		return nil
	}
	if pc.ParameterStatus("standard_conforming_strings") == "off" {
		return invalid("standard_conforming_strings is off on the connection: the runner reads SQL text as " +
			"PostgreSQL does with it on (its default)")
	}
	switch enc := pc.ParameterStatus("client_encoding"); enc {
	case "SJIS", "SHIFT_JIS_2004", "BIG5", "GBK", "GB18030", "UHC", "JOHAB":
		return invalid("client_encoding %s: a character may end in the byte of a backslash or a quote, and the "+
			"runner could not tell where the server sees a string end (use UTF8)", enc)
	}
	return nil
}

// open starts an attempt's session. When the runner owns the connection, BEGIN is only queued: it travels with the
// transaction's first statements.
func (r *runner) open(ctx context.Context) (*session, error) {
	s := &session{trackXid: !r.cfg.readOnly, wantLSN: r.recorder != nil && !r.cfg.readOnly, fuse: r.cfg.fuse}
	if r.pool == nil && r.conn == nil && r.acquirer == nil {
		q, err := r.db.BeginTx(ctx, r.cfg.txOptions())
		if err != nil {
			return nil, markUncommitted(fmt.Errorf("tx: begin: %w", err))
		}
		if c := q.Conn(); c != nil {
			if err := unreadableText(c.PgConn()); err != nil {
				_ = q.Rollback(ctx)
				return nil, err
			}
		}
		s.q, s.tx = q, q
		return s, nil
	}
	if err := r.acquire(ctx, s); err != nil {
		return nil, markUncommitted(fmt.Errorf("tx: acquire connection: %w", err))
	}
	if s.conn.PgConn().IsBusy() {
		// Results of the caller's still open (rows not closed): pgx would refuse every statement, and closing the
		// connection to roll back, as abort does when the work leaves it busy, would take the caller's rows down.
		s.close()
		return nil, invalid("the connection is busy: results read on it before Run (rows not closed) are still open")
	}
	if err := unreadableText(s.conn.PgConn()); err != nil {
		s.close() // one the runner took from a pool is closed on the way, so that the pool lends it no more
		return nil, err
	}
	if st := s.conn.PgConn().TxStatus(); st != 'I' && r.conn != nil && !s.conn.IsClosed() {
		// A *pgx.Conn already inside a transaction: BEGIN would only draw a warning, and our COMMIT would commit the
		// caller's transaction along with ours. (A pool never lends such a connection; an Acquirer may, on purpose:
		// txtest's Injector begins the transaction itself to plant its faults.)
		s.close()
		return nil, invalid("the connection is already in a transaction (status %q): run pgx code inside it with Func, "+
			"or finish it before Run", st)
	}
	s.q = s.conn
	s.pending = append(s.pendingBuf[:0], r.cfg.beginSQL(s.conn))
	return s, nil
}
