package tx

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/retry"
)

// querier is what a session sends statements through: the connection itself when the runner owns BEGIN, or the
// pgx.Tx a plain BeginTx-capable db gave it.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error)
	Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error)
}

// xidSQL asks for the transaction's id without assigning one; it rides along in round trips the transaction makes
// anyway, so that an ambiguous COMMIT can later be resolved with pg_xact_status. It is as small as it can be: it
// runs in nearly every transaction that writes, and server time is what saturated benchmarks are short of. So the
// xid8 comes back as it is, with no cast through text to bigint: its binary form is a bigint's (8 bytes, big-endian)
// and its text form a decimal number, which rawInt8 reads either way.
const xidSQL = `SELECT pg_current_xact_id_if_assigned()`

// xidAssignSQL is the look of a transaction that may change what commits unseen (see probe.go): it assigns the id
// that a notification would take at COMMIT anyway, so that pg_xact_status can tell whether it committed. A hot
// standby cannot assign one, nor run a NOTIFY or a write: there it looks without assigning, and its NULL then means
// "nothing to commit".
const xidAssignSQL = `SELECT CASE WHEN pg_is_in_recovery() THEN pg_current_xact_id_if_assigned()
	ELSE pg_current_xact_id() END`

// xidLook is the look this session sends.
func (s *session) xidLook() string {
	if s.assignLook {
		return xidAssignSQL
	}
	return xidSQL
}

// noteUnseen records what a statement's text shows (see unseenWrite): a notification makes every later look, read-only
// or not, one that assigns an id; a ReadOnly transaction made writable is looked at like a read-write one.
func (s *session) noteUnseen(u unseen) {
	if u&unseenNotify != 0 {
		s.assignLook, s.trackXid = true, true
	}
	if u&unseenWritable != 0 {
		s.writable, s.trackXid = true, true
	}
}

// historyRowSQL reads the server's history (see history) and the server process's PID, which tells a connection to the
// server itself from one through a pooler. A direct connection needs it once, in the batch of its first look.
const historyRowSQL = `SELECT ` + historySQL + `, pg_backend_pid()::bigint`

// session is the state of one attempt: one database transaction on one connection. It is never shared between
// goroutines or attempts.
type session struct {
	q        querier
	conn     *pgx.Conn     // nil when q is a pgx.Tx from a plain db
	tx       pgx.Tx        // the pgx.Tx of a plain db; nil when the runner owns BEGIN
	pooled   *pgxpool.Conn // the pool's hold on conn, when it came from a *pgxpool.Pool
	giveBack func()        // returns conn to an Acquirer

	// pending holds statements without results (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO) that go out in front of the
	// next round trip instead of costing one of their own.
	pending    []string
	pendingBuf [4]string // pending's first backing array, inside the session: no allocation of its own
	trips      int
	savepoints int
	hooks      []func(context.Context)
	open       []*handle // savepoints begun by user pgx code (Func's Begin) and not yet ended, outermost first

	trackXid    bool              // false for read-only transactions, which cannot write (unless they notify)
	assignLook  bool              // a statement may have sent a notification (unseenWrite): looks assign an id
	writable    bool              // a statement may have made a ReadOnly transaction writable (unseenWrite)
	xid         int64             // the transaction's id once assigned; 0 while none is known
	hist        history           // the server history xid belongs to, learned in the round trip that learned xid
	xidStale    bool              // statements ran since the last look at the xid: COMMIT looks (see probe.go)
	owed        bool              // user code ran on the connection: the next round trip looks, whatever its statements
	more        int               // steps still to come after the one running (Bind and Then left sides): see probe.go
	fuse        bool              // FuseCommit: plain, sure work commits in its first round trip
	wantLSN     bool              // the db records commit LSNs
	lsn         string            // the WAL insert position right after COMMIT, when wanted and known
	timeline    uint32            // the primary's timeline at lsn
	ended       bool              // a statement of the work ended the transaction (endedBy)
	prepared    map[string]string // texts of the statements Func code prepared by name, by name; nil until one is
	userConn    bool              // Func code has had the connection in this attempt: the wire is not used (see wire)
	lastResults leftOpen          // the results Func code was sent last (see leftOpenMayEnd)
	// endAt is the round trip that carried the latest statement whose text ends the transaction (COMMIT as SQL), 0
	// for none: if the connection is lost before its answer is read, the work may have committed (see endSent).
	endAt   int
	userEnd bool // the same sent by Func code, whose statements count no round trips of the session's
	// renamed is the latest round trip that carried a statement that may change what names refer to (unseenSchema)
	// or Func code; rollbackRenames says the pending ROLLBACK TO undoes one (see savepointPending).
	renamed         int
	rollbackRenames bool
	opened          bool // BEGIN has run: a round trip that carried it, or came after it, was read
	// doomed: the server failed the transaction in a way no savepoint can undo (a serialization failure, a
	// deadlock), or in a way pgx did not report; whatever error the work's code made of it, Recover does not roll
	// back to a savepoint and go on (see recoverable).
	doomed  bool
	doomErr error     // the server's error that doomed the session, if it was read: the attempt's failure carries it
	first   firstRead // the pgx.Batch being read (see sentNothing)
}

// noteDoom marks the session doomed when one of errs, as the server or pgx reported it before any MapError or user
// code could make something else of it, is a serialization failure or a deadlock.
func (s *session) noteDoom(errs ...error) {
	for _, err := range errs {
		if dooms(err) {
			s.doomed = true
			if s.doomErr == nil {
				s.doomErr = err
			}
		}
	}
}

// noteHidden marks the session doomed when err, an error pgx returned to user code, is not the server's while the
// server has failed the transaction: pgx keeps a Scan's or a callback's error first and drops the server's, which may
// have been a serialization failure.
func (s *session) noteHidden(err error) {
	var pgErr *pgconn.PgError
	if err != nil && !errors.As(err, &pgErr) && !s.closed() && s.aborted() {
		s.doomed = true
	}
}

// carryDoom makes an attempt's failure on a doomed session carry the server's error that doomed it, when what the
// work's code made of the failure (a MapError, Func code's own wrapping) dropped it: Run then restarts the
// transaction, whatever shape of Tx the failure came through.
func (s *session) carryDoom(err error) error {
	if err == nil || s.doomErr == nil || dooms(err) {
		return err
	}
	var amb *ambiguousError
	if errors.Is(err, ErrTxControl) || errors.Is(err, ErrCommitUnknown) || errors.As(err, &amb) ||
		errors.Is(err, ErrInvalid) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // it may have committed, the input is wrong, or the caller gave up: never made retryable
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code != "25P02" {
		return err // a server failure of the work's own (a 23505 after a deadlock its code handled) decides, as before
	}
	return &doomedError{doom: s.doomErr, err: err}
}

// doomedCommit is the error of work that went on to succeed after the server had failed its transaction in a way no
// savepoint undoes: Func code that rolled back a savepoint of its own over a serialization failure or a deadlock.
// Its snapshot is one SERIALIZABLE refused, so the transaction is not committed: Run restarts it on the server's
// error, or, when pgx never returned that error (see noteHidden), fails without retrying, since the failure may have
// been of any kind.
func (s *session) doomedCommit() error {
	err := errors.New("tx: not committed: the work went on after the server failed the transaction")
	if s.doomErr == nil {
		return &hiddenFailure{err: err}
	}
	return &doomedError{doom: s.doomErr, err: err}
}

// doomedError is the failure of an attempt on a doomed session whose error holds no server failure of its own, or
// only a 25P02 (a statement sent after the failure, which says nothing more). The server's error comes first in its
// tree, so that retry.Classify finds it before the 25P02; what the work's code made of the failure stays reachable
// with errors.Is, and with errors.As for any type the server's error is not.
type doomedError struct{ doom, err error }

func (e *doomedError) Error() string {
	return e.err.Error() + " (the server failed the transaction: " + e.doom.Error() + ")"
}

func (e *doomedError) Unwrap() []error { return []error{e.doom, e.err} }

// dooms reports whether err is the server's serialization failure or deadlock, which no savepoint can undo.
func dooms(err error) bool {
	if err == nil {
		return false // without a look into it: errors.As's target escapes, an allocation every round trip
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	c := retry.Classify(err)
	return c == retry.Serialization || c == retry.Deadlock
}

// txStatus is the server's transaction status as of the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' in
// a failed one; 0 when there is no connection to ask (test doubles).
func (s *session) txStatus() byte {
	if pc := s.pgConn(); pc != nil {
		return pc.TxStatus()
	}
	return 0
}

// aborted reports whether the server has the transaction in the failed state, waiting for a rollback.
func (s *session) aborted() bool { return s.txStatus() == 'E' }

// checkOpen fails with ErrTxControl when the transaction has begun but the server is no longer in it: a COMMIT or
// ROLLBACK in user SQL ended it, and whatever ran since ran in autocommit mode. Going on would report an atomic
// success that did not happen.
func (s *session) checkOpen() error {
	if s.began() && (s.ended || s.txStatus() == 'I') {
		return errEnded()
	}
	return nil
}

// sending notes what the text of stmts, about to go out in a round trip, tells: a statement that may change names
// (see rollbackTo), or one that may end the transaction (see endSent).
func (s *session) sending(stmts []stmt) {
	var u unseen
	for i := range stmts {
		u |= stmts[i].unseen
	}
	if u&unseenSchema != 0 {
		s.renamed = s.trips + 1 // the round trip about to go out, which rollbackTo compares with a savepoint's
	}
	if u&unseenEnds != 0 && !s.closed() { // (on a closed connection pgx sends nothing)
		s.endAt = s.trips + 1
	}
}

// sendMark is what sending a round trip changes before it is known whether any of it went out: the pending statements
// it took, the round-trip count, and the round trip of the latest COMMIT text. rewind puts them back when none of it
// ran, so that a savepoint among the pending is seen as never sent and a COMMIT text as never sent.
type sendMark struct {
	pending      []string
	trips, endAt int
}

func (s *session) mark() sendMark {
	return sendMark{pending: s.pending, trips: s.trips, endAt: s.endAt}
}

func (s *session) rewind(m sendMark) { s.pending, s.trips, s.endAt = m.pending, m.trips, m.endAt }

// endSent reports whether a statement whose text ends the transaction went out in a round trip that counts as sent:
// one that pgx or the wire refused before sending anything is taken back from s.trips (see notSent), or was never
// counted.
func (s *session) endSent() bool { return s.userEnd || s.endAt != 0 && s.endAt <= s.trips }

// unsentError reports whether err says that the statement it is about was never sent: pgx or the wire could not
// prepare or encode it.
func unsentError(err error) bool {
	if _, _, ok := preprocessing(err); ok {
		return true
	}
	var be *buildError
	return errors.As(err, &be)
}

// leftOpen is results that Func code was given and may not have read to their end: rows, or a batch's.
type leftOpen interface {
	mayEnd() bool
}

// leftOpenMayEnd reports whether the results Func code was given last, which a busy connection says are still open
// (pgconn sends nothing while a result is unread, so they are the last sent), may be those of a statement that ended
// the transaction, and records it as ended if so: the server ran it, whatever user code read of its answer.
func (s *session) leftOpenMayEnd() bool {
	if s.lastResults != nil && s.lastResults.mayEnd() {
		s.ended = true
	}
	return s.ended
}

// errConnBusy is the error of statements the runner could not send because rows of Func code are still open, as pgx
// refuses a query then ("conn busy").
var errConnBusy = errors.New("conn busy: rows left open by the work (close them before sending more)")

// errBusy is the error of a COMMIT that could not be sent because rows of the work were left open.
var errBusy = errors.New("tx: commit not sent: the connection is busy (rows left open by the work: close them " +
	"before returning)")

func errEnded() error {
	return fmt.Errorf("%w: the transaction ended inside its work (COMMIT, ROLLBACK or PREPARE TRANSACTION in user "+
		"SQL); statements after it may have been committed on their own", ErrTxControl)
}

// endedBy reports whether the statement sql, answered with tag, ended the transaction. The connection's status
// alone misses COMMIT AND CHAIN and ROLLBACK AND CHAIN, which begin the next transaction at once, and statements
// followed by others in the same round trip; their tags do not. ROLLBACK TO SAVEPOINT answers "ROLLBACK" too, and is
// told apart by its words (see savepointRollback).
func endedBy(sql string, tag pgconn.CommandTag) bool {
	switch tag.String() {
	case "COMMIT", "PREPARE TRANSACTION":
		return true
	case "ROLLBACK":
		return !savepointRollback(sql)
	}
	return false
}

func (s *session) began() bool { return s.tx != nil || s.trips > 0 }

// send runs stmts in one round trip, preceded by the pending statements, and returns their results in order.
func (s *session) send(ctx context.Context, stmts []stmt) ([]any, error) {
	return s.sendFrom(ctx, stmts, 0)
}

// sendFrom is send for stmts that start at position base of the caller's list (for error messages). pgx prepares
// every new statement of a batch before running any, so a statement that refers to a table an earlier one creates
// cannot be prepared yet. When that happens in the round trip that carries BEGIN, nothing has run and the batch is
// split in front of it and sent as two. In a transaction already open the failed Parse would abort it, so the round
// trip is split ahead of time after a statement whose text may change what later ones refer to (useAfterSchema); a
// Parse that fails all the same is reported.
func (s *session) sendFrom(ctx context.Context, stmts []stmt, base int) ([]any, error) {
	if err := unreadableText(s.pgConn()); err != nil {
		return nil, err // an earlier round trip of the work turned it off: nothing more goes out (see unreadableText)
	}
	if j := s.useAfterSchema(ctx, stmts); j > 0 {
		return s.sendSplit(ctx, stmts, j, base)
	}
	before := s.mark()
	res, err := s.sendOnce(ctx, stmts, base)
	if err != nil && before.trips == 0 && s.txStatus() == 'I' && lostStatements(err) {
		// The connection's prepared statements were deallocated behind the wire's back (pgx's DeallocateAll, a
		// DEALLOCATE ALL): BEGIN's own Bind failed, so nothing ran. The wire has forgotten them all; the round trip is
		// sent again, preparing afresh.
		s.rewind(before)
		res, err = s.sendOnce(ctx, stmts, base)
	}
	if err == nil {
		return res, nil
	}
	sql, pre, ok := preprocessing(err)
	if !ok {
		return res, err
	}
	s.endAt = before.endAt // nothing of the batch ran, a COMMIT text in it included, even where pgx closed the connection
	j := s.stmtIndex(ctx, stmts, sql)
	if j < 0 {
		return nil, err
	}
	if before.trips == 0 && s.txStatus() == 'I' && !s.closed() {
		// BEGIN has not run: nothing of the batch has, whichever path failed to prepare it. What was pending still
		// is, so that a savepoint around the statement is seen as never sent.
		s.rewind(before)
	}
	if j == 0 || s.aborted() || s.closed() {
		// Either it is the first statement, or a failed Parse has aborted the open transaction, or pgx closed the
		// connection (a describing mode that fails to encode arguments after queueing others, unsent, closes it):
		// report it as is.
		return nil, stmtError(&stmts[j], base+j, pre)
	}
	s.rewind(before)
	return s.sendSplit(ctx, stmts, j, base)
}

// sendSplit sends stmts as two round trips, the second starting at j.
func (s *session) sendSplit(ctx context.Context, stmts []stmt, j, base int) ([]any, error) {
	head, err := s.sendFrom(ctx, stmts[:j], base)
	if err != nil {
		return nil, err
	}
	tail, err := s.sendFrom(ctx, stmts[j:], base+j)
	if err != nil {
		return nil, err
	}
	return append(head, tail...), nil
}

// useAfterSchema returns the position of the first statement of stmts that follows one that may change what it
// refers to (unseenSchema: CREATE TABLE, then an INSERT into it) and that would be prepared ahead of the round trip,
// or 0 for none. In an open transaction, that Parse would fail before the statement ahead of it had run, and abort
// the transaction; sent from there in a round trip of its own, it is prepared after it. Before BEGIN has run the
// failed Parse aborts nothing, and sendFrom splits the round trip when it happens, which costs nothing otherwise.
func (s *session) useAfterSchema(ctx context.Context, stmts []stmt) int {
	if !s.began() || len(stmts) < 2 {
		return 0
	}
	i := slices.IndexFunc(stmts[:len(stmts)-1], func(st stmt) bool { return st.unseen&unseenSchema != 0 })
	if i < 0 {
		return 0 // the usual case: no statement to split after, found without looking at any cache
	}
	w := s.wire(stmts)
	for j := i + 1; j < len(stmts); j++ {
		if s.mayPrepare(ctx, w, stmts[j:j+1]) {
			return j
		}
	}
	return 0
}

// closed reports whether the session's connection is gone.
func (s *session) closed() bool {
	pc := s.pgConn()
	return pc != nil && pc.IsClosed()
}

// lostStatements reports whether err is the server's "prepared statement does not exist".
func lostStatements(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "26000"
}

// stmtIndex returns the position in stmts of the statement pgx reports by its text sql: the text pgx prepares, the
// statement's own or the one pgx.NamedArgs makes of it in place (see batchText); -1 for none. Two statements that
// match are the same prepared statement: the first is the one that failed.
func (s *session) stmtIndex(ctx context.Context, stmts []stmt, sql string) int {
	conn := s.pgxConn()
	for j := range stmts {
		if text, ok := batchText(ctx, conn, &stmts[j]); ok && text == sql {
			return j
		}
	}
	return -1
}

// preprocessing finds the error of a batch that could not be prepared: pgx's, or the wire's (see wire.go), and
// returns the statement's text and the error to report for it. It is a function of its own so that the error
// variables escape only on this failure path, not on every round trip.
func preprocessing(err error) (string, error, bool) {
	var pre pgx.ErrPreprocessingBatch
	if errors.As(err, &pre) {
		return pre.SQL(), pre, true
	}
	var pe *prepareError
	if errors.As(err, &pe) {
		return pe.sql, pe, true
	}
	return "", nil, false
}

func (s *session) sendOnce(ctx context.Context, stmts []stmt, base int) (res []any, err error) {
	if len(stmts) == 0 {
		return nil, nil
	}
	if s.aborted() {
		// pgx prepares a batch's new statements before running it, and an aborted transaction refuses even that: the
		// pending ROLLBACK TO must go first, on its own.
		if err := s.flush(ctx); err != nil {
			return nil, err
		}
	}
	w := s.wire(stmts)
	if s.began() && s.savepointPending() && s.mayPrepare(ctx, w, stmts) {
		// A statement new to the connection is prepared in a round trip of its own, ahead of the batch that carries
		// the pending statements, and a Parse that fails (an undefined table, a syntax error) aborts the open
		// transaction. A pending SAVEPOINT must be on the server by then, or Recover, Nested and Retry would find
		// nothing to roll back to; a pending ROLLBACK TO must have run, for it may bring back what the statement
		// names (a table the rolled-back work dropped). This costs a round trip only the first time a connection
		// sees a statement.
		if err := s.flush(ctx); err != nil {
			return nil, err
		}
	}
	s.sending(stmts)
	capture := s.lookNow(stmts)
	if w == nil && !capture && len(stmts) == 1 && len(s.pending) == 0 && plainArgs(stmts[0].args) {
		return s.sendOne(ctx, &stmts[0], base)
	}
	var br batchResults
	var withHist bool
	trips := s.trips // notSent takes the round trip back when nothing of it went out
	if w != nil {
		if br, withHist, err = s.sendWire(ctx, w, stmts, capture); err != nil {
			s.noteDoom(err) // Parse takes locks, and can deadlock, before any MapError sees the error
			var be *buildError
			if errors.As(err, &be) {
				if j := be.pos - len(s.pending); j >= 0 && j < len(stmts) { // by position: the same text may come twice
					return nil, stmtError(&stmts[j], base+j, be)
				}
			}
			return nil, err
		}
	} else {
		if pc := s.pgConn(); pc != nil && pc.IsBusy() && len(s.pending) > 0 {
			// Rows of Func code still open: pgx would refuse the batch without sending it while the connection stays
			// busy, so that the refusal would count as sent, and the pending SAVEPOINT as made (see flush).
			return nil, fmt.Errorf("tx: %w", errConnBusy)
		}
		b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(s.pending)+len(stmts)+1)}
		for _, p := range s.pending {
			b.Queue(p)
		}
		for _, st := range stmts {
			b.Queue(st.sql, st.args...)
		}
		if capture {
			withHist = s.needHistory()
			b.Queue(s.xidLook())
			if withHist {
				b.Queue(historyRowSQL)
			}
		}
		s.first = firstRead{batchResults: s.q.SendBatch(ctx, b)}
		br = &s.first
	}
	pending := s.pending
	s.pending, s.trips = nil, s.trips+1
	defer func() {
		cerr := br.Close()
		s.noteDoom(err, cerr)
		switch {
		case err != nil && s.trips == trips:
			// Nothing went out (an argument pgx could not encode): no later statement ran, a COMMIT among them
			// included, and the transaction is as it was.
		case err != nil:
			err = s.afterClientFailure(err, cerr, after(err, stmts, base))
		case cerr != nil:
			res, err = nil, fmt.Errorf("tx: batch: %w", cerr)
		default:
			if err = s.checkOpen(); err != nil {
				res = nil
			}
		}
	}()
	if err := readPending(br, pending); err != nil {
		return nil, s.notSent(ctx, w, err, stmts, base, pending)
	}
	s.opened = true // BEGIN, if it was pending, has run
	if res, err = s.readStmts(br, stmts, base); err != nil {
		if se := (*StatementError)(nil); errors.As(err, &se) && se.Index == base {
			return nil, s.notSent(ctx, w, err, stmts, base, pending)
		}
		return nil, err
	}
	if capture {
		return res, s.readXid(br, withHist)
	}
	return res, nil
}

// mayPrepare reports whether sending stmts may first prepare one of them in a round trip of its own: through the
// wire, when one is new to the connection; through a pgx.Batch, in the modes where pgx prepares or describes.
func (s *session) mayPrepare(ctx context.Context, w *wire, stmts []stmt) bool {
	if w != nil {
		return w.lacks(stmts)
	}
	conn := s.pgxConn()
	if conn == nil {
		return false
	}
	mode := conn.Config().DefaultQueryExecMode
	switch mode {
	case pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol:
		return false // the statements are parsed in the batch itself, after the pending ones have run
	case pgx.QueryExecModeDescribeExec:
		return true // described anew for every batch
	}
	cache := pgxCache(conn, mode)
	if cache == nil {
		return true // a pgx whose caches cannot be read: assume the worst, a SAVEPOINT's round trip of its own
	}
	for i := range stmts {
		sql, ok := batchText(ctx, conn, &stmts[i])
		if !ok || cache.Get(sql) == nil {
			return true
		}
	}
	return false
}

// savepointPending reports whether a SAVEPOINT waits among the pending statements, one that a failing Parse ahead of
// it would leave unmade, or a ROLLBACK TO of a scope that sent a statement that may change names (DDL; Func code),
// which may bring back what a statement after it names. A pending RELEASE changes nothing a Parse sees.
func (s *session) savepointPending() bool {
	for _, p := range s.pending {
		if strings.HasPrefix(p, "SAVEPOINT ") || s.rollbackRenames && strings.HasPrefix(p, "ROLLBACK TO ") {
			return true
		}
	}
	return false
}

// notSent is unsent for a batch whose pending statements it had taken: when pgx sent nothing of it, they are pending
// again, so that a savepoint among them counts as never sent, and the round trip is taken back.
func (s *session) notSent(ctx context.Context, w *wire, err error, stmts []stmt, base int, pending []string) error {
	if !s.sentNothing(w) {
		return err
	}
	s.pending, s.trips = pending, s.trips-1
	if s.endAt > s.trips {
		s.endAt = 0 // a COMMIT text among the statements never went out
	}
	if _, _, ok := preprocessing(err); ok {
		return err // pgx named the statement itself
	}
	return s.unsent(ctx, w, err, stmts, base)
}

// sentNothing reports whether pgx refused the pgx.Batch just sent before sending any of it: an argument it could not
// encode or rewrite, a placeholder count the simple protocol's substitution refused. It then fails the batch's first
// result, as pgx read it (before any MapError), with an error that is not the server's, and pgconn is not busy with
// the batch's results, which it is from the moment it sends them until they are closed. A first result read with no
// error, however its statement failed in the client afterwards (QueryOne's no rows), went out with the rest.
func (s *session) sentNothing(w *wire) bool {
	var pgErr *pgconn.PgError
	err := s.first.err
	pc := s.pgConn()
	if w != nil || s.first.reads == 0 || err == nil || errors.As(err, &pgErr) || pc == nil {
		return false
	}
	if _, _, ok := preprocessing(err); ok {
		return true // pgx refused the batch before running any of it: its describing modes then close the connection
	}
	return !s.closed() && !pc.IsBusy()
}

// firstRead keeps the error of the first result read from a pgx.Batch, as pgx returned it.
type firstRead struct {
	batchResults
	reads int
	err   error
}

func (r *firstRead) Exec() (pgconn.CommandTag, error) {
	tag, err := r.batchResults.Exec()
	r.note(err)
	return tag, err
}

func (r *firstRead) Query() (pgx.Rows, error) {
	rows, err := r.batchResults.Query()
	r.note(err)
	return rows, err
}

func (r *firstRead) note(err error) {
	if r.reads == 0 {
		r.err = err
	}
	r.reads++
}

// unsent names the statement whose arguments pgx could not encode when a pgx.Batch failed at its first result. In the
// exec and simple-protocol modes pgx encodes a batch before sending any of it and fails the whole batch without
// naming the statement; the wire and pgx's describing modes name it themselves. The statement is found by encoding
// each one again as the exec mode does — only on this failure path. A failure that is the server's, or that closed
// the connection (network, cancellation), is about the batch and stays as it is.
func (s *session) unsent(ctx context.Context, w *wire, err error, stmts []stmt, base int) error {
	var pgErr *pgconn.PgError
	conn := s.pgxConn()
	if w != nil || conn == nil || errors.As(err, &pgErr) || s.closed() {
		return err
	}
	cause := errors.Unwrap(err) // readPending's "tx: " wrapping, or the StatementError of the first statement
	if se := (*StatementError)(nil); errors.As(err, &se) {
		cause = se.Err
	}
	var eqb pgx.ExtendedQueryBuilder
	for i := range stmts {
		args := stmts[i].args
		if len(args) > 0 {
			if _, ok := args[0].(pgx.QueryExecMode); ok {
				args = args[1:]
			}
		}
		if len(args) > 0 {
			// pgx rewrites these arguments (pgx.NamedArgs) before encoding them, and fails the batch if it cannot.
			if rw, ok := args[0].(pgx.QueryRewriter); ok {
				var rerr error
				if _, args, rerr = rw.RewriteQuery(ctx, conn, stmts[i].sql, args[1:]); rerr != nil {
					return stmtError(&stmts[i], base+i, cause)
				}
			}
		}
		if eqb.Build(conn.TypeMap(), nil, args) != nil {
			return stmtError(&stmts[i], base+i, cause)
		}
	}
	return err
}

// wire returns the connection's wire when it can send stmts (see wire.go), or nil.
func (s *session) wire(stmts []stmt) *wire {
	if s.tx != nil {
		return nil // a plain db's pgx.Tx: its connection is not the session's to drive
	}
	if s.userConn {
		// Func code had the connection: it may have deallocated the wire's statements (pgx's DeallocateAll, which
		// resets pgx's own cache but cannot tell the wire), and in an open transaction a Bind of a statement gone
		// would abort it. pgx.Batch's statements are pgx's, which DeallocateAll accounts for.
		return nil
	}
	w := wireFor(s.conn)
	if w == nil || !w.takes(stmts) {
		return nil
	}
	return w
}

// sendWire sends the pending statements, stmts and, when capture is set, the transaction-id look through w.
func (s *session) sendWire(ctx context.Context, w *wire, stmts []stmt, capture bool) (batchResults, bool, error) {
	w.sqls, w.args = w.sqls[:0], w.args[:0]
	queueWire(w, s.pending, stmts)
	var withHist bool
	if capture {
		withHist = s.needHistory()
		w.sqls, w.args = append(w.sqls, s.xidLook()), append(w.args, nil)
		if withHist {
			w.sqls, w.args = append(w.sqls, historyRowSQL), append(w.args, nil)
		}
	}
	br, err := w.send(ctx, s.conn.PgConn(), w.sqls, w.args)
	return br, withHist, err
}

// queueWire appends the pending statements and stmts to the round trip w is building.
func queueWire(w *wire, pending []string, stmts []stmt) {
	for _, p := range pending {
		w.sqls, w.args = append(w.sqls, p), append(w.args, nil)
	}
	for i := range stmts {
		w.sqls, w.args = append(w.sqls, stmts[i].sql), append(w.args, stmts[i].args)
	}
}

// sendOne sends a round trip that is one statement and nothing else (a link of a Bind chain, typically) through pgx's
// plain query path: the same messages as a batch of one, for less client work than pgx's pipeline bookkeeping.
func (s *session) sendOne(ctx context.Context, st *stmt, base int) ([]any, error) {
	s.trips++
	one := &oneQuery{ctx: ctx, q: s.q, st: st}
	v, err := st.read(one)
	if err != nil {
		s.noteDoom(one.serverErr())
		return nil, s.afterClientFailure(&StatementError{SQL: st.sql, Index: base, Err: err}, one.serverErr(), nil)
	}
	s.opened = true
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	return []any{v}, nil
}

// plainArgs reports whether a statement with args may take pgx's plain query path with the same effect as in a batch.
// Without arguments pgx's Exec switches to the simple protocol, which would run several statements in one string
// (a COMMIT among them); a leading QueryExecMode would change the protocol too.
func plainArgs(args []any) bool {
	if len(args) == 0 {
		return false
	}
	_, mode := args[0].(pgx.QueryExecMode)
	return !mode
}

// oneQuery is the results of a single statement sent on its own: the statement reads them as it would from a batch.
// It keeps what the server answered, for afterClientFailure to judge once the statement has been read.
type oneQuery struct {
	ctx     context.Context
	q       querier
	st      *stmt
	execErr error
	rows    pgx.Rows
}

func (o *oneQuery) Exec() (pgconn.CommandTag, error) {
	tag, err := o.q.Exec(o.ctx, o.st.sql, o.st.args...)
	o.execErr = err
	return tag, err
}

func (o *oneQuery) Query() (pgx.Rows, error) {
	rows, err := o.q.Query(o.ctx, o.st.sql, o.st.args...)
	o.execErr, o.rows = err, rows
	return rows, err
}

// serverErr is the statement's error as pgx returned it, before the statement's reading made anything of it: that of
// Exec or Query, or else that of the rows, closed by then (the first error they met, the server's unless a Scan's).
func (o *oneQuery) serverErr() error {
	if o.execErr != nil || o.rows == nil {
		return o.execErr
	}
	return o.rows.Err()
}

func readPending(br results, pending []string) error {
	for _, p := range pending {
		if _, err := br.Exec(); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) { // the server refused this statement; other errors concern the whole batch
				return fmt.Errorf("tx: %s: %w", strings.ToLower(p), err)
			}
			return fmt.Errorf("tx: %w", err)
		}
	}
	return nil
}

// readStmts reads the results of stmts, and notes in s.ended a statement that ended the transaction: once one has,
// an error of a later statement is no longer "nothing was committed" (see endedError).
func (s *session) readStmts(br results, stmts []stmt, base int) ([]any, error) {
	res := make([]any, len(stmts))
	for i, st := range stmts {
		v, err := st.read(br)
		if err != nil {
			return nil, s.endedError(&StatementError{SQL: st.sql, Index: base + i, Err: err})
		}
		if tag, ok := v.(pgconn.CommandTag); ok && endedBy(st.sql, tag) {
			s.ended = true
		}
		res[i] = v
	}
	return res, nil
}

// afterClientFailure judges err, the failure of a round trip's statement, once the round trip is over (closeErr is
// what closing its results returned, nil if nothing did). A failure in the client (no rows for QueryOne, a Scan
// error) does not stop the server, which runs the rest of the round trip, and the rest of the failed statement's rows:
// what it did there must still count, though the client read none of it.
//
//   - The transaction ended (a COMMIT in user SQL after the failure): its work may have committed; ErrTxControl.
//   - The server failed the transaction after the client's failure: with a serialization failure or a deadlock, that
//     error is wrapped with err, for Run to restart the transaction; Recover must not roll it back to its savepoint
//     and commit what SERIALIZABLE refused (noteDoom has marked the session). When pgx did not return the server's
//     error (it keeps the first error of a batch, a Scan's), the client's failure is returned marked so that
//     Recover does not take it (hiddenFailure).
//
// err may also be the server's own failure of the statement that a MapError replaced; closeErr is then that failure,
// and the same rules hold. A failure the server reported as it is made it skip the rest of the round trip, and is
// returned as it is.
func (s *session) afterClientFailure(err, closeErr error, later []stmt) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || errors.Is(err, ErrTxControl) || s.closed() {
		return err
	}
	for i := range later {
		// Its tag was not read. The status alone misses COMMIT AND CHAIN, and COMMIT followed by BEGIN; nor can it
		// tell whether a failure the server met came before the statement or after. Either way it may have
		// committed the work.
		if endsTransaction(later[i].sql) {
			s.ended = true
			return s.endedError(err)
		}
	}
	switch s.txStatus() {
	case 'I':
		if s.opened || s.tx != nil { // not when BEGIN never ran (pgx refused the round trip before sending it)
			s.ended = true
			return s.endedError(err)
		}
	case 'E':
		if !errors.As(closeErr, &pgErr) {
			s.doomed = true
			return &hiddenFailure{err: err}
		}
		if dooms(closeErr) {
			// Both stay reachable: what the work's code made of its failure (a MapError's error, ErrNoRows), and the
			// server's failure, by which Run restarts the transaction.
			return fmt.Errorf("%w (the server failed the transaction: %w)", err, closeErr)
		}
	}
	return err
}

// after returns the statements of stmts (from position base of the caller's list) after the one err names, which the
// server ran or skipped unread; all of them when err names none.
func after(err error, stmts []stmt, base int) []stmt {
	var se *StatementError
	if errors.As(err, &se) {
		if j := se.Index - base; j >= 0 && j < len(stmts) {
			return stmts[j+1:]
		}
	}
	return stmts
}

// hiddenFailure is a failure in the client after which the server failed the transaction with an error pgx did not
// return. It may have been a serialization failure, so Recover does not roll it back (see afterClientFailure).
type hiddenFailure struct{ err error }

func (e *hiddenFailure) Error() string {
	return e.err.Error() + " (the server then failed the transaction too, with an error pgx did not return)"
}

func (e *hiddenFailure) Unwrap() error { return e.err }

// endedError is err, unless user SQL ended the transaction before it: then part of the work may have committed on
// its own, and the error says so, wrapping ErrTxControl and no longer what failed after (whose class, a lost
// connection say, would have the whole work run again).
func (s *session) endedError(err error) error {
	if !s.ended {
		return err
	}
	return fmt.Errorf("%w; then: %v", errEnded(), err)
}

// lookNow decides whether the round trip carrying stmts also reads the transaction id (see probe.go). Either way
// the id counts as stale until readXid has read it, so a round trip that fails before the answer is read is looked at
// again by the next one or by COMMIT.
func (s *session) lookNow(stmts []stmt) bool {
	for i := range stmts {
		s.noteUnseen(stmts[i].unseen)
	}
	if !s.trackXid || s.xid != 0 {
		return false
	}
	s.xidStale = true
	return s.assignLook || s.owed || s.more == 0 || mayWrite(stmts)
}

// pgConn is the connection the session's statements go over; nil for test doubles.
// pgxConn returns the session's connection: its own, or that of a plain db's transaction; nil for test doubles.
func (s *session) pgxConn() *pgx.Conn {
	if s.conn == nil && s.tx != nil {
		return s.tx.Conn()
	}
	return s.conn
}

func (s *session) pgConn() *pgconn.PgConn {
	c := s.pgxConn()
	if c == nil {
		return nil
	}
	return c.PgConn()
}

// needHistory reports whether a look at the transaction id must also read the server's history (historyRowSQL):
// the connection has none cached yet. A cached one becomes the session's.
func (s *session) needHistory() bool {
	h, ok := connHistory(s.pgConn())
	if ok {
		s.hist = h
	}
	return !ok
}

// queueXid queues the transaction-id look, followed by the server's history when the connection has none cached
// yet, and reports whether it asked for the history.
func (s *session) queueXid(b *pgx.Batch) bool {
	withHist := s.needHistory()
	b.Queue(s.xidLook())
	if withHist {
		b.Queue(historyRowSQL)
	}
	return withHist
}

// readXid reads the answers to what queueXid queued. It reads the raw column values instead of scanning: the probe
// is on every writing transaction's path, and pgx's scan plans for nullable columns allocate several times.
func (s *session) readXid(br results, withHist bool) error {
	var xid int64
	var found bool
	err := readRawRow(br, func(vals [][]byte, fds []pgconn.FieldDescription) (err error) {
		if len(vals) != 1 || len(fds) != 1 {
			return fmt.Errorf("the look answered %d columns, not 1: a result out of step", len(vals))
		}
		xid, found, err = rawInt8(vals[0], fds[0].Format)
		return err
	})
	var h history
	var pid int64
	if err == nil && withHist {
		err = readRawRow(br, func(vals [][]byte, fds []pgconn.FieldDescription) (err error) {
			if len(vals) != 5 || len(fds) != 5 {
				return fmt.Errorf("the history look answered %d columns, not 5: a result out of step", len(vals))
			}
			if vals[0] == nil {
				return nil
			}
			h.system = string(vals[0])
			if h.timeline, _, err = rawInt8(vals[1], fds[1].Format); err != nil {
				return err
			}
			if h.started, _, err = rawInt8(vals[2], fds[2].Format); err != nil {
				return err
			}
			if h.reset, _, err = rawInt8(vals[3], fds[3].Format); err != nil {
				return err
			}
			pid, _, err = rawInt8(vals[4], fds[4].Format)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("tx: reading transaction id: %w", err)
	}
	if h.system != "" {
		s.hist = h
		rememberHistory(s.pgConn(), h, uint32(pid))
	}
	if found {
		s.xid = xid
	}
	s.xidStale, s.owed = false, false
	return nil
}

// readRawRow reads the next result of br, a single row, handing its raw column values to f.
func readRawRow(br results, f func([][]byte, []pgconn.FieldDescription) error) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	if rows.Next() {
		err = f(rows.RawValues(), rows.FieldDescriptions())
	}
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	return err
}

// rawInt8 decodes a bigint (or xid8) column value in either wire format; ok is false for NULL.
func rawInt8(v []byte, format int16) (n int64, ok bool, err error) {
	switch {
	case v == nil:
		return 0, false, nil
	case format == pgx.BinaryFormatCode && len(v) == 8:
		return int64(binary.BigEndian.Uint64(v)), true, nil
	case format == pgx.TextFormatCode:
		n, err = strconv.ParseInt(string(v), 10, 64)
		return n, err == nil, err
	}
	return 0, false, fmt.Errorf("unexpected bigint value of %d bytes in format %d", len(v), format)
}

// flush sends the pending statements on their own, before user pgx code talks to the connection.
func (s *session) flush(ctx context.Context) error {
	if len(s.pending) == 0 {
		return nil
	}
	// Every pending statement is fixed text made here (savepoint names are generated), so joining them into one
	// simple-protocol query is safe, and costs one round trip.
	sql := strings.Join(s.pending, "; ")
	if pc := s.pgConn(); pc != nil && pc.IsBusy() {
		// Rows of Func code still open: pgx would refuse the query without sending it, and what is pending (a ROLLBACK
		// TO that a savepoint's Rollback queued) must stay pending rather than be counted as sent.
		return fmt.Errorf("tx: %s: %w", strings.ToLower(sql), errConnBusy)
	}
	s.pending, s.trips = nil, s.trips+1
	if _, err := s.q.Exec(ctx, sql); err != nil {
		s.noteDoom(err)
		return fmt.Errorf("tx: %s: %w", strings.ToLower(sql), err)
	}
	s.opened = true
	return nil
}

// savepoint queues a new savepoint and returns a mark to release or roll back to it.
func (s *session) savepoint() spMark {
	s.savepoints++
	m := spMark{name: "pgxact_sp_" + strconv.Itoa(s.savepoints), trips: s.trips, hooks: len(s.hooks)}
	s.pending = append(s.pending, "SAVEPOINT "+m.name)
	return m
}

type spMark struct {
	name  string
	trips int // round trips made when the savepoint was queued
	hooks int // AfterCommit hooks registered before it
}

// sent reports whether the SAVEPOINT has reached the server.
func (s *session) sent(m spMark) bool { return s.trips != m.trips }

// queued returns the position of m's SAVEPOINT among the pending statements, or -1 when it is no longer there. It is
// searched for, not remembered: savepoints of user pgx code (Func's Begin) can end out of order, and an outer one
// ending first drops the inner ones with it, as on the server.
func (s *session) queued(m spMark) int { return slices.Index(s.pending, "SAVEPOINT "+m.name) }

// release ends a savepoint whose work succeeded. If nothing was sent since it was queued, it is simply dropped.
func (s *session) release(m spMark) {
	if !s.sent(m) {
		if i := s.queued(m); i >= 0 {
			s.pending = slices.Delete(s.pending, i, i+1)
		}
		return
	}
	s.pending = append(s.pending, "RELEASE SAVEPOINT "+m.name)
}

// rollbackTo undoes the work since a savepoint, including AfterCommit hooks registered inside it. The ROLLBACK TO is
// queued for the next round trip: everything after the savepoint belongs to the failed work, and the server will not
// accept other statements first anyway.
func (s *session) rollbackTo(m spMark) {
	s.hooks = s.hooks[:min(m.hooks, len(s.hooks))]
	if !s.sent(m) {
		if i := s.queued(m); i >= 0 {
			s.pending = s.pending[:i]
		}
		return
	}
	// Whatever is still pending was queued inside the failed scope, after the savepoint was sent.
	s.pending = append(s.pending[:0], "ROLLBACK TO SAVEPOINT "+m.name)
	// A statement of the scope may have made, dropped or renamed what later statements name, which the ROLLBACK TO
	// undoes: then it must run before they are prepared (see savepointPending).
	s.rollbackRenames = s.renamed > m.trips
}

// commit ends the transaction. It returns an *ambiguousError when COMMIT may have reached the server without its
// answer reaching us.
func (s *session) commit(ctx context.Context) error {
	if !s.began() {
		return nil // BEGIN never left: there is nothing to commit
	}
	if err := s.checkOpen(); err != nil {
		return err // user code ended the transaction: a COMMIT now would only draw a warning and look like success
	}
	if pc := s.pgConn(); pc != nil && pc.IsBusy() {
		// Func code left rows open: pgx would refuse the COMMIT before sending it, and that is no lost answer. The
		// connection cannot be used again until they are read; abort closes it. The statement whose results are
		// open has run, though, and may have been a COMMIT of the user's own (judged before a done ctx, which
		// would say only that our COMMIT was not sent).
		if s.leftOpenMayEnd() {
			return errEnded()
		}
		return errBusy
	}
	if err := ctx.Err(); err != nil {
		// pgx sends nothing on a done ctx, so COMMIT never leaves and abort rolls back. Failing here keeps that from
		// being taken for a COMMIT whose answer was lost, which would be reported as an unknown outcome.
		return fmt.Errorf("tx: commit not sent: %w", err)
	}
	if s.tx != nil {
		return s.commitTx(ctx)
	}
	if s.aborted() {
		if err := s.flush(ctx); err != nil { // see send
			return fmt.Errorf("tx: commit: %w", err)
		}
	}
	capture := s.trackXid && s.xid == 0 && s.xidStale
	var tag pgconn.CommandTag
	var err error
	if len(s.pending) == 0 && !capture && !s.wantLSN {
		tag, err = s.conn.Exec(ctx, "COMMIT")
	} else {
		tag, err = s.commitBatch(ctx, capture)
	}
	return commitResult(tag, err)
}

func (s *session) commitBatch(ctx context.Context, capture bool) (tag pgconn.CommandTag, err error) {
	b := &pgx.Batch{}
	for _, p := range s.pending {
		b.Queue(p)
	}
	var withHist bool
	if capture {
		withHist = s.queueXid(b)
	}
	b.Queue("COMMIT")
	if s.wantLSN {
		b.Queue(lsnSQL)
	}
	pending := s.pending
	s.pending = nil
	br := s.conn.SendBatch(ctx, b)
	committed := false
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil && !committed {
			err = cerr
		}
	}()
	if err := readPending(br, pending); err != nil {
		return tag, s.beforeCommit(br, err)
	}
	if capture {
		if err := s.readXid(br, withHist); err != nil {
			return tag, s.beforeCommit(br, err)
		}
	}
	if tag, err = br.Exec(); err != nil {
		return tag, err
	}
	committed = tag.String() == "COMMIT"
	s.readLSN(br)
	// COMMIT's answer is in: whatever closing the batch reports now (the position query refused, the connection
	// lost before the last ReadyForQuery) cannot undo the commit, nor make it unknown.
	return tag, nil
}

// lsnSQL runs after COMMIT, outside the transaction: the position it reports is at or past our commit record. The
// timeline is the one the server inserts WAL on, which a WAL file's name starts with (8 hex digits); it is the new one
// as soon as a promoted server accepts writes, unlike pg_control_checkpoint's, which waits for a checkpoint.
const lsnSQL = `SELECT l::text, ('x' || substr(pg_walfile_name(l), 1, 8))::bit(32)::bigint
	FROM pg_current_wal_insert_lsn() l`

// commitPosition is lsnSQL's answer.
type commitPosition struct {
	LSN      string
	Timeline int64
}

// readLSN reads the answer to lsnSQL when the session asked for it.
func (s *session) readLSN(br results) {
	if !s.wantLSN {
		return
	}
	rows, err := br.Query()
	var at commitPosition
	if err == nil {
		at, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[commitPosition])
	}
	if err != nil || at.Timeline <= 0 || at.Timeline > math.MaxUint32 {
		s.lsn, s.timeline = "", 0 // committed all the same; the recorder hears that the position is unknown
		return
	}
	s.lsn, s.timeline = at.LSN, uint32(at.Timeline)
}

// commitTx commits through a plain db's pgx.Tx, after sending what is pending.
func (s *session) commitTx(ctx context.Context) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	if s.trackXid && s.xid == 0 && s.xidStale {
		b := &pgx.Batch{}
		withHist := s.queueXid(b)
		br := s.tx.SendBatch(ctx, b)
		err := s.readXid(br, withHist)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return commitResult(pgconn.CommandTag{}, s.tx.Commit(ctx))
}

// notCommitted is an error of the COMMIT round trip that struck before COMMIT ran, as the connection shows.
type notCommitted struct{ err error }

func (e *notCommitted) Error() string { return e.err.Error() }
func (e *notCommitted) Unwrap() error { return e.err }

// beforeCommit is err, a failure of the COMMIT round trip before COMMIT's own answer was read. It reads the rest of
// the round trip; if the connection is still open and still in the transaction ('T': pgx refused the batch before
// sending it, an argument it could not encode, say; 'E': the server's ERROR skipped everything after it, COMMIT
// included), COMMIT did not run, and the error is no unknown outcome.
func (s *session) beforeCommit(br batchResults, err error) error {
	_ = br.Close()
	if s.closed() {
		return err
	}
	if st := s.txStatus(); st == 'T' || st == 'E' {
		return &notCommitted{err: err}
	}
	return err
}

func commitResult(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return commitFailure(tag, err)
	}
	if tag.String() == "ROLLBACK" {
		return fmt.Errorf("tx: commit: %w", pgx.ErrTxCommitRollback)
	}
	return nil
}

// commitFailure is commitResult for an error: a function of its own so that the error variables errors.As needs
// escape only on this path, not on every COMMIT.
func commitFailure(tag pgconn.CommandTag, err error) error {
	if nc := (*notCommitted)(nil); errors.As(err, &nc) {
		return fmt.Errorf("tx: commit did not run: %w", nc.err)
	}
	if pre := (pgx.ErrPreprocessingBatch{}); errors.As(err, &pre) {
		// pgx failed to prepare or encode a statement ahead of COMMIT and sent nothing after it: a lost connection
		// here is retried like any other before COMMIT.
		return markUncommitted(fmt.Errorf("tx: commit not sent: %w", err))
	}
	if tag.String() == "COMMIT" {
		// The server answered COMMIT; the connection failed after (before its ReadyForQuery): committed.
		return nil
	}
	if ambiguous(err) {
		return &ambiguousError{err: err}
	}
	return fmt.Errorf("tx: commit: %w", err)
}

// abort rolls the transaction back. It runs on errors and panics, so it must work with a cancelled ctx.
func (s *session) abort(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	s.pending = nil
	if s.tx != nil {
		_ = s.tx.Rollback(ctx)
		return
	}
	pc := s.conn.PgConn()
	if pc.IsBusy() {
		// A panic left a result unread. No ROLLBACK can go out before it is, so the connection cannot be made usable
		// again: close it, as pgx does with a busy pgx.Tx. A pool would discard it anyway; a *pgx.Conn or an Acquirer's
		// connection would otherwise stay busy, inside the transaction, for good. The context is already done, so
		// closing does not wait for the server.
		closing, stop := context.WithCancel(context.Background())
		stop()
		_ = s.conn.Close(closing)
		return
	}
	if s.conn.IsClosed() || pc.TxStatus() == 'I' {
		return // closed connections are discarded by their pool; idle ones have nothing to undo
	}
	if _, err := s.conn.Exec(ctx, "ROLLBACK"); err != nil {
		_ = s.conn.Close(ctx) // never hand back a connection that may still be inside the transaction
	}
}

func (s *session) close() {
	if s.pooled != nil && unreadableText(s.pgConn()) != nil && !s.conn.IsClosed() {
		// A connection the runner took from a pool itself, whose text it cannot read (a work's SET that a COMMIT
		// kept, or the pool's configuration): closed, so that the pool does not lend it again. A caller's
		// *pgx.Conn is theirs, and so is an Acquirer's, which may lend one (txtest.Inject over a *pgx.Conn).
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		_ = s.conn.Close(ctx)
		cancel()
	}
	if s.pooled != nil {
		s.pooled.Release()
		s.pooled = nil
	}
	if s.giveBack != nil {
		s.giveBack()
		s.giveBack = nil
	}
}

// cleanupTimeout bounds rollbacks and commit-outcome checks, which run even after ctx is done.
const cleanupTimeout = 5 * time.Second
