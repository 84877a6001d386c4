package tx

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/retry"
)

// FuseCommit lets a transaction that is nothing but plain statements whose results nothing on the Go side can
// reject — Exec, SetLocal, AfterCommit, Pure, and Then, All or MapError over them — send COMMIT in the round trip that
// carries BEGIN and the statements: one round trip instead of two. If a statement fails, the server skips the COMMIT
// behind it and Run rolls back as usual; a 40001 at COMMIT is retried as usual. Other work (a Query, a Map, a Bind, a
// Func) runs as without the option, since a Go-side failure after a fused COMMIT could no longer undo it, and so does
// work with a statement that cannot be prepared before the ones ahead of it have run (an INSERT into a table a CREATE
// TABLE of the same work makes): the fused round trip is given up before anything of it ran. Of package
// compose, Sequence, Traverse, ForEach and When over such statements fuse; Zip, which pairs results with a Go
// function, does not.
//
// The price is the ambiguous-commit resolution: the transaction id that pg_xact_status needs is learned in the first
// round trip, and with FuseCommit that is also the last. When the connection breaks during it, Run returns an error
// for which errors.Is(err, ErrCommitUnknown) is true instead of finding out. Use it where one round trip matters more
// than that, or where the work is idempotent.
func FuseCommit() Option { return func(c *config) { c.fuse = true } }

// fusable reports whether work may commit in the session's first round trip: FuseCommit was given, the runner owns
// BEGIN, nothing was sent yet, and the work is plain statements that cannot fail on the Go side.
func (s *session) fusable(stmts []stmt, sure bool) bool {
	return s.fuse && sure && s.conn != nil && !s.began() && len(stmts) > 0
}

// execFused runs t's statements and COMMIT in one round trip and returns t's value.
func execFused[T any](ctx context.Context, s *session, t Tx[T]) (T, error) {
	res, err := s.sendCommitting(ctx, t.s.stmts)
	if err != nil {
		var zero T
		return zero, err
	}
	return t.s.done(s, res)
}

// sendCommitting sends the pending statements (BEGIN), stmts and COMMIT in one batch. As the unfused path does (see
// sendFrom), it sends the batch again, once, when the connection's prepared statements were deallocated behind the
// wire's back: BEGIN's own Bind then failed, so nothing ran, and the wire has forgotten them all.
func (s *session) sendCommitting(ctx context.Context, stmts []stmt) ([]any, error) {
	before := s.mark()
	res, err := s.sendCommittingOnce(ctx, stmts)
	if err != nil && before.trips == 0 && s.txStatus() == 'I' && !s.closed() && lostStatements(err) {
		s.rewind(before)
		res, err = s.sendCommittingOnce(ctx, stmts)
	}
	if err != nil && before.trips == 0 && s.unpreparedBeforeBegin(ctx, err, stmts) {
		s.rewind(before)
		return nil, errUnfused
	}
	return res, err
}

// errUnfused says that the fused round trip was given up before anything of it ran, and the work is to run unfused.
var errUnfused = errors.New("tx: fused round trip not sent")

// unpreparedBeforeBegin reports whether err is the server's refusal to prepare a statement of stmts ahead of the fused
// round trip, before BEGIN ran, behind a statement that may change what it names (unseenSchema: CREATE TABLE, then an
// INSERT into it; ALTER COLUMN TYPE, then a value of the new type). That cannot be prepared before the earlier one
// has run: the unfused path splits its first round trip in front of it (see sendFrom), and reports the error if it
// is the statement's own. Other failures (an argument pgx cannot encode, any failure with no such statement ahead)
// are reported as they are: the unfused path would only meet them again, after sending part of the work.
func (s *session) unpreparedBeforeBegin(ctx context.Context, err error, stmts []stmt) bool {
	sql, pre, ok := preprocessing(err)
	if !ok || s.doomed || s.txStatus() != 'I' || s.closed() {
		return false
	}
	var pgErr *pgconn.PgError
	if !errors.As(pre, &pgErr) {
		return false
	}
	j := s.stmtIndex(ctx, stmts, sql)
	return j > 0 && slices.ContainsFunc(stmts[:j], func(st stmt) bool { return st.unseen&unseenSchema != 0 })
}

func (s *session) sendCommittingOnce(ctx context.Context, stmts []stmt) (_ []any, err error) {
	if s.conn.IsClosed() { // nothing will be sent: safe to run again on another connection
		return nil, retry.Uncommitted(fmt.Errorf("tx: batch: %w", pgconn.ErrConnClosed))
	}
	for i := range stmts {
		s.noteUnseen(stmts[i].unseen) // even read-only, a lost answer may hide a notification or a write
	}
	pending, endAt := s.pending, s.endAt
	s.sending(stmts) // a COMMIT in user SQL, whose answer a lost connection takes, ends the attempt (fusedFailure)
	// No transaction id will be known if the answer is lost: xidStale makes resolve report ErrCommitUnknown instead
	// of taking the transaction for one that wrote nothing.
	s.pending, s.trips, s.xidStale = nil, s.trips+1, true
	br, err := s.sendCommittingBatch(ctx, pending, stmts)
	if err != nil {
		s.endAt = endAt // the batch never went out, nor a COMMIT text in it
		s.noteDoom(err) // Parse takes locks, and can deadlock
		return nil, err
	}
	defer func() {
		// Once COMMIT's answer is read, the transaction has committed: an error closing the batch changes nothing.
		// Before, the server's failure is noted as the unfused path notes it, whatever a MapError made of it, so
		// that the attempt's error carries it and Run restarts on a serialization failure or a deadlock.
		cerr := br.Close()
		if err != nil {
			s.noteDoom(err, cerr)
		}
	}()
	if err := readPending(br, pending); err != nil {
		if fatal(err) {
			return nil, markUncommitted(err) // the session ended there, before COMMIT could run
		}
		if _, _, ok := preprocessing(err); ok {
			// pgx could not prepare or encode a statement (BEGIN's included), and sent nothing after it, COMMIT
			// included: a lost connection (a backend ended while the connection sat in the pool) is retried like any
			// other before COMMIT.
			return nil, s.lostBeforeCommit(s.named(ctx, err, stmts))
		}
		if s.skippedCommit(br) {
			return nil, s.unsent(ctx, nil, err, stmts, 0)
		}
		return nil, s.fusedFailure(err, true)
	}
	res, err := s.readStmts(br, stmts, 0)
	if err != nil {
		if s.ended {
			return nil, err // user SQL ended the transaction: readStmts said so
		}
		if fatal(err) {
			return nil, markUncommitted(err) // the session ended at a statement, before COMMIT could run
		}
		if s.skippedCommit(br) {
			return nil, err
		}
		return nil, s.fusedFailure(err, false)
	}
	tag, err := br.Exec()
	if err := commitResult(tag, err); err != nil {
		return nil, s.endedError(s.fusedFailure(err, false))
	}
	s.readLSN(br)
	if s.ended {
		// Known only after the fact here: the work went through in pieces.
		return nil, errEnded()
	}
	return res, nil
}

// sendCommittingBatch sends pending, stmts, COMMIT and, when wanted, the LSN query, through the wire when it can
// take them, else as a pgx.Batch. An error is one from before the batch went out: nothing of it ran.
func (s *session) sendCommittingBatch(ctx context.Context, pending []string, stmts []stmt) (batchResults, error) {
	if w := s.wire(stmts); w != nil {
		w.sqls, w.args = w.sqls[:0], w.args[:0]
		queueWire(w, pending, stmts)
		w.sqls, w.args = append(w.sqls, "COMMIT"), append(w.args, nil)
		if s.wantLSN {
			w.sqls, w.args = append(w.sqls, lsnSQL), append(w.args, nil)
		}
		br, err := w.send(ctx, s.conn.PgConn(), w.sqls, w.args)
		if err == nil {
			return br, nil
		}
		var be *buildError
		if errors.As(err, &be) {
			if j := be.pos - len(pending); j >= 0 && j < len(stmts) { // by position: the same text may come twice
				return nil, stmtError(&stmts[j], j, be)
			}
			return nil, err
		}
		var pe *prepareError
		if errors.As(err, &pe) {
			// The server refused to prepare a statement, which running it again would not help, or the connection
			// was lost before anything ran, which a retry would.
			if j := slices.IndexFunc(stmts, func(st stmt) bool { return st.sql == pe.sql }); j >= 0 {
				return nil, s.lostBeforeCommit(stmtError(&stmts[j], j, pe))
			}
			return nil, s.lostBeforeCommit(err)
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return nil, s.lostBeforeCommit(err) // as above
		}
		// The preparing round trip failed: the batch itself, COMMIT included, was never sent.
		return nil, retry.Uncommitted(fmt.Errorf("tx: prepare: %w", err))
	}
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(pending)+len(stmts)+2)}
	for _, p := range pending {
		b.Queue(p)
	}
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	b.Queue("COMMIT")
	if s.wantLSN {
		b.Queue(lsnSQL)
	}
	return s.conn.SendBatch(ctx, b), nil
}

// lostBeforeCommit is err, from before the round trip that carries COMMIT went out, marked uncommitted when the
// connection is gone: a FATAL from a backend ended while the connection sat in the pool is a lost connection.
func (s *session) lostBeforeCommit(err error) error {
	if s.conn.IsClosed() {
		return markUncommitted(err)
	}
	return err
}

// named is err as the StatementError of the statement of stmts that pgx could not prepare or encode, when err is
// such a failure (pgx reports it on the batch's first result, BEGIN's); err otherwise.
func (s *session) named(ctx context.Context, err error, stmts []stmt) error {
	sql, pre, ok := preprocessing(err)
	if !ok {
		return err
	}
	j := s.stmtIndex(ctx, stmts, sql)
	if j < 0 {
		return err
	}
	return stmtError(&stmts[j], j, pre)
}

// skippedCommit reads the rest of the fused round trip after a statement (not COMMIT) failed, and reports whether the
// connection shows that COMMIT did not run: it is still open, and its transaction failed ('E': the server's ERROR
// skipped everything after it, COMMIT included) or never began ('I': pgx refused the batch before sending it, an
// argument it could not encode, say). The error itself cannot say so once MapError has replaced it, nor can pgx's
// errors from before sending. Every statement here is Exec-like, so a statement's result fails on the server, on the
// network (which closes the connection) or before anything is sent, never on the Go side after the server ran it.
func (s *session) skippedCommit(br batchResults) bool {
	_ = br.Close() // up to the last ReadyForQuery, whose status is the server's last word
	if s.conn.IsClosed() {
		return false
	}
	switch s.conn.PgConn().TxStatus() {
	case 'E', 'I':
		return true
	}
	return false
}

// fusedFailure classifies an error of the fused round trip. The server's ERROR means it skipped everything after the
// failed statement, COMMIT included (or, at COMMIT, rolled back). Any other failure may have struck after COMMIT ran,
// unless nothing was sent or the transaction was read-only and so cannot have changed anything; a COMMIT or PREPARE
// TRANSACTION in user SQL ends it as ErrTxControl even then.
//
// pgx's SafeToRetry says "nothing was sent", but it is trusted only on the batch's first result and never for "conn
// closed": in the exec and simple-protocol modes pgx v5.12 swallows the failed read of the first result, which closes
// the connection, and the next read reports "conn closed" as safe to retry although the whole batch, COMMIT included,
// went out (TestFuseCommitCutsAreNeverGuessed, per mode). A connection already closed before the batch is caught by
// sendCommitting before anything is sent.
func (s *session) fusedFailure(err error, first bool) error {
	var amb *ambiguousError
	if errors.As(err, &amb) {
		err = amb.err
	}
	var pgErr *pgconn.PgError
	var pre pgx.ErrPreprocessingBatch
	switch {
	case errors.As(err, &pre):
		// pgx failed to prepare or encode a statement of the batch: it sent nothing after it, so not the COMMIT that
		// comes last (in the describing modes it even closes the connection with the batch unsent).
		return err
	case errors.As(err, &pgErr) && !ambiguous(err):
		return err
	case first && pgconn.SafeToRetry(err) && !errors.Is(err, pgconn.ErrConnClosed):
		return retry.Uncommitted(err)
	case s.endSent():
		// User SQL in the round trip ends the transaction (COMMIT, PREPARE TRANSACTION...) and its answer is lost:
		// it may have run, and what followed it ran on its own, which read-only no longer covers.
		return endedThen(errEnded(), err)
	case !s.trackXid:
		return retry.Uncommitted(err)
	default:
		return &ambiguousError{err: err}
	}
}
