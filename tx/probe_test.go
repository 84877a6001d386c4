package tx_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// isProbe reports whether m runs the runner's transaction-id look.
func isProbe(m faultproxy.Message) bool {
	return m.Type == 'B' && strings.Contains(m.SQL, "pg_current_xact_id_if_assigned")
}

// TestTransactionIdLooks counts on the wire how often a transaction asks for its id: once per read-write transaction
// whatever its shape (twice where a statement that could have written did not), and never in a read-only one.
func TestTransactionIdLooks(t *testing.T) {
	pool, check, proxy := ledgerPools(t, 1)
	ctx := ctxT(t)
	_, err := check.Exec(ctx, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL); "+
		"INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g")
	require.NoError(t, err)
	var looks atomic.Int32
	proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		if isProbe(m) {
			looks.Add(1)
		}
		return faultproxy.Forward
	})
	read := func(id int) tx.Tx[int] {
		return tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], id)
	}
	update := tx.Exec("UPDATE accounts SET balance = balance WHERE id = 1")
	chain := tx.Bind(read(1), func(int) tx.Tx[int] {
		return tx.Bind(read(2), func(int) tx.Tx[int] {
			return tx.Bind(read(3), func(int) tx.Tx[int] {
				return tx.Bind(read(4), func(int) tx.Tx[int] { return tx.Then(update, tx.Pure(0)) })
			})
		})
	})
	goOnly := func(t tx.Tx[pgconn.CommandTag]) tx.Tx[int] {
		return tx.Bind(t, func(pgconn.CommandTag) tx.Tx[int] { return tx.Pure(0) })
	}
	five := tx.Map(tx.All([]tx.Tx[int]{read(1), read(2), read(3), read(4), read(5)}), func(v []int) int { return len(v) })
	cases := []struct {
		name string
		work tx.Tx[int]
		opts []tx.Option
		want int32
	}{
		{"one update", tx.Then(update, tx.Pure(0)), nil, 1},
		{"five independent reads (the last round trip looks)", five, nil, 1},
		{"a chain of reads", tx.Bind(read(1), func(int) tx.Tx[int] { return read(2) }), nil, 1},
		{"a chain of four reads, then an update", chain, nil, 1},
		{"an update, then a dependent read", tx.Bind(update, func(pgconn.CommandTag) tx.Tx[int] { return read(1) }), nil, 1},
		{"an update, then only Go", goOnly(update), nil, 1},
		{"a read, then only Go (COMMIT looks)", tx.Bind(read(1), func(int) tx.Tx[int] { return tx.Pure(0) }), nil, 1},
		{"an update of no row, then an update (the first wrote nothing)", tx.Bind(
			tx.Exec("UPDATE accounts SET balance = balance WHERE id = 0"),
			func(pgconn.CommandTag) tx.Tx[int] { return tx.Then(update, tx.Pure(0)) }), nil, 2},
		{"a read-only transaction", read(1), []tx.Option{tx.ReadOnly()}, 0},
		{"five reads, read only", five, []tx.Option{tx.ReadOnly()}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tx.Run(ctx, pool, c.work, c.opts...) // warm: the first use of a connection also learns its history
			require.NoError(t, err)
			looks.Store(0)
			_, err = tx.Run(ctx, pool, c.work, c.opts...)
			require.NoError(t, err)
			require.Equal(t, c.want, looks.Load())
		})
	}
}

// TestReadsThatWriteAreResolved: a statement whose text only reads may still write (here through a function), so a
// read-write transaction is looked at before COMMIT even when every statement looked like a read. A lost COMMIT
// answer is then resolved as it happened, for a SELECT that wrote, a plain read and an insert alike.
func TestReadsThatWriteAreResolved(t *testing.T) {
	pool, check, proxy := ledgerPools(t, 1)
	ctx := ctxT(t)
	_, err := check.Exec(ctx, "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'INSERT INTO ledger VALUES (7) RETURNING 1'")
	require.NoError(t, err)
	cases := []struct {
		name string
		work tx.Tx[int]
		rows int // ledger rows written by one committed run
	}{
		{"a SELECT that writes through a function", tx.QueryOne("SELECT sneaky()", pgx.RowTo[int]), 1},
		{"two reads, the second writing", tx.Bind(tx.QueryOne("SELECT 1", pgx.RowTo[int]), func(int) tx.Tx[int] {
			return tx.QueryOne("SELECT sneaky()", pgx.RowTo[int])
		}), 1},
		{"a plain read", tx.QueryOne("SELECT 1", pgx.RowTo[int]), 0},
		{"an insert", tx.Map(tx.Exec("INSERT INTO ledger VALUES (7)"), func(pgconn.CommandTag) int { return 1 }), 1},
		{"user pgx code that inserts", tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			_, err := q.Exec(ctx, "INSERT INTO ledger VALUES ($1)", 7)
			return 1, err
		}), 1},
		{"an insert, then only Go", tx.Bind(tx.Exec("INSERT INTO ledger VALUES (7)"), func(pgconn.CommandTag) tx.Tx[int] {
			return tx.Pure(1)
		}), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := check.Exec(ctx, "TRUNCATE ledger")
			require.NoError(t, err)
			before := proxy.Stats().Cuts
			proxy.SetRule(onFirstCommit(faultproxy.CutAfter))
			got, err := tx.Run(ctx, pool, c.work, tx.WithPolicy(retry.Never()))
			require.Equal(t, uint64(1), proxy.Stats().Cuts-before)
			written := count(t, check, "SELECT count(*) FROM ledger")
			require.NotErrorIs(t, err, tx.ErrCommitUnknown, "resolved")
			if c.rows == 0 {
				require.NoError(t, err, "a transaction that wrote nothing stands")
				require.Equal(t, 1, got)
				require.Zero(t, written)
				return
			}
			require.LessOrEqual(t, written, c.rows)
			require.Equal(t, err == nil, written == 1, "resolved as it happened: %v", err)
			if err == nil {
				require.Equal(t, 1, got)
			}
		})
	}
}

// TestUserCodeThatWroteIsNeverTakenForNothing: an Exec of user code that wrote nothing (an UPDATE of no row) learns
// no id, and user code then writes on the raw connection, which the runner does not see. Only the look in the COMMIT
// batch comes after that write, and a lost COMMIT answer takes it along: the outcome must be unknown, not "wrote
// nothing".
func TestUserCodeThatWroteIsNeverTakenForNothing(t *testing.T) {
	pool, check, proxy := ledgerPools(t, 1)
	ctx := ctxT(t)
	// Cut after COMMIT is bound to run, not after pgx's preparing round trip parses it: that one runs nothing, and
	// a cut there is known not to have committed.
	var commits atomic.Int32
	proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		if faultproxy.IsCommit(m) && m.Type != 'P' && commits.Add(1) == 1 {
			return faultproxy.CutAfter
		}
		return faultproxy.Forward
	})
	_, err := tx.Run(ctx, pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		if _, err := q.Exec(ctx, "UPDATE ledger SET id = id WHERE id = $1", -1); err != nil {
			return 0, err
		}
		_, err := q.Conn().Exec(ctx, "INSERT INTO ledger VALUES ($1)", 7)
		return 1, err
	}), tx.WithPolicy(retry.Never()))
	require.Equal(t, uint64(1), proxy.Stats().Cuts, "%v", err)
	require.ErrorIs(t, err, tx.ErrCommitUnknown)
	require.LessOrEqual(t, count(t, check, "SELECT count(*) FROM ledger"), 1)
}

// TestCommitCutWhilePgxPreparesItIsRetried: pgx prepares a batch's new statements in a round trip of its own before
// sending the batch, COMMIT included. A connection lost during that round trip ran nothing of the batch: the
// transaction did not commit, and is retried like any loss before COMMIT (it used to be reported as unknown).
func TestCommitCutWhilePgxPreparesItIsRetried(t *testing.T) {
	pool, check, proxy := ledgerPools(t, 1)
	var parses atomic.Int32
	proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		if faultproxy.IsCommit(m) && m.Type == 'P' && parses.Add(1) == 1 {
			return faultproxy.CutAfter
		}
		return faultproxy.Forward
	})
	policy := retry.New(retry.On(retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0)))
	_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		var n int
		return n, q.QueryRow(ctx, "INSERT INTO ledger VALUES (7) RETURNING id").Scan(&n)
	}), tx.WithPolicy(policy))
	require.Equal(t, uint64(1), proxy.Stats().Cuts)
	if pool.Config().ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement {
		// The exec mode (behind pgbouncer) sends each Parse with its Bind and Execute, in the round trip that runs
		// them: a cut there is one the runner cannot tell from a cut after COMMIT ran, and it says so.
		require.ErrorIs(t, err, tx.ErrCommitUnknown)
		require.LessOrEqual(t, count(t, check, "SELECT count(*) FROM ledger"), 1)
		return
	}
	require.NoError(t, err)
	require.Equal(t, 1, count(t, check, "SELECT count(*) FROM ledger"), "committed once")
}
