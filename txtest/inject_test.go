package txtest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

// countedTransfer moves 10 from account 1 to 2 and counts how often its body starts.
func countedTransfer(runs *atomic.Int32) tx.Tx[pgconn.CommandTag] {
	start := tx.Func(func(context.Context, pgx.Tx) (struct{}, error) { runs.Add(1); return struct{}{}, nil })
	return tx.Then(start, tx.Exec("UPDATE accounts SET balance = balance + CASE id WHEN 1 THEN -10 ELSE 10 END WHERE id IN (1, 2)"))
}

var points = []struct {
	name   string
	option txtest.Option
}{
	{"at commit", txtest.AtCommit()},
	{"in the body", txtest.InBody()},
}

func TestInjectedFailuresAreRetried(t *testing.T) {
	for _, p := range points {
		for _, n := range []int{1, 3} {
			t.Run(p.name+", failing the first attempts", func(t *testing.T) {
				pool := newPool(t)
				db := txtest.Inject(pool, txtest.FailFirst(n), p.option)
				var runs atomic.Int32
				log := &attemptLog{}
				_, err := tx.Run(ctxT(t), db, countedTransfer(&runs), tx.WithObserver(log))
				require.NoError(t, err)
				require.EqualValues(t, n+1, runs.Load(), "body runs")
				require.Equal(t, n+1, db.Attempts())
				require.Equal(t, n, db.Injected())
				require.Len(t, log.attempts, n+1)
				for _, a := range log.attempts[:n] {
					require.Equal(t, "40001", a.SQLState)
					require.Equal(t, retry.Serialization, a.Class)
					require.True(t, a.Retry)
				}
				require.NoError(t, log.attempts[n].Err)
				require.Equal(t, 90, balance(t, pool, 1), "the transfer is applied once")
				require.Equal(t, 110, balance(t, pool, 2))
				requireCleanPool(t, pool)
			})
		}
	}
}

// TestEachRunFailsTheFirstAttemptsOfEveryRun: with EachRun, several runs through one Injector each have their first
// n attempts failed; without it, only the first n attempts of all of them are.
func TestEachRunFailsTheFirstAttemptsOfEveryRun(t *testing.T) {
	for _, p := range points {
		for _, each := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, EachRun %v", p.name, each), func(t *testing.T) {
				pool := newPool(t)
				opts := []txtest.Option{txtest.FailFirst(2), p.option}
				if each {
					opts = append(opts, txtest.EachRun())
				}
				db := txtest.Inject(pool, opts...)
				var bodies []int32
				for range 3 {
					var runs atomic.Int32
					_, err := tx.Run(ctxT(t), db, countedTransfer(&runs), tx.WithPolicy(txtest.Policy()))
					require.NoError(t, err)
					bodies = append(bodies, runs.Load())
				}
				if each {
					require.Equal(t, []int32{3, 3, 3}, bodies, "body runs of each transaction")
					require.Equal(t, 6, db.Injected())
				} else {
					require.Equal(t, []int32{3, 1, 1}, bodies, "body runs of each transaction")
					require.Equal(t, 2, db.Injected())
				}
				require.Equal(t, 70, balance(t, pool, 1), "each transfer is applied once")
				requireCleanPool(t, pool)
			})
		}
	}
}

func TestInjectedFailuresCarryTheServersError(t *testing.T) {
	cases := []struct {
		name   string
		option txtest.Option
		work   tx.Tx[pgconn.CommandTag]
		check  func(t *testing.T, err error)
	}{
		{"at commit, COMMIT fails", txtest.AtCommit(), tx.Exec("UPDATE accounts SET balance = 0"), func(t *testing.T, err error) {
			require.ErrorContains(t, err, "tx: commit")
		}},
		{"in the body, the first table access fails", txtest.InBody(), tx.Exec("UPDATE accounts SET balance = 0"), func(t *testing.T, err error) {
			var se *tx.StatementError
			require.ErrorAs(t, err, &se)
			require.Equal(t, "UPDATE accounts SET balance = 0", se.SQL)
		}},
		{"in a body that touches no table, COMMIT fails", txtest.InBody(), tx.Exec("SELECT 1"), func(t *testing.T, err error) {
			require.ErrorContains(t, err, "tx: commit")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := newPool(t)
			_, err := tx.Run(ctxT(t), txtest.Inject(pool, c.option), c.work, tx.WithPolicy(retry.Never()))
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, "40001", pgErr.Code)
			require.Equal(t, "ERROR", pgErr.Severity)
			c.check(t, err)
			require.Equal(t, 100, balance(t, pool, 1), "nothing committed")
			requireCleanPool(t, pool)
		})
	}
}

func TestMoreFailuresThanThePolicyAllows(t *testing.T) {
	pool := newPool(t)
	var runs atomic.Int32
	_, err := tx.Run(ctxT(t), txtest.Inject(pool, txtest.FailFirst(5)), countedTransfer(&runs),
		tx.WithPolicy(retry.New(retry.On(retry.Serialization), retry.MaxAttempts(3))))
	var re *tx.RetryError
	require.ErrorAs(t, err, &re)
	require.Equal(t, 3, re.Attempts)
	require.EqualValues(t, 3, runs.Load())
	require.Equal(t, 100, balance(t, pool, 1))
}

func TestAtCommitWorksAtEveryIsolationLevelAndReadOnly(t *testing.T) {
	cases := []struct {
		name          string
		opts          []tx.Option
		isolation, ro string // as the armed attempts must see them
	}{
		{"read committed", []tx.Option{tx.WithIsolation(pgx.ReadCommitted)}, "read committed", "off"},
		{"repeatable read", []tx.Option{tx.WithIsolation(pgx.RepeatableRead)}, "repeatable read", "off"},
		{"serializable read only", []tx.Option{tx.ReadOnly()}, "serializable", "on"},
	}
	type seen struct {
		Balance       int
		Isolation, RO string
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := newPool(t)
			db := txtest.Inject(pool, txtest.FailFirst(2))
			var attempts []seen
			read := tx.Map(tx.QueryOne(`SELECT balance, current_setting('transaction_isolation'),
				current_setting('transaction_read_only') FROM accounts WHERE id = 1`, pgx.RowToStructByPos[seen]),
				func(s seen) int { attempts = append(attempts, s); return s.Balance })
			got, err := tx.Run(ctxT(t), db, read, c.opts...)
			require.NoError(t, err)
			require.Equal(t, 100, got)
			require.Equal(t, 3, db.Attempts())
			require.Len(t, attempts, 3)
			for _, a := range attempts {
				require.Equal(t, seen{100, c.isolation, c.ro}, a, "every attempt, armed or not, runs as asked")
			}
			requireCleanPool(t, pool)
		})
	}
}

func TestUnsupportedTransactionsAreRefused(t *testing.T) {
	cases := []struct {
		name   string
		option txtest.Option
		opts   []tx.Option
	}{
		{"in the body of a read-only transaction", txtest.InBody(), []tx.Option{tx.ReadOnly()}},
		{"in the body of a repeatable read transaction", txtest.InBody(), []tx.Option{tx.WithIsolation(pgx.RepeatableRead)}},
		{"at the commit of a deferrable transaction", txtest.AtCommit(), []tx.Option{tx.ReadOnly(), tx.Deferrable()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := newPool(t)
			_, err := tx.Run(ctxT(t), txtest.Inject(pool, c.option), tx.Exec("SELECT 1"), c.opts...)
			require.ErrorIs(t, err, txtest.ErrUnsupported)
			requireCleanPool(t, pool)
		})
	}
}

// TestInjectOverAConnOrAnAcquirer: issue 8's "wrap a db": an Injector takes a *pgx.Conn, and any tx.Acquirer (here
// another Injector, which counts what reaches it), as well as a pool.
func TestInjectOverAConnOrAnAcquirer(t *testing.T) {
	for _, p := range points {
		t.Run(p.name+", on a conn", func(t *testing.T) {
			pool := newPool(t)
			c, err := pool.Acquire(ctxT(t))
			require.NoError(t, err)
			defer c.Release()
			db := txtest.Inject(c.Conn(), txtest.FailFirst(2), p.option)
			var runs atomic.Int32
			_, err = tx.Run(ctxT(t), db, countedTransfer(&runs), tx.WithPolicy(txtest.Policy()))
			require.NoError(t, err)
			require.EqualValues(t, 3, runs.Load(), "body runs")
			require.Equal(t, 2, db.Injected())
			require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus())
			require.Equal(t, 90, balance(t, pool, 1), "the transfer is applied once")
		})
		t.Run(p.name+", on an acquirer", func(t *testing.T) {
			pool := newPool(t)
			inner := txtest.Inject(pool, txtest.FailFirst(0))
			db := txtest.Inject(inner, txtest.FailFirst(1), p.option)
			var runs atomic.Int32
			_, err := tx.Run(ctxT(t), db, countedTransfer(&runs), tx.WithPolicy(txtest.Policy()))
			require.NoError(t, err)
			require.EqualValues(t, 2, runs.Load(), "body runs")
			require.Equal(t, 2, inner.Attempts(), "every attempt went through the inner acquirer")
			require.Equal(t, 90, balance(t, pool, 1))
			requireCleanPool(t, pool)
		})
	}
}

// beginOnly is a tx.DB that an Injector cannot lend connections from.
type beginOnly struct{ tx.DB }

func TestInvalidInjectorsFailEveryRun(t *testing.T) {
	pool := newPool(t)
	var nilPool *pgxpool.Pool
	for name, db := range map[string]*txtest.Injector{
		"nil pool":       txtest.Inject(nil),
		"typed nil pool": txtest.Inject(nilPool),
		"a bare tx.DB":   txtest.Inject(beginOnly{pool}),
		"FailFirst(-1)":  txtest.Inject(pool, txtest.FailFirst(-1)),
		"nil option":     txtest.Inject(pool, nil),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tx.Run(ctxT(t), db, tx.Exec("SELECT 1"))
			require.ErrorIs(t, err, tx.ErrInvalid)
		})
	}
}

func TestWorkWithoutStatementsLeavesNoOpenTransaction(t *testing.T) {
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			pool := newPool(t)
			db := txtest.Inject(pool, p.option)
			got, err := tx.Run(ctxT(t), db, tx.Pure(7))
			require.NoError(t, err)
			require.Equal(t, 7, got)
			require.Equal(t, 1, db.Attempts(), "nothing reached COMMIT, so nothing failed")
			requireCleanPool(t, pool)
		})
	}
}

func TestConcurrentRunsShareTheInjectedFailures(t *testing.T) {
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			pool := newPool(t)
			const workers, failures = 4, 4
			db := txtest.Inject(pool, txtest.FailFirst(failures), p.option)
			var runs atomic.Int32
			var wg sync.WaitGroup
			errs := make([]error, workers)
			for w := range workers {
				wg.Go(func() { _, errs[w] = tx.Run(ctxT(t), db, countedTransfer(&runs)) })
			}
			wg.Wait()
			require.NoError(t, errors.Join(errs...))
			// Real conflicts between the workers may add attempts; the injected ones are exact.
			require.Equal(t, failures, db.Injected())
			require.GreaterOrEqual(t, db.Attempts(), workers+failures)
			require.Equal(t, 100-10*workers, balance(t, pool, 1))
			requireCleanPool(t, pool)
		})
	}
}
