package tx

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// handle is the pgx.Tx that Func code receives. It sends what the session has pending before anything of the user's,
// so fused BEGINs and deferred savepoint statements reach the server in order. Commit and Rollback on the top-level
// handle fail with ErrTxControl; on handles from Begin they release or roll back a savepoint, as in pgx.
//
// Every Func call gets a handle of its own, closed when its function returns, with the savepoint handles begun from
// it: like pgx's Tx once ended, a closed handle refuses everything with pgx.ErrTxClosed. A handle kept past its
// function would otherwise send on a connection that has gone on to later work, or back to the pool.
//
// The handle also reads the command tag of every result it passes on (endedBy): COMMIT AND CHAIN and ROLLBACK AND
// CHAIN end the transaction but leave the connection in the next one, which its status does not show.
type handle struct {
	s    *session
	sp   *spMark // nil for the top level
	done bool
}

var _ pgx.Tx = (*handle)(nil)

// handle prepares the session for user pgx code, and returns the handle of one Func call.
func (s *session) handle(ctx context.Context) (*handle, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	s.xidStale, s.owed = true, true // user code may write without our noticing
	s.userConn = true
	s.renamed = s.trips // and change what names refer to, after the round trips made so far (a SAVEPOINT just flushed)
	return &handle{s: s}, nil
}

// close ends the handle of a Func call whose function has returned, and the savepoint handles it left open. Their
// savepoints stay on the server, where the transaction's end ends them; only the handles close.
func (h *handle) close() {
	h.done = true
	for _, c := range h.s.open {
		c.done = true
	}
	clear(h.s.open)
	h.s.open = h.s.open[:0]
}

func (h *handle) ready(ctx context.Context) error {
	if h.done {
		return pgx.ErrTxClosed
	}
	if err := unreadableText(h.s.pgConn()); err != nil {
		return err // an earlier statement of the work turned it off: nothing more goes out (see unreadableText)
	}
	if err := h.s.flush(ctx); err != nil {
		return err
	}
	// What user code sends now may change what names refer to, also under a savepoint of its own (q.Begin) whose
	// SAVEPOINT the flush just sent: a ROLLBACK TO of it must go first (see rollbackTo).
	h.s.renamed = h.s.trips
	return nil
}

// noteTag records in the session that the statement sql, answered with tag, ended the transaction.
func (h *handle) noteTag(sql string, tag pgconn.CommandTag) {
	text := h.text(sql)
	if endedBy(text, tag) {
		h.s.ended = true
	}
	if tag.String() == "" {
		return
	}
	if f := factsOf(text); f.several && f.mayEnd() {
		// The tag is the last statement's: a COMMIT before it ("COMMIT; BEGIN") ran too, and only its text tells.
		h.s.ended = true
	}
}

// text is the text of user SQL: that of a statement run by the name Prepare gave it, sql itself otherwise.
func (h *handle) text(sql string) string {
	if text, ok := h.s.prepared[sql]; ok {
		return text
	}
	return sql
}

func (h *handle) Begin(ctx context.Context) (pgx.Tx, error) {
	if h.done {
		return nil, pgx.ErrTxClosed
	}
	m := h.s.savepoint()
	child := &handle{s: h.s, sp: &m}
	h.s.open = append(h.s.open, child)
	return child, nil
}

func (h *handle) Commit(ctx context.Context) error {
	return h.end((*session).release)
}

func (h *handle) Rollback(ctx context.Context) error {
	return h.end((*session).rollbackTo)
}

// end releases or rolls back h's savepoint. Savepoints begun after h and still open end with it, innermost first,
// as the server ends them: user code may end them in any order, and a handle ended that way is closed.
func (h *handle) end(op func(*session, spMark)) error {
	if h.done {
		return pgx.ErrTxClosed
	}
	if h.sp == nil {
		return ErrTxControl
	}
	open := h.s.open
	i := slices.Index(open, h)
	for j := len(open) - 1; j >= i; j-- { // i is never -1: a handle leaves open only when it is done
		open[j].done = true
		op(h.s, *open[j].sp)
	}
	clear(open[i:])
	h.s.open = open[:i]
	return nil
}

func (h *handle) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if err := h.ready(ctx); err != nil {
		return 0, err
	}
	n, err := h.s.q.CopyFrom(ctx, table, cols, src)
	h.s.noteDoom(err)
	return n, err
}

func (h *handle) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := h.ready(ctx); err != nil {
		return errBatch{err}
	}
	for _, q := range b.QueuedQueries {
		h.seen(q.SQL)
		h.sends(q.SQL)
	}
	// A connection busy with rows still open makes pgx refuse the batch ("conn busy") without sending any of it.
	pc := h.s.pgConn()
	busy := pc != nil && pc.IsBusy()
	hb := &handleBatch{BatchResults: h.s.q.SendBatch(ctx, b), h: h, qs: b.QueuedQueries, unsent: busy}
	if !busy {
		h.s.lastResults = hb
	}
	return hb
}

// LargeObjects is pgx's large-object API over h: its calls go through h like any other statement, so they send what
// is pending first (BEGIN, the SAVEPOINT of a handle from Begin), fail as statements do when the connection is lost
// (and are retried as such), and fail with pgx.ErrTxClosed once h is closed.
func (h *handle) LargeObjects() pgx.LargeObjects {
	return largeObjectsOver(h)
}

// largeObjectsOver returns a pgx.LargeObjects whose calls go through tx. pgx makes them only over its own
// transactions, keeping the pgx.Tx in an unexported field, and the only way to have one over this package's handle is
// to set that field. The other ways all fail where it matters: one of pgx's transactions over the connection (begun
// with a no-op BEGIN) needs a round trip, so it cannot be had on a lost connection but by panicking, and its calls skip
// the handle's pending statements and its closing.
func largeObjectsOver(tx pgx.Tx) pgx.LargeObjects {
	if !largeObjectsLayout {
		panic("tx: this version of pgx keeps something other than a pgx.Tx in pgx.LargeObjects; pgxact needs updating")
	}
	var lo pgx.LargeObjects
	*(*pgx.Tx)(unsafe.Pointer(&lo)) = tx
	return lo
}

// largeObjectsLayout checks that pgx.LargeObjects is what largeObjectsOver sets: one field, a pgx.Tx (pgx v5). A pgx
// that changes it fails TestLargeObjectsLayout, and largeObjectsOver refuses rather than corrupt memory.
var largeObjectsLayout = func() bool {
	t := reflect.TypeFor[pgx.LargeObjects]()
	return t.NumField() == 1 && t.Field(0).Type == reflect.TypeFor[pgx.Tx]() && t.Field(0).Offset == 0
}()

func (h *handle) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := h.ready(ctx); err != nil {
		return nil, err
	}
	h.seen(sql) // an Exec by name later shows nothing of the text
	sd, err := h.s.q.Prepare(ctx, name, sql)
	h.s.noteDoom(err)
	if err == nil && name != "" {
		if h.s.prepared == nil {
			h.s.prepared = map[string]string{}
		}
		h.s.prepared[name] = sql // for noteTag: ROLLBACK TO is told apart by its text
	}
	return sd, err
}

func (h *handle) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := h.ready(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	// Func code sends the same texts transaction after transaction: their facts come from the table Exec's and
	// Query's statements use, not from lexing each text several times a call.
	f := factsOf(sql)
	h.s.noteUnseen(f.write)
	h.sends(sql)
	var tag pgconn.CommandTag
	var err error
	// Not for a text of several statements: pgx's simple protocol runs them all, and the look would read the
	// result of the second as the transaction id. COMMIT's batch looks then.
	if h.s.trackXid && h.s.xid == 0 && plainArgs(args) && (f.write != 0 || !f.reads) && !f.several {
		tag, err = h.s.execLooking(ctx, sql, args)
	} else {
		tag, err = h.s.q.Exec(ctx, sql, args...)
	}
	h.noteTag(sql, tag)
	h.s.noteDoom(err) // before user code can make anything else of it
	return tag, err
}

// execLooking runs an Exec of user code with the transaction-id look in the same round trip, while no id is known.
// Otherwise the only look after user code is the one in the COMMIT batch, whose answer a lost COMMIT takes with it.
// Only an id found is kept: "no id yet" says nothing about what user code sends next, perhaps through Conn(), so
// the session stays unlooked and COMMIT still looks.
func (s *session) execLooking(ctx context.Context, sql string, args []any) (pgconn.CommandTag, error) {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	withHist := s.queueXid(b)
	br := s.q.SendBatch(ctx, b)
	tag, err := br.Exec()
	if err == nil {
		err = s.readXid(br, withHist)
		if s.xid == 0 {
			s.xidStale, s.owed = true, true
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (h *handle) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := h.ready(ctx); err != nil {
		// Rows that report the error too, as pgx's: its documentation lets callers read the error from the rows.
		return errRows{err}, err
	}
	h.seen(sql)
	h.sends(sql)
	// A busy connection makes pgx refuse the query without sending it, and in some modes return rows that report
	// the refusal only when read: such rows must not take the place of the open ones that made it busy.
	pc := h.s.pgConn()
	busy := pc != nil && pc.IsBusy()
	rows, err := h.s.q.Query(ctx, sql, args...)
	if err != nil {
		h.s.noteDoom(err)
		return rows, err // no tag to read
	}
	r := &handleRows{Rows: rows, h: h, sql: sql}
	if !busy {
		h.s.lastResults = r
	}
	return r, nil
}

// QueryRow goes through Query, so that the tag of its statement is read as well; pgx's rows give no way to it.
func (h *handle) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := h.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return (*handleRow)(rows.(*handleRows))
}

// sends notes a statement of user code about to go out whose text (or the text of the statement it names) may end
// the transaction: its answer, lost with the connection, would leave the outcome open (see session.endSent).
func (h *handle) sends(sql string) {
	if !h.s.closed() && factsOf(h.text(sql)).mayEnd() { // (on a closed connection pgx sends nothing)
		h.s.userEnd = true
	}
}

// seen notes what the text of user SQL tells the look: whether it may notify (see probe.go).
func (h *handle) seen(sql string) {
	h.s.noteUnseen(factsOf(sql).write)
}

// Conn returns the connection, also once h is closed, as pgx's Tx does once ended. What code sends on it directly
// escapes the handle: its pending statements, its closing, and the reading of command tags (see Func).
func (h *handle) Conn() *pgx.Conn {
	if h.s.tx != nil {
		return h.s.tx.Conn()
	}
	return h.s.conn
}

// handleRows are the rows of a Query through a handle, whose command tag is read once they are closed: by Close, or
// by Next when they end (pgx's rows close themselves then, out of sight of this wrapper).
type handleRows struct {
	pgx.Rows
	h      *handle
	sql    string
	judged bool         // the rows' end was judged (see judge)
	batch  *handleBatch // the batch whose result the rows are, which judges hidden failures when it closes
}

func (r *handleRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.h.noteTag(r.sql, r.Rows.CommandTag())
	r.judge()
	return false
}

// Scan and Values close pgx's rows when they fail: their end is judged then, not when user code closes them later.
func (r *handleRows) Scan(dest ...any) error {
	err := r.Rows.Scan(dest...)
	if err != nil {
		r.judge()
	}
	return err
}

func (r *handleRows) Values() ([]any, error) {
	v, err := r.Rows.Values()
	if err != nil {
		r.judge()
	}
	return v, err
}

func (r *handleRows) Close() {
	r.Rows.Close()
	r.h.noteTag(r.sql, r.Rows.CommandTag())
	r.judge()
}

// judge notes, once and as soon as the rows have ended, whether they doomed the session: the server's serialization
// failure or deadlock, or a failure of the server's that pgx hid behind a Scan's error. Judged later (a deferred
// Close), the connection's status would speak of statements sent since.
func (r *handleRows) judge() {
	if r.judged {
		return
	}
	r.judged = true
	r.h.s.noteDoom(r.Rows.Err())
	if r.batch != nil {
		// A batch's status is the server's only once the batch is closed: until then it may still speak of the
		// statements before the batch (handleBatch.Close judges).
		r.batch.saw(r.Rows.Err())
		return
	}
	r.h.s.noteHidden(r.Rows.Err())
}

// mayEnd reports whether the rows, not read to their end, are those of a statement whose text ends the transaction.
func (r *handleRows) mayEnd() bool {
	return !r.judged && endsTransaction(r.h.text(r.sql))
}

// handleRow is the pgx.Row of QueryRow through a handle: it scans as pgx's does, from rows whose tag the handle reads.
type handleRow handleRows

func (r *handleRow) Scan(dest ...any) error {
	rows := (*handleRows)(r)
	if err := rows.Err(); err != nil {
		return err
	}
	for _, d := range dest {
		if _, ok := d.(*pgtype.DriverBytes); ok {
			rows.Close()
			return fmt.Errorf("cannot scan into *pgtype.DriverBytes from QueryRow")
		}
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		rows.Close()
		return err
	}
	rows.Close()
	return rows.Err()
}

// handleBatch is the pgx.BatchResults of a batch sent through a handle: it reads the command tag of every result.
type handleBatch struct {
	pgx.BatchResults
	h      *handle
	qs     []*pgx.QueuedQuery
	i      int   // the next result's statement
	failed error // the first error a result read through b returned
	server bool  // a result read through b returned the server's failure: the batch hid none (it meets one at most)
	// unread is where the statements left to pgx's Close begin once a result failed in the client: in the pipelined
	// modes pgx reads no result after rows that failed, whatever b is asked next (see unreadEnd).
	unread   int
	unsent   bool          // pgx refused the batch before sending it: the connection was busy
	rows     []*handleRows // rows handed out, which Close closes first, reading their tags (pgx would, out of sight)
	closed   bool          // Close has run: a second call returns closeErr and judges nothing again
	closeErr error
}

// saw notes an error a result read through b returned to user code, its rows' included: as pgx's Close, b's runs no
// callback after one.
func (b *handleBatch) saw(err error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		b.server = true
	}
	if b.failed == nil && err != nil {
		b.failed, b.unread = err, b.i
	}
}

// next returns the text of the statement whose result is read next.
func (b *handleBatch) next() string {
	if b.i >= len(b.qs) {
		return "" // a read past the last result, which pgx answers with an error
	}
	b.i++
	return b.qs[b.i-1].SQL
}

// closeRows closes the rows b handed out, as pgx does before it reads the next result: their tag is read while
// pgconn's one result reader is still theirs (closed later, they would read and answer for a later statement).
func (b *handleBatch) closeRows() {
	for _, r := range b.rows {
		r.Close()
	}
	b.rows = b.rows[:0]
}

func (b *handleBatch) Exec() (pgconn.CommandTag, error) {
	b.closeRows()
	sql := b.next()
	tag, err := b.BatchResults.Exec()
	b.h.noteTag(sql, tag)
	b.fail(err)
	return tag, err
}

func (b *handleBatch) fail(err error) {
	b.h.s.noteDoom(err)
	b.saw(err)
}

func (b *handleBatch) Query() (pgx.Rows, error) {
	b.closeRows()
	sql := b.next()
	rows, err := b.BatchResults.Query()
	b.fail(err)
	if err != nil || rows == nil {
		return rows, err
	}
	r := &handleRows{Rows: rows, h: b.h, sql: sql, batch: b}
	b.rows = append(b.rows, r)
	return r, nil
}

func (b *handleBatch) QueryRow() pgx.Row {
	rows, err := b.Query()
	if err != nil {
		return errRow{err}
	}
	return (*handleRow)(rows.(*handleRows))
}

// Close reads the results not read yet through b, running their callbacks as pgx's Close does (none after one has
// failed): pgx's Close would read them out of b's sight, and one of them may be a COMMIT AND CHAIN.
func (b *handleBatch) Close() error {
	if b.closed {
		// As pgx's Close, which returns the same error again. Judging again would read a status that statements
		// sent since (a deferred Close after more work) have made, and take their failure for one the batch hid.
		return b.closeErr
	}
	b.closed = true
	b.closeErr = b.close()
	return b.closeErr
}

func (b *handleBatch) close() error {
	b.closeRows() // as pgx's Close would, but reading the tag: the statement may have been a COMMIT AND CHAIN
	var fnErr error
	for b.i < len(b.qs) && b.failed == nil && fnErr == nil {
		at := b.i
		if fn := b.qs[at].Fn; fn != nil {
			fnErr = fn(b)
		}
		if b.i == at && fnErr == nil { // no callback to read it, or one that did not
			_, _ = b.Exec() // an error stops the loop; pgx's Close reports it, the server skipped the rest
		}
	}
	b.closeRows() // a callback's, which pgx's Close would otherwise read out of sight
	if fnErr != nil {
		// pgx's Close would run the callbacks left, which its own Close never does after one failed: it reads their
		// results without them, and returns the server's own error if one failed there.
		defer b.withoutCallbacks()()
	}
	if pc := b.h.s.pgConn(); !b.server && !b.unsent && pc != nil && pc.IsBusy() {
		// (Not busy: pgx sent nothing, having refused the batch, or has nothing left to read.)
		b.unreadEnd()
	}
	err := b.BatchResults.Close()
	b.h.s.noteDoom(err) // the server's failure after a callback's own error, which pgx's Close would have dropped
	if !b.server {
		// A Scan's error in rows of the batch is what pgx's Close returns then, dropping any failure of the server's
		// met while it read the rest: rows judged on their own could not tell, since in a pipeline the connection's
		// status is known only once the batch is closed. A batch meets one server failure at most: one user code
		// was given hid nothing.
		b.h.s.noteHidden(err)
	}
	if fnErr != nil {
		return fnErr
	}
	return err
}

// unreadEnd notes a transaction that statements of b that user code will not read may end: after a failure in the
// client (rows that failed a Scan, a callback's error) the server runs them all, and pgx's Close reads their tags
// out of b's sight. Only their text tells, as for the runner's own statements (see session.afterClientFailure).
func (b *handleBatch) unreadEnd() {
	if b.mayEnd() {
		b.h.s.ended = true
	}
}

// mayEnd reports whether a statement of b whose result user code has not read to its end (rows still open, results
// not read, or read past by pgx after a failure in the client) is one whose text ends the transaction.
func (b *handleBatch) mayEnd() bool {
	for _, r := range b.rows {
		if r.mayEnd() {
			return true
		}
	}
	from := b.i
	if b.failed != nil {
		from = min(from, b.unread)
	}
	for _, q := range b.qs[from:] {
		if endsTransaction(b.h.text(q.SQL)) {
			return true
		}
	}
	return false
}

// withoutCallbacks takes the callbacks off the statements not read yet, and returns what puts them back: the batch
// is the caller's.
func (b *handleBatch) withoutCallbacks() (restore func()) {
	rest := b.qs[b.i:]
	fns := make([]func(pgx.BatchResults) error, len(rest))
	for i, q := range rest {
		fns[i], q.Fn = q.Fn, nil
	}
	return func() {
		for i, q := range rest {
			q.Fn = fns[i]
		}
	}
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// errRows are the rows of a Query that could not be sent.
type errRows struct{ err error }

func (r errRows) Close()                                       {}
func (r errRows) Err() error                                   { return r.err }
func (r errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (r errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (r errRows) Next() bool                                   { return false }
func (r errRows) Scan(...any) error                            { return r.err }
func (r errRows) Values() ([]any, error)                       { return nil, r.err }
func (r errRows) RawValues() [][]byte                          { return nil }
func (r errRows) Conn() *pgx.Conn                              { return nil }
func (r errRows) TypeMap() *pgtype.Map                         { return nil }

type errBatch struct{ err error }

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return errRows(b), b.err }
func (b errBatch) QueryRow() pgx.Row                { return errRow(b) }
func (b errBatch) Close() error                     { return b.err }
func (b errBatch) Tx() pgx.Tx                       { return nil }
