package tx_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// onePool is a pool of a single connection, so that what one Run leaves on its connection the next one finds.
func onePool(t *testing.T, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg := pgtest.Config(t)
	cfg.MaxConns = 1
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// wirePool is onePool for the tests of the runner's own prepared statements. Those need the default exec mode on a
// server connection of their own, which pgbouncer's transaction pooling cannot give (pgtest's pooled strings ask for
// exec mode, where the runner prepares nothing, as TestWhatPgxMustSeeGoesThroughPgx shows). So in the pooled pass
// they connect to the cluster itself, on the database pgtest made for them, and still run rather than skip.
func wirePool(t *testing.T, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	if !pgtest.Pooled() {
		return onePool(t, configure)
	}
	return onePool(t, func(c *pgxpool.Config) {
		cluster, err := pgtest.Shared()
		require.NoError(t, err)
		direct, err := pgxpool.ParseConfig(cluster.ConnString(c.ConnConfig.Database))
		require.NoError(t, err)
		c.ConnConfig = direct.ConnConfig
		require.Equal(t, pgx.QueryExecModeCacheStatement, c.ConnConfig.DefaultQueryExecMode)
		if configure != nil {
			configure(c)
		}
	})
}

// ownStatements counts the statements the runner has prepared on the pool's one connection.
func ownStatements(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	return count(t, pool, "SELECT count(*)::int FROM pg_prepared_statements WHERE name LIKE 'pgxact\\_%'")
}

func TestPreparedStatementsStayWithinTheCacheCapacity(t *testing.T) {
	const capacity = 4
	pool := wirePool(t, func(c *pgxpool.Config) { c.ConnConfig.StatementCacheCapacity = capacity })
	ctx := ctxT(t)
	for i := range 3 * capacity {
		// Distinct texts: every Run prepares a statement of its own, and the oldest ones must make room.
		sql := fmt.Sprintf("SELECT $1::int + %d", i)
		v, err := tx.Run(ctx, pool, tx.QueryOne(sql, pgx.RowTo[int], 100))
		require.NoError(t, err)
		require.Equal(t, 100+i, v)
		n := ownStatements(t, pool)
		require.Positive(t, n, "the runner prepares its statements")
		require.LessOrEqual(t, n, capacity, "after %d distinct statements", i+1)
	}
}

func TestPreparedStatementsFollowSchemaChanges(t *testing.T) {
	pool := wirePool(t, nil)
	ctx := ctxT(t)
	_, err := pool.Exec(ctx, "CREATE TABLE shape (id int PRIMARY KEY); INSERT INTO shape VALUES (1)")
	require.NoError(t, err)
	row := func() tx.Tx[[]any] {
		return tx.QueryOne("SELECT * FROM shape WHERE id = $1", func(r pgx.CollectableRow) ([]any, error) {
			return r.Values()
		}, 1)
	}
	v, err := tx.Run(ctx, pool, row())
	require.NoError(t, err)
	require.Len(t, v, 1)

	_, err = pool.Exec(ctx, "ALTER TABLE shape ADD COLUMN note text NOT NULL DEFAULT 'x'")
	require.NoError(t, err)
	// The server refuses a prepared statement whose result type changed; the runner forgets it, so at most one Run
	// sees that refusal, and the next one prepares the statement anew.
	v, err = tx.Run(ctx, pool, row(), tx.WithPolicy(retry.Never()))
	if err != nil {
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "0A000", pgErr.Code, "%v", err)
		v, err = tx.Run(ctx, pool, row(), tx.WithPolicy(retry.Never()))
	}
	require.NoError(t, err)
	require.Equal(t, []any{int32(1), "x"}, v)
}

func TestStatementsDeallocatedBehindTheRunnersBack(t *testing.T) {
	pool := wirePool(t, nil)
	ctx := ctxT(t)
	update := tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = $1", 1)
	_, err := pool.Exec(ctx, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL); "+
		"INSERT INTO accounts VALUES (1, 0)")
	require.NoError(t, err)
	for i := range 6 {
		opts := []tx.Option{tx.WithPolicy(retry.Never())}
		if i%2 == 1 {
			opts = append(opts, tx.FuseCommit()) // the fused round trip, which carries COMMIT, recovers the same way
		}
		_, err := tx.Run(ctx, pool, update, opts...)
		require.NoError(t, err, "run %d", i)
		// pgx's DeallocateAll clears pgx's caches, not the runner's: its statements are gone from the server.
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, c.Conn().DeallocateAll(ctx))
		c.Release()
		require.Zero(t, ownStatements(t, pool))
	}
	require.Equal(t, 6, balance(t, pool, 1), "every Run committed once")
}

// recordingTracer records the SQL pgx traced, batches and plain queries alike.
type recordingTracer struct {
	mu  sync.Mutex
	sql []string
}

func (r *recordingTracer) add(sql string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sql = append(r.sql, sql)
}

func (r *recordingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(d.SQL)
	return ctx
}
func (r *recordingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *recordingTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	for _, q := range d.Batch.QueuedQueries {
		r.add(q.SQL)
	}
	return ctx
}
func (r *recordingTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *recordingTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (r *recordingTracer) saw(sql string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sql {
		if s == sql {
			return true
		}
	}
	return false
}

func TestWhatPgxMustSeeGoesThroughPgx(t *testing.T) {
	const sql = "SELECT $1::int * 2"
	tests := []struct {
		name      string
		configure func(*pgxpool.Config)
		work      tx.Tx[int]
		want      int
	}{
		{"a tracer sees every statement", func(c *pgxpool.Config) { c.ConnConfig.Tracer = &recordingTracer{} },
			tx.QueryOne(sql, pgx.RowTo[int], 21), 42},
		{"exec mode", func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec },
			tx.QueryOne(sql, pgx.RowTo[int], 21), 42},
		{"simple protocol", func(c *pgxpool.Config) {
			c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		}, tx.QueryOne(sql, pgx.RowTo[int], 21), 42},
		{"named arguments", nil, tx.QueryOne("SELECT @x::int * 2", pgx.RowTo[int], pgx.NamedArgs{"x": 4}), 8},
		{"named arguments beside plain ones", nil, tx.Bind(
			tx.All([]tx.Tx[int]{tx.QueryOne(sql, pgx.RowTo[int], 1), tx.QueryOne("SELECT @x::int", pgx.RowTo[int], pgx.NamedArgs{"x": 5})}),
			func(v []int) tx.Tx[int] { return tx.Pure(v[0] + v[1]) }), 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := onePool(t, tt.configure)
			v, err := tx.Run(ctxT(t), pool, tt.work)
			require.NoError(t, err)
			require.Equal(t, tt.want, v)
			if tr, ok := pool.Config().ConnConfig.Tracer.(*recordingTracer); ok {
				require.True(t, tr.saw(sql), "traced: %q", tr.sql)
			}
			if tt.configure != nil {
				require.Zero(t, ownStatements(t, pool), "the runner prepared statements of its own")
			}
		})
	}
}

// TestBadArgumentsFailTheirStatement runs in every exec mode: the wire, pgx's describing batches and pgx's exec and
// simple modes each find bad arguments at a different place, and each must name the statement — except that the
// simple protocol's argument counts are checked by pgx's sanitizer for the whole round trip, unnamed; that error
// must still commit nothing.
func TestBadArgumentsFailTheirStatement(t *testing.T) {
	base := newPool(t, 1)
	modes := []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	if !pgtest.Pooled() {
		modes = append([]pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe}, modes...)
	}
	tests := []struct {
		name string
		work tx.Tx[pgconn.CommandTag]
	}{
		{"too few", tx.Exec("UPDATE accounts SET balance = $1 WHERE id = $2", 5)},
		{"too many", tx.Exec("UPDATE accounts SET balance = $1 WHERE id = 1", 5, 6)},
		{"unencodable", tx.Exec("UPDATE accounts SET balance = $1 WHERE id = 1", struct{ X int }{1})},
	}
	for _, mode := range modes {
		cfg := base.Config()
		cfg.ConnConfig.DefaultQueryExecMode = mode
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		for _, tt := range tests {
			t.Run(mode.String()+"/"+tt.name, func(t *testing.T) {
				work := tx.Then(tx.Exec("UPDATE accounts SET balance = 0 WHERE id = 1"), tt.work)
				_, err := tx.Run(ctxT(t), pool, work)
				require.Error(t, err)
				if mode != pgx.QueryExecModeSimpleProtocol || tt.name == "unencodable" {
					var se *tx.StatementError
					require.ErrorAs(t, err, &se)
					require.Equal(t, 1, se.Index, "%v", err)
				}
				require.Equal(t, 100, balance(t, pool, 1), "nothing committed")
				require.False(t, errors.Is(err, tx.ErrCommitUnknown))
			})
		}
	}
}
