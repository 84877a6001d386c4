package ledger_test

import (
	"context"
	_ "embed"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	ledger "github.com/pgxact/pgxact/examples/sqlc"
	"github.com/pgxact/pgxact/examples/sqlc/db"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

//go:embed schema.sql
var schema string

func TestMain(m *testing.M) { pgtest.Main(m) }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newLedger returns a pool on a fresh database with the schema and two accounts, 100 each.
func newLedger(t *testing.T) (*pgxpool.Pool, db.Account, db.Account) {
	t.Helper()
	pool := pgtest.Pool(t)
	_, err := pool.Exec(ctxT(t), schema)
	require.NoError(t, err)
	a, err := tx.Run(ctxT(t), pool, ledger.Open("ada", 100))
	require.NoError(t, err)
	b, err := tx.Run(ctxT(t), pool, ledger.Open("bob", 100))
	require.NoError(t, err)
	return pool, a, b
}

func TestTransferIsRetriedByTheRunner(t *testing.T) {
	for _, c := range []struct {
		name  string
		point txtest.Option
	}{{"failing at commit", txtest.AtCommit()}, {"failing in the body", txtest.InBody()}} {
		t.Run(c.name, func(t *testing.T) {
			pool, ada, bob := newLedger(t)
			inj := txtest.Inject(pool, txtest.FailFirst(2), c.point)
			got, err := tx.Run(ctxT(t), inj, ledger.Transfer(ada.ID, bob.ID, 30), tx.WithPolicy(txtest.Policy()))
			require.NoError(t, err)
			require.Equal(t, 3, inj.Attempts())
			require.Equal(t, int64(30), got.Amount)

			history, err := tx.Run(ctxT(t), pool, ledger.History(ada.ID), tx.ReadOnly())
			require.NoError(t, err)
			require.Len(t, history, 1, "the transfer is recorded once")
			after, err := tx.Run(ctxT(t), pool, ledger.Account(ada.ID))
			require.NoError(t, err)
			require.Equal(t, int64(70), after.Balance, "and applied once")
		})
	}
}

func TestTransferRefusesToOverdraw(t *testing.T) {
	pool, ada, bob := newLedger(t)
	_, err := tx.Run(ctxT(t), pool, ledger.Transfer(ada.ID, bob.ID, 101))
	require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
}

// Concurrent transfers from one account read the same balance; SERIALIZABLE makes all but one of each conflicting
// group fail with 40001, and the runner reruns them from the read, so the account is never overdrawn — the CHECK
// constraint, which would report a violation, is never reached.
func TestConcurrentTransfersNeverOverspend(t *testing.T) {
	pool, ada, bob := newLedger(t)
	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() { _, errs[w] = tx.Run(ctxT(t), pool, ledger.Transfer(ada.ID, bob.ID, 30)) })
	}
	wg.Wait()
	succeeded := 0
	for _, err := range errs {
		if err == nil {
			succeeded++
			continue
		}
		require.True(t, errors.Is(err, ledger.ErrInsufficientFunds), "unexpected error: %v", err)
	}
	require.Equal(t, 3, succeeded, "100 covers three transfers of 30")
	after, err := tx.Run(ctxT(t), pool, ledger.Account(ada.ID))
	require.NoError(t, err)
	require.Equal(t, int64(10), after.Balance)
	total, err := tx.Run(ctxT(t), pool, ledger.Total())
	require.NoError(t, err)
	require.Equal(t, int64(200), total)
}

func TestTransferIsRetrySafe(t *testing.T) {
	pool, ada, bob := newLedger(t)
	count := func() txtest.Counts {
		h, err := tx.Run(ctxT(t), pool, ledger.History(ada.ID), tx.ReadOnly())
		require.NoError(t, err)
		return txtest.Counts{"transfers": len(h)}
	}
	txtest.RequireRetrySafe(t, pool, ledger.Transfer(ada.ID, bob.ID, 1), count)
}
