package tx

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// handle is the pgx.Tx that Func code receives. It sends what the session has pending before anything of the user's,
// so fused BEGINs and deferred savepoint statements reach the server in order. Commit and Rollback on the top-level
// handle fail with ErrTxControl; on handles from Begin they release or roll back a savepoint, as in pgx.
type handle struct {
	s    *session
	sp   *spMark // nil for the top level
	done bool
}

var _ pgx.Tx = (*handle)(nil)

// handle prepares the session for user pgx code.
func (s *session) handle(ctx context.Context) (*handle, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	s.xidStale, s.owed = true, true // user code may write without our noticing
	if s.h == nil {
		s.h = &handle{s: s}
	}
	return s.h, nil
}

func (h *handle) ready(ctx context.Context) error {
	if h.done {
		return pgx.ErrTxClosed
	}
	return h.s.flush(ctx)
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
	if h.sp == nil {
		return ErrTxControl
	}
	if h.done {
		return pgx.ErrTxClosed
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
	return h.s.q.CopyFrom(ctx, table, cols, src)
}

func (h *handle) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := h.ready(ctx); err != nil {
		return errBatch{err}
	}
	for _, q := range b.QueuedQueries {
		h.seen(q.SQL)
	}
	return h.s.q.SendBatch(ctx, b)
}

// LargeObjects needs a pgx transaction object, which pgx builds only when it sends BEGIN itself; when the runner
// has already begun, a no-op query stands in for that BEGIN.
func (h *handle) LargeObjects() pgx.LargeObjects {
	if h.s.tx != nil {
		return h.s.tx.LargeObjects()
	}
	ctx := context.Background()
	// What is pending (BEGIN, a SAVEPOINT of this handle) must reach the server before the large-object calls do.
	if err := h.s.flush(ctx); err != nil {
		panic(fmt.Sprintf("tx: LargeObjects on a broken connection: %v", err))
	}
	lt, err := h.s.conn.BeginTx(ctx, pgx.TxOptions{BeginQuery: "SELECT 1"})
	if err != nil {
		panic(fmt.Sprintf("tx: LargeObjects on a broken connection: %v", err))
	}
	return lt.LargeObjects()
}

func (h *handle) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := h.ready(ctx); err != nil {
		return nil, err
	}
	h.seen(sql) // an Exec by name later shows nothing of the text
	return h.s.q.Prepare(ctx, name, sql)
}

func (h *handle) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := h.ready(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	u := unseenWrite(sql)
	h.s.noteUnseen(u)
	if h.s.trackXid && h.s.xid == 0 && plainArgs(args) && (u != 0 || !readsOnly(sql)) {
		return h.s.execLooking(ctx, sql, args)
	}
	return h.s.q.Exec(ctx, sql, args...)
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
		return nil, err
	}
	h.seen(sql)
	return h.s.q.Query(ctx, sql, args...)
}

func (h *handle) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := h.ready(ctx); err != nil {
		return errRow{err}
	}
	h.seen(sql)
	return h.s.q.QueryRow(ctx, sql, args...)
}

// seen notes what the text of user SQL tells the look: whether it may notify (see probe.go).
func (h *handle) seen(sql string) {
	h.s.noteUnseen(unseenWrite(sql))
}

func (h *handle) Conn() *pgx.Conn {
	if h.s.tx != nil {
		return h.s.tx.Conn()
	}
	return h.s.conn
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type errBatch struct{ err error }

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b errBatch) QueryRow() pgx.Row                { return errRow(b) }
func (b errBatch) Close() error                     { return b.err }
func (b errBatch) Tx() pgx.Tx                       { return nil }
