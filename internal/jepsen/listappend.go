package jepsen

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/tx"
)

// Op is one micro-operation of a list-append transaction: an append of Value to the list under Key, or a read of
// that list, whose result Run fills into List.
type Op struct {
	Append bool
	Key    int
	Value  int   // appends only; unique across the whole history
	List   []int // reads only: the list as read
}

func (o Op) String() string {
	if o.Append {
		return fmt.Sprintf("append(%d, %d)", o.Key, o.Value)
	}
	return fmt.Sprintf("read(%d)=%v", o.Key, o.List)
}

// Each key's list is one int[] row, so an append rewrites the row: the list order is the commit order of the
// appends, which is what lets a read's prefix stand for a version. (A row per element ordered by a serial would
// order elements by sequence draw, not by commit.)
const listSchema = `CREATE TABLE lists (k int PRIMARY KEY, vals int[] NOT NULL)`

// ListSetup creates the lists table.
func ListSetup(ctx context.Context, db Execer) error {
	if _, err := db.Exec(ctx, listSchema); err != nil {
		return fmt.Errorf("jepsen: list schema: %w", err)
	}
	return nil
}

// ListTx runs ops in a transaction: first every read, then — after a round-trip boundary, so that reads and writes
// are far enough apart for concurrent transactions to interleave — every append, whatever their order in ops. It
// yields ops with the reads' lists filled in; a read never sees the transaction's own appends.
func ListTx(ops []Op) tx.Tx[[]Op] {
	var reads []tx.Tx[[]int]
	var appends []tx.Tx[pgconn.CommandTag]
	for _, o := range ops {
		if o.Append {
			appends = append(appends, appendTx(o.Key, o.Value))
		} else {
			reads = append(reads, readListTx(o.Key))
		}
	}
	return tx.Bind(tx.All(reads), func(lists [][]int) tx.Tx[[]Op] {
		return tx.Map(tx.All(appends), func([]pgconn.CommandTag) []Op { return fillReads(ops, lists) })
	})
}

func fillReads(ops []Op, lists [][]int) []Op {
	out := make([]Op, len(ops))
	i := 0
	for j, o := range ops {
		if !o.Append {
			o.List = lists[i]
			i++
		}
		out[j] = o
	}
	return out
}

func appendTx(k, v int) tx.Tx[pgconn.CommandTag] {
	return tx.Exec(`INSERT INTO lists (k, vals) VALUES ($1, ARRAY[$2::int])
		ON CONFLICT (k) DO UPDATE SET vals = lists.vals || $2::int`, k, v)
}

func readListTx(k int) tx.Tx[[]int] {
	rows := tx.Query("SELECT vals FROM lists WHERE k = $1", pgx.RowTo[[]int32], k)
	return tx.Map(rows, func(rs [][]int32) []int {
		out := []int{}
		for _, r := range rs {
			for _, v := range r {
				out = append(out, int(v))
			}
		}
		return out
	})
}

// ReadLists reads every list, for the final read after a run.
func ReadLists(ctx context.Context, db Execer) (map[int][]int, error) {
	rows, err := db.Query(ctx, "SELECT k, vals FROM lists")
	if err != nil {
		return nil, fmt.Errorf("jepsen: read lists: %w", err)
	}
	type list struct {
		K    int
		Vals []int32
	}
	lists, err := pgx.CollectRows(rows, pgx.RowToStructByPos[list])
	if err != nil {
		return nil, fmt.Errorf("jepsen: read lists: %w", err)
	}
	out := make(map[int][]int, len(lists))
	for _, l := range lists {
		vals := make([]int, len(l.Vals))
		for i, v := range l.Vals {
			vals[i] = int(v)
		}
		out[l.K] = vals
	}
	return out, nil
}
