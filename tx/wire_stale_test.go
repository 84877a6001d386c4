package tx_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// A migration can leave a statement prepared before it stale in ways the server reports with many codes, or that only
// the client sees. The runner's statements, like pgx's, must be prepared again after the first failure, so that a
// pooled connection does not fail the same way for as long as it lives.
func TestStatementsMadeStaleByAMigrationArePreparedAgain(t *testing.T) {
	for _, c := range []struct {
		name, setup, migrate, sql string
		first, arg                any // the argument before the migration, and after it
	}{
		// Parameter types are fixed at Parse: an int4 parameter refuses a value over 2^31 in the client.
		{"int to bigint", "CREATE TABLE m (id int PRIMARY KEY, v int); INSERT INTO m VALUES (1, 0)",
			"ALTER TABLE m ALTER COLUMN id TYPE bigint; INSERT INTO m VALUES (3000000000, 0)",
			"UPDATE m SET v = v + 1 WHERE id = $1", int64(1), int64(3_000_000_000)},
		// The server accepts the old int4 parameter and assigns it to text, refusing a string with 22P02.
		{"int to text", "CREATE TABLE m (id serial PRIMARY KEY, v int)",
			"ALTER TABLE m ALTER COLUMN v TYPE text",
			"INSERT INTO m (v) VALUES ($1)", 2, "abc"},
		// The parameter's type is gone: XX000 "cache lookup failed for type".
		{"enum made again", "CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE TABLE m (id serial PRIMARY KEY, v mood)",
			`CREATE TYPE mood_new AS ENUM ('sad', 'ok', 'happy');
			 ALTER TABLE m ALTER COLUMN v TYPE mood_new USING v::text::mood_new;
			 DROP TYPE mood; ALTER TYPE mood_new RENAME TO mood`,
			"INSERT INTO m (v) VALUES ($1)", "sad", "happy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pool := wirePool(t, nil)
			ctx := ctxT(t)
			_, err := pool.Exec(ctx, c.setup)
			require.NoError(t, err)
			_, err = tx.Run(ctx, pool, tx.Exec(c.sql, c.first))
			require.NoError(t, err)
			_, err = pool.Exec(ctx, c.migrate)
			require.NoError(t, err)
			fails := 0
			for range 3 {
				if _, err := tx.Run(ctx, pool, tx.Exec(c.sql, c.arg), tx.WithPolicy(retry.Never())); err != nil {
					t.Logf("%v", err)
					fails++
				}
			}
			require.LessOrEqual(t, fails, 1, "the stale statement must be forgotten after its first failure")
		})
	}
}

// A statement is kept through a serialization failure: the retries of a hot spot must not prepare their statements
// again, attempt after attempt.
func TestStatementsOutliveASerializationFailure(t *testing.T) {
	pool := wirePool(t, nil)
	ctx := ctxT(t)
	// A sequence is not rolled back: every other call fails with 40001, the first of each Run's two attempts.
	_, err := pool.Exec(ctx, `CREATE SEQUENCE calls;
		CREATE FUNCTION fail_odd(x int) RETURNS int LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('calls') % 2 = 1 THEN
				RAISE EXCEPTION 'odd call' USING ERRCODE = '40001';
			END IF;
			RETURN x;
		END $$`)
	require.NoError(t, err)
	const sql = "SELECT fail_odd($1)"
	v, err := tx.Run(ctx, pool, tx.QueryOne(sql, pgx.RowTo[int], 7))
	require.NoError(t, err)
	require.Equal(t, 7, v)
	name := statementName(t, pool, sql)
	attempts := 0
	v, err = tx.Run(ctx, pool, tx.Bind(tx.Pure(0), func(int) tx.Tx[int] {
		attempts++
		return tx.QueryOne(sql, pgx.RowTo[int], 8)
	}))
	require.NoError(t, err)
	require.Equal(t, 8, v)
	require.Equal(t, 2, attempts, "the first attempt met 40001 and was run again")
	require.Equal(t, name, statementName(t, pool, sql), "the statement was prepared again")
}

// statementName is the name of the runner's statement with the given text on the pool's one connection.
func statementName(t *testing.T, pool *pgxpool.Pool, sql string) string {
	t.Helper()
	var name string
	err := pool.QueryRow(context.Background(),
		"SELECT name FROM pg_prepared_statements WHERE statement = $1 AND name LIKE 'pgxact\\_%'", sql).Scan(&name)
	require.NoError(t, err)
	return name
}

// pgx runs a statement prepared by name (pgxpool's AfterConnect with Prepare, a common idiom) when its name is given
// as the SQL. So does the runner, in every round trip shape.
func TestStatementsPreparedByNameRunByTheirName(t *testing.T) {
	pool := wirePool(t, func(c *pgxpool.Config) {
		c.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			_, err := conn.Prepare(ctx, "add_one", "SELECT $1::int + 1")
			return err
		}
	})
	ctx := ctxT(t)
	for _, c := range []struct {
		name string
		work tx.Tx[int]
	}{
		{"alone", tx.QueryOne("add_one", pgx.RowTo[int], 4)},
		{"after a statement", tx.Then(tx.Exec("SELECT 1"), tx.QueryOne("add_one", pgx.RowTo[int], 4))},
		{"beside another", tx.Map(tx.All([]tx.Tx[int]{tx.QueryOne("add_one", pgx.RowTo[int], 4),
			tx.QueryOne("SELECT $1::int", pgx.RowTo[int], 0)}), func(vs []int) int { return vs[0] + vs[1] })},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := tx.Run(ctx, pool, c.work, tx.WithPolicy(retry.Never()))
			require.NoError(t, err)
			require.Equal(t, 5, v)
		})
	}
}

// pgx's DeallocateAll in Func code drops the statements the runner prepared on the connection. The statements of the
// same Run that follow it must not fail for that.
func TestDeallocateAllInFuncCodeLeavesTheRestOfTheRunWorking(t *testing.T) {
	pool := wirePool(t, nil)
	ctx := ctxT(t)
	q := tx.QueryOne("SELECT $1::int + 1", pgx.RowTo[int], 1)
	_, err := tx.Run(ctx, pool, tx.Then(tx.Exec("SELECT 1"), q)) // both prepared by the runner
	require.NoError(t, err)
	deallocate := tx.Func(func(ctx context.Context, c pgx.Tx) (int, error) { return 0, c.Conn().DeallocateAll(ctx) })
	for _, c := range []struct {
		name string
		work tx.Tx[int]
	}{
		{"after it", tx.Then(deallocate, q)},
		{"before and after it", tx.Then(q, tx.Then(deallocate, tx.Then(tx.Exec("SELECT 1"), q)))},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := tx.Run(ctx, pool, c.work, tx.WithPolicy(retry.Never()))
			require.NoError(t, err)
			require.Equal(t, 2, v)
			v, err = tx.Run(ctx, pool, tx.Then(tx.Exec("SELECT 1"), q)) // the next Run too
			require.NoError(t, err)
			require.Equal(t, 2, v)
		})
	}
}

// Statements evicted to make room are closed on the server with the next round trip that prepares, unless the
// transaction has failed, when they must wait for the next time rather than be forgotten: otherwise each one stays
// prepared on the server for as long as the connection lives. Func code that swallows a failure of its own is how a
// transaction reaches that state with statements still to come (after Func code they go through pgx.Batch; before
// that was so, the wire prepared them in the failed transaction).
func TestEvictedStatementsAreClosedAfterAFailedTransactionToo(t *testing.T) {
	const capacity = 4
	pool := wirePool(t, func(c *pgxpool.Config) { c.ConnConfig.StatementCacheCapacity = capacity })
	ctx := ctxT(t)
	for round := range 5 {
		for i := range capacity { // fill the cache
			_, err := tx.Run(ctx, pool, tx.QueryOne(fmt.Sprintf("SELECT $1::int + %d", round*100+i), pgx.RowTo[int], 1))
			require.NoError(t, err)
		}
		// Func code swallows a failure of its own: the transaction has failed when the next statement is prepared.
		work := tx.Then(tx.Func(func(ctx context.Context, q pgx.Tx) (pgconn.CommandTag, error) {
			_, _ = q.Exec(ctx, "SELECT 1/0")
			return pgconn.CommandTag{}, nil
		}), tx.QueryOne(fmt.Sprintf("SELECT $1::int - %d", round), pgx.RowTo[int], 1))
		_, err := tx.Run(ctx, pool, work, tx.WithPolicy(retry.Never()))
		require.Error(t, err)
	}
	_, err := tx.Run(ctx, pool, tx.QueryOne("SELECT $1::int * 2", pgx.RowTo[int], 1))
	require.NoError(t, err)
	require.LessOrEqual(t, ownStatements(t, pool), capacity)
}
