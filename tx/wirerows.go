package tx

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// wireRows is the pgx.Rows of one statement's result on a wire. It behaves as the Rows that pgx.RowsFromResultReader
// returns (no Conn, no tracer), but a wire keeps one and resets it for every result instead of allocating a new one:
// that Rows is a struct of about 340 bytes, allocated once per query, and on a transaction of several queries it was
// a quarter of the bytes the runner allocated, which the garbage collector then paid for on the shared cores.
//
// Reuse is safe because a wire reads one result at a time, and every reader in this package closes its rows before
// asking for the next result (pgconn requires as much: reading the next result ends the previous one). The scan
// plans' backing arrays survive the reset too; the plans themselves are made anew for every result, as pgx does.
type wireRows struct {
	w      *wire
	sd     *pgconn.StatementDescription // the statement whose result this is, forgotten if the server refused it
	types  *pgtype.Map
	rr     *pgconn.ResultReader
	values [][]byte
	tag    pgconn.CommandTag
	err    error
	closed bool

	plans  []pgtype.ScanPlan // per column, for the destination types in scanTo; empty until the first Scan
	scanTo []reflect.Type
}

// reset makes r the rows of rr, the result of the statement sd on w, forgetting the previous result.
func (r *wireRows) reset(w *wire, sd *pgconn.StatementDescription, rr *pgconn.ResultReader) {
	*r = wireRows{w: w, sd: sd, types: w.types, rr: rr, plans: r.plans[:0], scanTo: r.scanTo[:0]}
}

func (r *wireRows) FieldDescriptions() []pgconn.FieldDescription { return r.rr.FieldDescriptions() }
func (r *wireRows) CommandTag() pgconn.CommandTag                { return r.tag }
func (r *wireRows) Err() error                                   { return r.err }
func (r *wireRows) RawValues() [][]byte                          { return r.values }
func (r *wireRows) TypeMap() *pgtype.Map                         { return r.types }

// Conn is nil, as for pgx.RowsFromResultReader: the rows did not come from a pgx.Conn's Query.
func (r *wireRows) Conn() *pgx.Conn { return nil }

func (r *wireRows) Next() bool {
	if r.closed {
		return false
	}
	if !r.rr.NextRow() {
		r.Close()
		return false
	}
	r.values = r.rr.Values()
	return true
}

// Close reads the rest of the result; the first error, the server's or a scan's, is the one Err reports.
func (r *wireRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	tag, err := r.rr.Close()
	r.tag = tag
	if err != nil {
		// A statement sent alone has its refusal (a changed result type, a table gone) arrive here, not when its
		// result is taken: unless it is forgotten now, every later round trip on the connection is refused the same
		// way. A scan's error (fail) comes first in r.err, but the server's still counts here.
		r.w.invalidate(r.sd, err)
	}
	if r.err == nil {
		r.err = err
	}
	r.values = nil
}

// fail records err as the rows' error, unless one came first, and closes them: a row that cannot be scanned ends
// the result, as in pgx.
func (r *wireRows) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	r.Close()
	return err
}

func (r *wireRows) Scan(dest ...any) error {
	fds := r.FieldDescriptions()
	if len(fds) != len(r.values) {
		return r.fail(fmt.Errorf("number of field descriptions must equal number of values, got %d and %d",
			len(fds), len(r.values)))
	}
	if len(dest) == 1 {
		if rs, ok := dest[0].(pgx.RowScanner); ok {
			if err := rs.ScanRow(r); err != nil {
				return r.fail(err)
			}
			return nil
		}
	}
	if len(fds) != len(dest) {
		return r.fail(fmt.Errorf("number of field descriptions must equal number of destinations, got %d and %d",
			len(fds), len(dest)))
	}
	if len(r.plans) != len(dest) {
		r.plans, r.scanTo = r.plans[:0], r.scanTo[:0]
		for i := range dest {
			r.plans = append(r.plans, r.types.PlanScan(fds[i].DataTypeOID, fds[i].Format, dest[i]))
			r.scanTo = append(r.scanTo, reflect.TypeOf(dest[i]))
		}
	}
	for i, d := range dest {
		if d == nil {
			continue
		}
		// A destination of another type than the plan was made for (rows scanned into varying types) plans again.
		if t := reflect.TypeOf(d); t != r.scanTo[i] {
			r.plans[i], r.scanTo[i] = r.types.PlanScan(fds[i].DataTypeOID, fds[i].Format, d), t
		}
		if err := r.plans[i].Scan(r.values[i], d); err != nil {
			return r.fail(pgx.ScanArgError{ColumnIndex: i, FieldName: fds[i].Name, Err: err})
		}
	}
	return nil
}

// Values decodes the current row with the type map; a column of a type it does not know comes back as its text, or
// as a copy of its binary value.
func (r *wireRows) Values() ([]any, error) {
	if r.closed {
		return nil, errors.New("rows is closed")
	}
	fds := r.FieldDescriptions()
	out := make([]any, 0, len(fds))
	for i := range fds {
		v, err := r.decode(&fds[i], r.values[i])
		if err != nil {
			return nil, r.fail(err)
		}
		out = append(out, v)
	}
	return out, nil
}

func (r *wireRows) decode(fd *pgconn.FieldDescription, raw []byte) (any, error) {
	if raw == nil {
		return nil, nil
	}
	if t, ok := r.types.TypeForOID(fd.DataTypeOID); ok {
		return t.Codec.DecodeValue(r.types, fd.DataTypeOID, fd.Format, raw)
	}
	switch fd.Format {
	case pgx.TextFormatCode:
		return string(raw), nil
	case pgx.BinaryFormatCode:
		return append([]byte(nil), raw...), nil
	default:
		return nil, errors.New("unknown format code")
	}
}
