package tx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// wire sends a session's round trips straight through pgconn's batch (pgconn.ExecBatch), with every statement
// prepared once per connection and bound by its description. The messages are those pgx's own batches send in its
// default mode (QueryExecModeCacheStatement): Bind and Execute of a named prepared statement, one Sync at the end.
// What it saves is client work: pgx's batches go through pgconn's pipeline, whose request bookkeeping costs about
// thirty allocations a round trip, three times what a whole transaction of raw pgx allocates.
//
// A connection gets a wire only when pgx would have sent the same messages: its DefaultQueryExecMode is the default
// QueryExecModeCacheStatement (other modes exist for poolers, which the wire's named statements would break), its
// statement cache is enabled, and it has no Tracer (which would not see the statements). Otherwise, and for
// statements with pgx query options (a QueryRewriter such as pgx.NamedArgs), round trips go through pgx.Batch.
//
// A wire belongs to its connection and is kept in pgconn's CustomData; it is used by one session at a time, as the
// connection is.
type wire struct {
	off   bool // the connection's settings rule the wire out: pgx.Batch it is
	types *pgtype.Map

	stmts    map[string]*prepared // by SQL text
	recent   prepared             // sentinel of the recency ring: recent.next is the most recently used
	capacity int
	seq      uint64   // names statements: a name is never used twice on a connection, even after a failed Parse
	trip     uint64   // counts the wire's round trips
	drop     []string // statement names to close on the server at the next preparing round trip

	eqb     pgx.ExtendedQueryBuilder
	formats []int16                        // result formats of the round trip being built, sliced per statement
	sds     []*pgconn.StatementDescription // the round trip's statements, in order
	misses  []string
	sqls    []string // the round trip being built
	args    [][]any
	res     wireResults // the results of the round trip in flight: one round trip at a time, as on the connection
	rows    wireRows    // the rows of the result being read: one result at a time (see wireRows)
}

// prepared is one statement prepared on the connection, in the wire's recency ring.
type prepared struct {
	sd         *pgconn.StatementDescription
	prev, next *prepared
	trip       uint64 // the last round trip that used it: a statement is never evicted for one of its own round trip
}

const wireKey = "pgxact.wire"

// wireFor returns conn's wire, or nil when its round trips must go through pgx.Batch.
func wireFor(conn *pgx.Conn) *wire {
	if conn == nil {
		return nil
	}
	data := conn.PgConn().CustomData()
	w, ok := data[wireKey].(*wire)
	if !ok {
		w = newWire(conn)
		data[wireKey] = w
	}
	if w.off {
		return nil
	}
	return w
}

func newWire(conn *pgx.Conn) *wire {
	// Config copies the whole configuration: it is read once per connection, never per round trip.
	cfg := conn.Config()
	if cfg.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement || cfg.StatementCacheCapacity <= 0 ||
		cfg.Tracer != nil {
		return &wire{off: true}
	}
	w := &wire{types: conn.TypeMap(), stmts: make(map[string]*prepared), capacity: cfg.StatementCacheCapacity}
	w.recent.prev, w.recent.next = &w.recent, &w.recent
	return w
}

// takes reports whether the wire can send stmts: none of them starts its arguments with a pgx query option, and none
// is a text without spaces, which may be the name of a statement prepared on the connection with pgx's Prepare (an
// AfterConnect idiom): pgx runs those by name, and the wire cannot see pgx's names. pgx.Batch does what pgx does.
func (w *wire) takes(stmts []stmt) bool {
	for i := range stmts {
		if !strings.ContainsAny(stmts[i].sql, " \t\n\r\f\v") {
			return false
		}
		if len(stmts[i].args) > 0 {
			switch stmts[i].args[0].(type) {
			case pgx.QueryRewriter, pgx.QueryExecMode:
				return false
			}
		}
	}
	return true
}

// wireResults reads the answers of a wire round trip in the order its statements were queued.
type wireResults struct {
	w   *wire
	mrr *pgconn.MultiResultReader
	one *pgconn.ResultReader           // instead of mrr, for a round trip of one statement
	sds []*pgconn.StatementDescription // to forget a statement the server no longer accepts
	i   int
}

func (r *wireResults) next() (*pgconn.ResultReader, error) {
	i := r.i
	r.i++
	if r.one != nil {
		if i == 0 {
			return r.one, nil
		}
		return nil, errors.New("tx: the server sent fewer results than statements")
	}
	if r.mrr.NextResult() {
		return r.mrr.ResultReader(), nil
	}
	err := r.mrr.Close()
	if err == nil {
		err = errors.New("tx: the server sent fewer results than statements")
	}
	if i < len(r.sds) {
		r.w.invalidate(r.sds[i], err)
	}
	return nil, err
}

func (r *wireResults) Exec() (pgconn.CommandTag, error) {
	rr, err := r.next()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := rr.Close()
	if err != nil {
		r.w.invalidate(r.sds[r.i-1], err)
	}
	return tag, err
}

func (r *wireResults) Query() (pgx.Rows, error) {
	rr, err := r.next()
	if err != nil {
		return nil, err
	}
	r.w.rows.reset(r.w, r.sds[r.i-1], rr)
	return &r.w.rows, nil
}

func (r *wireResults) Close() error {
	if r.one != nil {
		// A statement alone whose result was never read has its refusal arrive here (see wireRows.Close).
		_, err := r.one.Close()
		if err != nil {
			r.w.invalidate(r.sds[0], err)
		}
		return err
	}
	return r.mrr.Close()
}

// send sends sqls with their args (nil for statements without) as one round trip. Statements new to the connection
// are prepared first, in one round trip of their own; a statement that fails to prepare is reported as a
// *prepareError, and nothing else has been sent.
func (w *wire) send(ctx context.Context, pc *pgconn.PgConn, sqls []string, args [][]any) (batchResults, error) {
	if err := w.prepareMissing(ctx, pc, sqls); err != nil {
		return nil, err
	}
	w.sds, w.formats = w.sds[:0], w.formats[:0]
	if len(sqls) == 1 {
		// One statement alone goes out through pgconn's own buffers, without building a batch.
		sd := w.use(sqls[0])
		if err := w.eqb.Build(w.types, sd, args[0]); err != nil {
			return nil, w.unbuildable(sd, 0, err)
		}
		w.sds = append(w.sds, sd)
		rr := pc.ExecStatement(ctx, sd, w.eqb.ParamValues, w.eqb.ParamFormats, w.eqb.ResultFormats)
		w.res = wireResults{w: w, one: rr, sds: w.sds}
		return &w.res, nil
	}
	var b pgconn.Batch
	for i, sql := range sqls {
		sd := w.use(sql)
		if err := w.eqb.Build(w.types, sd, args[i]); err != nil {
			return nil, w.unbuildable(sd, i, err)
		}
		at := len(w.formats)
		w.formats = append(w.formats, w.eqb.ResultFormats...)
		// The batch keeps each statement's result formats until its result is read; w.formats is not reused before
		// then, so slices of it are safe, and cost no allocation once it has grown.
		b.ExecStatement(sd, w.eqb.ParamValues, w.eqb.ParamFormats, w.formats[at:len(w.formats):len(w.formats)])
		w.sds = append(w.sds, sd)
	}
	w.res = wireResults{w: w, mrr: pc.ExecBatch(ctx, &b), sds: w.sds}
	return &w.res, nil
}

// unbuildable reports arguments that could not be encoded for the parameters of sd, at position pos of its round
// trip, and forgets sd: its parameter types may be stale (a column retyped int to bigint since it was prepared takes
// a value over 2^31 only once prepared again), and pgx forgets a statement after any failure too.
func (w *wire) unbuildable(sd *pgconn.StatementDescription, pos int, err error) error {
	w.forget(sd)
	return &buildError{sql: sd.SQL, pos: pos, err: err}
}

// lacks reports whether one of stmts is not prepared on the connection yet.
func (w *wire) lacks(stmts []stmt) bool {
	for i := range stmts {
		if _, ok := w.stmts[stmts[i].sql]; !ok {
			return true
		}
	}
	return false
}

// use returns the description of sql, which prepareMissing has prepared, and marks it most recently used.
func (w *wire) use(sql string) *pgconn.StatementDescription {
	p := w.stmts[sql]
	p.unlink()
	w.recent.link(p)
	return p.sd
}

func (p *prepared) unlink() { p.prev.next, p.next.prev = p.next, p.prev }

func (p *prepared) link(q *prepared) {
	q.prev, q.next = p, p.next
	p.next.prev, p.next = q, q
}

// prepareMissing prepares the statements of sqls the connection does not have yet, closing first the ones evicted or
// invalidated since the last time, all in one round trip. Nothing is sent when every statement is prepared.
func (w *wire) prepareMissing(ctx context.Context, pc *pgconn.PgConn, sqls []string) error {
	w.trip++
	w.misses = w.misses[:0]
	for _, sql := range sqls {
		if p, ok := w.stmts[sql]; ok {
			// To the front now, so that the ones this round trip needs are never at the tail eviction takes from.
			p.trip = w.trip
			p.unlink()
			w.recent.link(p)
		} else if !contains(w.misses, sql) {
			w.misses = append(w.misses, sql)
		}
	}
	if len(w.misses) == 0 {
		return nil
	}
	// The least recently used statements make room, but none this round trip needs: a round trip of more distinct
	// statements than the capacity leaves the cache over it until the next one that prepares.
	for len(w.stmts)+len(w.misses) > w.capacity && w.recent.prev != &w.recent && w.recent.prev.trip != w.trip {
		w.evict(w.recent.prev)
	}
	p := pc.StartPipeline(ctx)
	if pc.TxStatus() != 'E' { // a failed transaction would refuse the closes too; they wait for the next time
		for _, name := range w.drop {
			p.SendDeallocate(name)
		}
	}
	closes := len(w.drop)
	if pc.TxStatus() == 'E' {
		closes = 0
	}
	names := make([]string, len(w.misses))
	for i, sql := range w.misses {
		w.seq++
		names[i] = "pgxact_" + strconv.FormatUint(w.seq, 10)
		p.SendPrepare(names[i], sql, nil)
	}
	if err := p.Sync(); err != nil {
		_ = p.Close()
		return err
	}
	var err error
	for range closes {
		if _, err = p.GetResults(); err != nil {
			break
		}
	}
	if err == nil {
		w.drop = w.drop[closes:] // those not sent, in a failed transaction, wait for the next time
		for i, sql := range w.misses {
			var res any
			if res, err = p.GetResults(); err != nil {
				// Parse may have completed before Describe failed: the name is closed with the next ones.
				w.drop = append(w.drop, names[i])
				err = &prepareError{sql: sql, err: err}
				break
			}
			sd, ok := res.(*pgconn.StatementDescription)
			if !ok {
				err = fmt.Errorf("tx: preparing %q: unexpected %T", sql, res)
				break
			}
			// The pipeline's description carries only the parameters and fields.
			sd.Name, sd.SQL = names[i], sql
			q := &prepared{sd: sd}
			w.stmts[sql] = q
			w.recent.link(q)
		}
	}
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	return err
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (w *wire) evict(p *prepared) {
	p.unlink()
	delete(w.stmts, p.sd.SQL)
	w.drop = append(w.drop, p.sd.Name)
}

// invalidate forgets a statement the server refused, as pgx does after any failure: a prepared statement's plan and
// parameter types may have gone stale in many ways (a result type changed, 0A000; a table or column gone or retyped,
// class 42; a parameter of a type since retyped, which refuses a value with 22P02; an enum dropped and made again,
// XX000 "cache lookup failed"). Forgetting one wrongly costs a Parse. Only errors that say nothing about the statement
// keep it, so that the retries of a hot spot do not prepare their statements again: see keepsStatement. A missing
// prepared statement (DISCARD ALL, DEALLOCATE) means the connection may have lost them all.
func (w *wire) invalidate(sd *pgconn.StatementDescription, err error) {
	var pgErr *pgconn.PgError
	if sd == nil || !errors.As(err, &pgErr) {
		return
	}
	switch {
	case pgErr.Code == "26000":
		// Closing the ones that are gone does no harm; the others would stay prepared on the server otherwise.
		for w.recent.next != &w.recent {
			w.evict(w.recent.next)
		}
	case !keepsStatement(pgErr.Code):
		w.forget(sd)
	}
}

// keepsStatement reports whether an error with this SQLSTATE leaves the statement that met it as it was prepared:
// transaction rollback (40: serialization failures, deadlocks), integrity constraint violations (23), invalid
// transaction state (25), connection exceptions (08), insufficient resources (53), object not in prerequisite state
// (55: a lock not available), operator intervention (57: cancelled, terminated) and PL/pgSQL's RAISE (P0).
func keepsStatement(code string) bool {
	switch code[:min(2, len(code))] {
	case "40", "23", "25", "08", "53", "55", "57", "P0":
		return true
	}
	return false
}

// forget evicts sd if the wire still has it.
func (w *wire) forget(sd *pgconn.StatementDescription) {
	if p, ok := w.stmts[sd.SQL]; ok && p.sd == sd {
		w.evict(p)
	}
}

// prepareError is a statement the server refused to prepare. Nothing of its round trip ran.
type prepareError struct {
	sql string
	err error
}

func (e *prepareError) Error() string { return "prepare: " + e.err.Error() }
func (e *prepareError) Unwrap() error { return e.err }

// buildError is a statement whose arguments could not be encoded for its parameters. Nothing of its round trip ran.
type buildError struct {
	sql string
	pos int // the statement's position in the round trip, pending statements included
	err error
}

func (e *buildError) Error() string { return "build: " + e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }
