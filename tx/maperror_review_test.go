package tx_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

// TestMapErrorSeesEveryFailure: MapError promises f(err) for every failure of its work, and compose an *ElementError
// naming the failing element — also for a statement that fails before its result is read (the server refuses to
// prepare it, pgx cannot encode an argument), in every mode and with FuseCommit.
func TestMapErrorSeesEveryFailure(t *testing.T) {
	errMapped := errors.New("mapped")
	base := newPool(t, 1)
	cases := []struct {
		name string
		work tx.Tx[pgconn.CommandTag]
	}{
		{"undefined table", tx.Exec("UPDATE nosuch SET x = $1", 1)},
		{"unencodable argument", tx.Exec("UPDATE accounts SET balance = $1 WHERE id = 1", struct{ X int }{1})},
		{"server error at run time", tx.Exec("UPDATE accounts SET balance = $1 / 0 WHERE id = 1", 1)},
	}
	for _, mode := range everyExecMode() {
		cfg := base.Config()
		cfg.ConnConfig.DefaultQueryExecMode = mode
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		for _, c := range cases {
			for _, opts := range [][]tx.Option{nil, {tx.FuseCommit()}} {
				t.Run(fmt.Sprintf("%s/%s/fused %v", mode, c.name, opts != nil), func(t *testing.T) {
					_, err := tx.Run(ctxT(t), pool, compose.Sequence([]tx.Tx[pgconn.CommandTag]{
						tx.Exec("UPDATE accounts SET balance = 1 WHERE id = $1", 1), c.work}), opts...)
					var ee *compose.ElementError
					require.ErrorAs(t, err, &ee, "%v", err)
					require.Equal(t, 1, ee.Index)
					_, err = tx.Run(ctxT(t), pool,
						tx.MapError(c.work, func(err error) error { return errors.Join(errMapped, err) }), opts...)
					require.ErrorIs(t, err, errMapped, "%v", err)
					require.NotErrorIs(t, err, tx.ErrCommitUnknown)
					require.Equal(t, 100, balance(t, pool, 1))
				})
			}
		}
	}
}

// TestStatementIndexWithRepeatedSQL: a statement whose argument cannot be encoded is named by its position, also when
// the same SQL text comes earlier in the round trip.
func TestStatementIndexWithRepeatedSQL(t *testing.T) {
	pool := newPool(t, 2)
	const sql = "UPDATE accounts SET balance = $1 WHERE id = 1"
	for _, opts := range [][]tx.Option{nil, {tx.FuseCommit()}} {
		_, err := tx.Run(ctxT(t), pool, tx.All([]tx.Tx[pgconn.CommandTag]{tx.Exec(sql, 5), tx.Exec(sql, struct{ X int }{1})}),
			opts...)
		var se *tx.StatementError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 1, se.Index, "%v", err)
	}
}

// everyExecMode is pgx's query exec modes a pool of the tests can use: all five on the server itself, the two that
// work through pgbouncer in transaction pooling mode otherwise (the others keep prepared statements across round
// trips, which may reach different server connections there).
func everyExecMode() []pgx.QueryExecMode {
	if pgtest.Pooled() {
		return []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	}
	return []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
}
