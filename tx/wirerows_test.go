package tx_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// pair is a RowScanner: it scans the whole row itself.
type pair struct {
	n int32
	s string
}

func (p *pair) ScanRow(rows pgx.Rows) error { return rows.Scan(&p.n, &p.s) }

// TestWireRowsReadAsPgxDoes reads the same queries through the runner's prepared statements and through pgx's own
// Query, and requires the same values, or the same error, from both.
func TestWireRowsReadAsPgxDoes(t *testing.T) {
	pool := wirePool(t, nil)
	ctx := ctxT(t)
	_, err := pool.Exec(ctx, "CREATE TYPE mood AS ENUM ('calm', 'busy')")
	require.NoError(t, err)

	values := func(r pgx.CollectableRow) (any, error) { return r.Values() }
	raw := func(r pgx.CollectableRow) (any, error) {
		var out []string
		for _, v := range r.RawValues() {
			out = append(out, string(v))
		}
		return out, nil
	}
	asInt := func(r pgx.CollectableRow) (any, error) {
		var n int
		err := r.Scan(&n)
		return n, err
	}
	asPair := func(r pgx.CollectableRow) (any, error) {
		var p pair
		err := r.Scan(&p)
		return p, err
	}
	byName := func(r pgx.CollectableRow) (any, error) {
		return pgx.RowToStructByName[struct {
			ID   int
			Word string
		}](r)
	}
	asMap := func(r pgx.CollectableRow) (any, error) { return pgx.RowToMap(r) }
	// Scans odd values into an int64 and even ones into an int32: the destination type changes between rows.
	alternate := func(r pgx.CollectableRow) (any, error) {
		var wide int64
		if err := r.Scan(&wide); err != nil || wide%2 == 1 {
			return wide, err
		}
		var narrow int32
		err := r.Scan(&narrow)
		return narrow, err
	}
	for _, c := range []struct {
		name, sql string
		args      []any
		read      func(pgx.CollectableRow) (any, error)
		fails     bool
	}{
		{name: "values of known types and NULL", sql: "SELECT 1::int AS a, 'x'::text AS b, NULL::int AS c, $1::float8",
			args: []any{2.5}, read: values},
		{name: "values of a type pgx does not know", sql: "SELECT 'busy'::mood, ARRAY['calm']::mood[]", read: values},
		{name: "raw values", sql: "SELECT 7::int, 'y'::text", read: raw},
		{name: "many rows", sql: "SELECT g FROM generate_series(1, $1::int) g", args: []any{50}, read: asInt},
		{name: "no row", sql: "SELECT 1 WHERE false", read: asInt},
		{name: "destination type changes between rows", sql: "SELECT g FROM generate_series(1, 6) g", read: alternate},
		{name: "a RowScanner", sql: "SELECT 3::int, 'z'::text", read: asPair},
		{name: "a struct by column name", sql: "SELECT 'v'::text AS word, 8::int AS id", read: byName},
		{name: "a map by column name", sql: "SELECT 9::int AS id, NULL::text AS word", read: asMap},
		{name: "a struct missing a column", sql: "SELECT 8::int AS id", read: byName, fails: true},
		{name: "a value that does not fit", sql: "SELECT 'x'::text AS word", read: asInt, fails: true},
		{name: "fewer destinations than columns", sql: "SELECT 1, 2", read: asInt, fails: true},
		{name: "a NULL into an int", sql: "SELECT NULL::int AS gone", read: asInt, fails: true},
		{name: "a server error after rows", sql: "SELECT 1 / (2 - g) FROM generate_series(1, 3) g", read: asInt,
			fails: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, err := pool.Query(ctx, c.sql, c.args...)
			require.NoError(t, err)
			want, wantErr := pgx.CollectRows(rows, c.read)

			got, err := tx.Run(ctx, pool, tx.Query(c.sql, c.read, c.args...), tx.WithPolicy(retry.Never()))
			if !c.fails {
				require.NoError(t, wantErr)
				require.NoError(t, err)
				require.Equal(t, want, got)
				return
			}
			require.Error(t, wantErr)
			require.Error(t, err)
			require.ErrorContains(t, err, wantErr.Error())
			var pgxScan, ourScan pgx.ScanArgError
			require.Equal(t, errors.As(wantErr, &pgxScan), errors.As(err, &ourScan))
			require.Equal(t, pgxScan, ourScan)
		})
	}
}

// TestWireRowsOfOneRoundTrip reads results of different shapes from one round trip (Zip3 of independent queries
// sends them together), where the runner reuses its rows from one result to the next.
func TestWireRowsOfOneRoundTrip(t *testing.T) {
	pool := wirePool(t, nil)
	ctx := ctxT(t)
	words := tx.Query("SELECT w FROM unnest($1::text[]) w", pgx.RowTo[string], []string{"a", "b", "c"})
	both := tx.QueryOne("SELECT $1::int, $2::text", pgx.RowToStructByPos[struct {
		N int
		S string
	}], 4, "d")
	one := tx.QueryOne("SELECT $1::bigint", pgx.RowTo[int64], int64(1)<<40)

	got, err := tx.Run(ctx, pool, compose.Zip3(words, both, one))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, got.A)
	require.Equal(t, 4, got.B.N)
	require.Equal(t, "d", got.B.S)
	require.Equal(t, int64(1)<<40, got.C)
}
