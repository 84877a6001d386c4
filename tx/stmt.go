package tx

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// stmt is one statement of a static step: its SQL, its arguments, and how to read its result from a batch.
type stmt struct {
	sql    string
	args   []any
	read   func(br results) (any, error)
	reads  bool              // the text looks like it only reads (readsOnly): no transaction-id look after it
	unseen unseen            // what the text tells the look beyond reads (unseenWrite)
	mapErr func(error) error // MapError's functions, for a failure found before read runs (see stmtError); nil for none
}

// newStmt is the statement sql with args, read by read, with what its text tells the runner (f, from factsOf).
func newStmt(sql string, f sqlFacts, args []any, read func(br results) (any, error)) stmt {
	return stmt{sql: sql, args: args, read: read, reads: f.reads, unseen: f.unseen}
}

// stmtError reports st, at position index of its work, failing with err before its result could be read (a prepare
// or an encoding refused): as read would, through the MapError functions st is under.
func stmtError(st *stmt, index int, err error) *StatementError {
	if st.mapErr != nil {
		err = st.mapErr(err)
	}
	return &StatementError{SQL: st.sql, Index: index, Err: err}
}

// results is what a statement reads its result from: the batch of its round trip, or oneQuery when it was sent on its
// own.
type results interface {
	Exec() (pgconn.CommandTag, error)
	Query() (pgx.Rows, error)
}

// batchResults is the results of a whole round trip: pgx.BatchResults, or a wire's (see wire.go). Close reads what
// is left and returns the first error.
type batchResults interface {
	results
	Close() error
}

// Exec returns a Tx that executes sql with args and yields its command tag. Arguments are always sent as parameters,
// never interpolated. The Tx keeps args as given, as pgx.Batch.Queue does, and reads them on every attempt: a slice
// passed with args... must not be changed afterwards (build a new one for each statement). Independent Exec, Query
// and QueryOne values combined with Then, All or compose are sent to the server together, in one round trip.
//
// As in a pgx.Batch, a pgx.QueryRewriter (pgx.NamedArgs) may come first in args; other pgx query options
// (QueryExecMode, QueryResultFormats) are invalid input there: set them on the pool, or use Func. So is a text of
// several statements ("A; B"): give each its own Exec (the body of a routine written in SQL, BEGIN ATOMIC ... END, is
// part of one), and a text of none (blanks, comments). So are more than 65,535 arguments, PostgreSQL's limit for the
// parameters of one statement.
func Exec(sql string, args ...any) Tx[pgconn.CommandTag] {
	f := factsOf(sql)
	if err := queryOption(sql, f, args); err != nil {
		return Fail[pgconn.CommandTag](err)
	}
	st := &step[pgconn.CommandTag]{sure: true, yieldsResult: true}
	st.stmts = st.own(newStmt(sql, f, args, readExec))
	return Tx[pgconn.CommandTag]{s: st}
}

func readExec(br results) (any, error) { return br.Exec() }

// maxParams is the most parameters the extended protocol's Bind message can carry (a 16-bit count).
const maxParams = 65535

// queryOption refuses pgx's per-query options as a statement's first argument. Statements travel in batches, where
// pgx honours only a QueryRewriter (pgx.NamedArgs) and would send any other option as a parameter ("mismatched param
// and argument count", or worse, a value bound to $1): set the pool's DefaultQueryExecMode, or use Func, whose
// pgx.Tx takes them as pgx does.
func queryOption(sql string, f sqlFacts, args []any) error {
	if f.none {
		return invalid("no statement in the SQL text %q", abbreviate(sql))
	}
	if f.several {
		// Under the simple protocol pgx would run them all and read their results as those of the statements queued
		// after them, the transaction-id look included; the other modes send a prepared statement, which the server
		// refuses with several.
		return invalid("several statements in one SQL text (%s): give each its own Exec, Query or QueryOne "+
			"(they still share one round trip), or use Func", abbreviate(sql))
	}
	if len(args) == 0 {
		return nil
	}
	if len(args) > maxParams {
		// pgconn would refuse it while encoding the round trip, after what was queued with it counted as sent.
		return invalid("%d arguments to one statement (%s): PostgreSQL takes at most %d parameters; split it, or "+
			"pass an array (= ANY($1), unnest)", len(args), abbreviate(sql), maxParams)
	}
	switch args[0].(type) {
	case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
		return invalid("%T as a statement's first argument: pgx takes no query options in a batch but a "+
			"QueryRewriter; set the pool's DefaultQueryExecMode, or use Func", args[0])
	}
	return nil
}

// Query returns a Tx that runs sql with args and yields every row, each converted by scan (pgx.RowToStructByName,
// pgx.RowTo[int], or a function of your own). A nil scan is invalid input.
func Query[T any](sql string, scan pgx.RowToFunc[T], args ...any) Tx[[]T] {
	if scan == nil {
		return Fail[[]T](invalid("Query with a nil scan function"))
	}
	return rowsStmt[[]T](sql, args, func(br results) (any, error) {
		rows, err := br.Query()
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, scan)
	})
}

// QueryOne returns a Tx that runs sql with args and yields its single row, converted by scan. No row is an error for
// which errors.Is(err, pgx.ErrNoRows) is true; more than one row is an error for which
// errors.Is(err, pgx.ErrTooManyRows) is true.
func QueryOne[T any](sql string, scan pgx.RowToFunc[T], args ...any) Tx[T] {
	if scan == nil {
		return Fail[T](invalid("QueryOne with a nil scan function"))
	}
	return rowsStmt[T](sql, args, func(br results) (any, error) {
		rows, err := br.Query()
		if err != nil {
			return nil, err
		}
		return pgx.CollectExactlyOneRow(rows, scan)
	})
}

// rowsStmt is the step of one statement whose rows read collects. read is the only closure: one allocation per
// statement, on work that is often built anew for every transaction.
func rowsStmt[T any](sql string, args []any, read func(results) (any, error)) Tx[T] {
	f := factsOf(sql)
	if err := queryOption(sql, f, args); err != nil {
		return Fail[T](err)
	}
	st := &step[T]{yieldsResult: true}
	st.stmts = st.own(newStmt(sql, f, args, read))
	return Tx[T]{s: st}
}
