package jepsen_test

import (
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// script is a proxy rule that applies actions to the first COMMIT and the messages after it, then forwards.
type script struct {
	mu      sync.Mutex
	actions []faultproxy.Action // [0] for the first COMMIT, [1] for the next message, ...
	next    int                 // -1 until the first COMMIT
}

func newScript(actions ...faultproxy.Action) *script { return &script{actions: actions, next: -1} }

func (s *script) rule(m faultproxy.Message) faultproxy.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next < 0 && !faultproxy.IsCommit(m) {
		return faultproxy.Forward
	}
	s.next++
	if s.next < len(s.actions) {
		return s.actions[s.next]
	}
	return faultproxy.Forward
}

// TestAmbiguousCommitIsNeverRunTwice: the answer to COMMIT is lost, and so is every connection the runner opens to
// ask pg_xact_status (it tries several, see tx/commit.go). The outcome is then unknown, and Run must say so rather
// than run the insert again.
func TestAmbiguousCommitIsNeverRunTwice(t *testing.T) {
	for _, second := range []faultproxy.Action{faultproxy.CutBefore, faultproxy.CutAfter} {
		t.Run("status query "+second.String(), func(t *testing.T) {
			d := newDB(t)
			ctx := testCtx(t, time.Minute)
			_, err := d.admin.Exec(ctx, "CREATE TABLE t (n int)")
			require.NoError(t, err)
			proxy := d.startProxy(t)
			actions := []faultproxy.Action{faultproxy.CutAfter}
			for range 50 { // more than the status query's retries
				actions = append(actions, second)
			}
			proxy.SetRule(newScript(actions...).rule)
			pool := newPool(t, d.poolConfig(t, 2, proxy))

			_, err = tx.Run(ctx, pool, tx.Exec("INSERT INTO t VALUES (1)"), tx.WithPolicy(suitePolicy()))
			pool.Close()
			d.requireNoOtherSessions(t) // the cut backend settles the outcome on its own time

			var rows int
			require.NoError(t, d.admin.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&rows))
			require.LessOrEqual(t, rows, 1, "the insert was applied %d times; Run returned %v", rows, err)
			require.ErrorIs(t, err, tx.ErrCommitUnknown, "rows: %d", rows)
			require.Equal(t, retry.Other, retry.Classify(err), "an unknown outcome must never classify as retryable: %v", err)
		})
	}
}

// TestResolvedCommitKeepsTheResult: the answer to COMMIT is lost but the runner establishes that the transaction
// committed (or, read-only, that it cannot matter). Run succeeds, and must yield what the transaction computed,
// not the zero value.
func TestResolvedCommitKeepsTheResult(t *testing.T) {
	cases := []struct {
		name string
		opts []tx.Option
		work tx.Tx[int]
	}{
		{"read only", []tx.Option{tx.ReadOnly()}, tx.QueryOne("SELECT 42", pgx.RowTo[int])},
		{"read-write without writes", nil, tx.QueryOne("SELECT 42", pgx.RowTo[int])},
		{"insert returning, committed", nil, tx.QueryOne("INSERT INTO t VALUES (42) RETURNING n", pgx.RowTo[int])},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The COMMIT reaches the server, but a backend slow to read it (a loaded machine) is still in the
			// transaction when the runner asks, and the runner then ends it: a definite "not committed", which is
			// sound but not this test's case. Then it runs again, on a fresh database, at most five times.
			for try := 1; ; try++ {
				d := newDB(t)
				ctx := testCtx(t, time.Minute)
				_, err := d.admin.Exec(ctx, "CREATE TABLE t (n int)")
				require.NoError(t, err)
				proxy := d.startProxy(t)
				proxy.SetRule(newScript(faultproxy.CutAfter).rule)
				pool := newPool(t, d.poolConfig(t, 2, proxy))

				v, err := tx.Run(ctx, pool, c.work, append(c.opts, tx.WithPolicy(retry.Never()))...)
				if err != nil && try < 5 {
					require.NotErrorIs(t, err, tx.ErrCommitUnknown)
					var rows int
					require.NoError(t, d.admin.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&rows))
					require.Zero(t, rows, "Run failed (%v), yet the insert committed", err)
					t.Logf("try %d: the transaction was ended before its COMMIT ran: %v", try, err)
					continue
				}
				require.NoError(t, err)
				require.Equal(t, 42, v, "Run succeeded but lost the transaction's result")
				return
			}
		})
	}
}
