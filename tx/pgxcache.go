package tx

import (
	"context"
	"reflect"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Whether pgx will prepare a statement before it sends a batch.
//
// In its caching modes pgx prepares (or describes) the statements of a batch it does not have in its cache in a round
// trip of its own, before the batch. Inside an open transaction a Parse that fails there aborts it, so a SAVEPOINT
// queued in the batch would never be made and a Recover could not roll back to it: the runner sends the SAVEPOINT
// first whenever pgx may prepare (mayPrepare). Guessing what pgx has cached from what went through it is unsound: pgx
// forgets a statement when it fails, when a batch fails and when its cache overflows, and other code on the
// connection moves entries around. pgx does not expose its caches, so they are read here; a pgx whose Conn has no such
// field any more (a later version) makes the runner assume that every statement may be prepared.

// statementGetter is the part of pgx's internal stmtcache.Cache the runner uses. Its Get moves the entry to the front
// of pgx's LRU, as the batch that follows would.
type statementGetter interface {
	Get(sql string) *pgconn.StatementDescription
}

// The positions of pgx.Conn's two caches, nil if pgx.Conn has no such field of interface type.
var (
	stmtCacheIndex = cacheIndex("statementCache")
	descCacheIndex = cacheIndex("descriptionCache")
)

func cacheIndex(name string) []int {
	f, ok := reflect.TypeFor[pgx.Conn]().FieldByName(name)
	if !ok || f.Type.Kind() != reflect.Interface || !f.Type.Implements(reflect.TypeFor[statementGetter]()) {
		return nil
	}
	return f.Index
}

// pgxCache returns the cache conn's batches use in mode, or nil when there is none or it cannot be read.
func pgxCache(conn *pgx.Conn, mode pgx.QueryExecMode) statementGetter {
	index := stmtCacheIndex
	if mode == pgx.QueryExecModeCacheDescribe {
		index = descCacheIndex
	}
	if index == nil {
		return nil
	}
	f := reflect.ValueOf(conn).Elem().FieldByIndex(index)
	// An unexported field cannot be read through reflect's Interface; a Value made at its address can.
	f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	if f.IsNil() {
		return nil
	}
	g, _ := f.Interface().(statementGetter)
	return g
}

// batchText returns the text pgx caches st under when it sends it in a batch: st's own, or what pgx.NamedArgs or
// pgx.StrictNamedArgs (or pointers to them) make of it, which pgx rewrites before it looks in its cache. ok is false for any other
// QueryRewriter, whose rewriting may not be repeatable, and for a text that fails to rewrite.
func batchText(ctx context.Context, conn *pgx.Conn, st *stmt) (sql string, ok bool) {
	if len(st.args) == 0 {
		return st.sql, true
	}
	var rw pgx.QueryRewriter
	switch a := st.args[0].(type) {
	case pgx.NamedArgs:
		rw = a
	case pgx.StrictNamedArgs:
		rw = a
	case *pgx.NamedArgs:
		if a == nil {
			return "", false
		}
		rw = *a
	case *pgx.StrictNamedArgs:
		if a == nil {
			return "", false
		}
		rw = *a
	case pgx.QueryRewriter:
		return "", false
	default:
		return st.sql, true
	}
	sql, _, err := rw.RewriteQuery(ctx, conn, st.sql, st.args[1:])
	return sql, err == nil
}
