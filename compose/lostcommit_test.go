package compose_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// TestLostCommitOfDynamicWorkIsResolved: ForEach and When over dynamic elements (a Bind) whose statements read like
// reads (SELECT fn($1), where fn writes). Their last round trip must look at the transaction id, so that a COMMIT
// whose answer is lost is resolved with pg_xact_status, not left unknown.
func TestLostCommitOfDynamicWorkIsResolved(t *testing.T) {
	elem := func(i int) tx.Tx[pgconn.CommandTag] {
		return tx.Bind(tx.Pure(i), func(i int) tx.Tx[pgconn.CommandTag] { return tx.Exec("SELECT ledger_add($1)", i) })
	}
	works := map[string]tx.Tx[struct{}]{
		"ForEach":         compose.ForEach([]int{1, 2}, elem),
		"When(true, All)": compose.When(true, tx.All([]tx.Tx[pgconn.CommandTag]{elem(1), elem(2)})),
	}
	for name, work := range works {
		t.Run(name, func(t *testing.T) {
			direct := pgtest.Config(t)
			target := net.JoinHostPort(direct.ConnConfig.Host, strconv.Itoa(int(direct.ConnConfig.Port)))
			proxy, err := faultproxy.Start(target)
			require.NoError(t, err)
			t.Cleanup(func() { _ = proxy.Close() })
			cfg := direct.Copy()
			proxy.Route(&cfg.ConnConfig.Config)
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			check, err := pgxpool.NewWithConfig(context.Background(), direct)
			require.NoError(t, err)
			t.Cleanup(check.Close)
			_, err = check.Exec(ctxT(t), `CREATE TABLE ledger (id int NOT NULL);
				CREATE FUNCTION ledger_add(int) RETURNS void LANGUAGE sql AS 'INSERT INTO ledger VALUES ($1)'`)
			require.NoError(t, err)
			var commits atomic.Int32
			proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
				if faultproxy.IsCommit(m) && m.Type != 'P' && commits.Add(1) == 1 {
					return faultproxy.CutAfter
				}
				return faultproxy.Forward
			})
			policy := retry.New(retry.On(retry.ConnectionLost), retry.MaxAttempts(3), retry.WithBackoff(retry.Constant(0)))
			_, err = tx.Run(ctxT(t), pool, work, tx.WithPolicy(policy))
			require.Equal(t, uint64(1), proxy.Stats().Cuts)
			require.NoError(t, err, "the lost COMMIT is resolved")
			var n int
			require.NoError(t, check.QueryRow(ctxT(t), "SELECT count(*) FROM ledger").Scan(&n))
			require.Equal(t, 2, n, "applied once")
		})
	}
}
