package tx_test

import (
	"fmt"
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

// TestTransactionIdLooks counts on the wire how often a transaction asks for its id: once for work that writes,
// whatever its shape, and never for work that only reads.
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
	cases := []struct {
		name string
		work tx.Tx[int]
		opts []tx.Option
		want int32
	}{
		{"one update", tx.Then(update, tx.Pure(0)), nil, 1},
		{"five independent reads", tx.Map(tx.All([]tx.Tx[int]{read(1), read(2), read(3), read(4), read(5)}),
			func(v []int) int { return len(v) }), nil, 0},
		{"a chain of four reads, then an update", chain, nil, 1},
		{"an update, then a dependent read", tx.Bind(update, func(pgconn.CommandTag) tx.Tx[int] { return read(1) }), nil, 1},
		{"an update, then nothing more (COMMIT looks)", tx.Bind(update, func(pgconn.CommandTag) tx.Tx[int] { return tx.Pure(0) }), nil, 1},
		{"a read-only transaction", read(1), []tx.Option{tx.ReadOnly()}, 0},
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

// TestUnlookedWorkIsNeverTakenForReadOnly: work the runner did not look at after (it read, as far as the text shows)
// is reported unknown when its COMMIT answer is lost — also when, as here, the read wrote through a function. Work it
// did look at is still resolved.
func TestUnlookedWorkIsNeverTakenForReadOnly(t *testing.T) {
	pool, check, proxy := ledgerPools(t, 1)
	ctx := ctxT(t)
	_, err := check.Exec(ctx, "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'INSERT INTO ledger VALUES (7) RETURNING 1'")
	require.NoError(t, err)
	cases := []struct {
		name    string
		work    tx.Tx[int]
		unknown bool
		rows    int // ledger rows written by one committed run
	}{
		{"a SELECT that writes through a function", tx.QueryOne("SELECT sneaky()", pgx.RowTo[int]), true, 1},
		{"a plain read", tx.QueryOne("SELECT 1", pgx.RowTo[int]), true, 0},
		{"an insert", tx.Map(tx.Exec("INSERT INTO ledger VALUES (7)"), func(pgconn.CommandTag) int { return 1 }), false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := check.Exec(ctx, "TRUNCATE ledger")
			require.NoError(t, err)
			before := proxy.Stats().Cuts
			proxy.SetRule(onFirstCommit(faultproxy.CutAfter))
			_, err = tx.Run(ctx, pool, c.work, tx.WithPolicy(retry.Never()))
			require.Equal(t, uint64(1), proxy.Stats().Cuts-before)
			written := count(t, check, "SELECT count(*) FROM ledger")
			require.LessOrEqual(t, written, c.rows)
			if c.unknown {
				require.ErrorIs(t, err, tx.ErrCommitUnknown, fmt.Sprint(err))
				return
			}
			require.NotErrorIs(t, err, tx.ErrCommitUnknown, "resolved")
			require.Equal(t, err == nil, written == 1, "resolved as it happened: %v", err)
		})
	}
}
