package tx_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// Defects found by the third review of 2026-12-06 (docs/reliability.md), each test failing without its fix.

// TestUserNetworkErrorsAreRecovered: a network error from user code (a web call, a file read) leaves the transaction's
// connection working, so Recover goes back to its savepoint and goes on, as for any other error.
func TestUserNetworkErrorsAreRecovered(t *testing.T) {
	causes := []error{io.EOF, io.ErrUnexpectedEOF,
		&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "mail.example", IsNotFound: true}}}
	for _, cause := range causes {
		t.Run(cause.Error(), func(t *testing.T) {
			pool := newPool(t, 1)
			fetch := tx.Func(func(ctx context.Context, q pgx.Tx) (string, error) {
				if _, err := q.Exec(ctx, "INSERT INTO log(note) VALUES ('inside')"); err != nil {
					return "", err
				}
				return "", cause
			})
			work := tx.Then(note("before"), tx.Recover(fetch, func(error) tx.Tx[string] { return tx.Pure("fallback") }))
			got, err := tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, "fallback", got)
			require.Equal(t, []string{"before"}, notes(t, pool), "the failed work's insert is rolled back")

		})
	}
}

// TestMapErrorKeepsTxControl: user SQL that committed, behind a MapError that replaces the error without wrapping it,
// still makes Run fail with ErrTxControl: an error without it says nothing was committed.
func TestMapErrorKeepsTxControl(t *testing.T) {
	pool := newPool(t, 1)
	runs := 0
	work := tx.MapError(tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		runs++
		if _, err := q.Exec(ctx, "INSERT INTO log(note) VALUES ('committed by user SQL')"); err != nil {
			return 0, err
		}
		_, err := q.Exec(ctx, "COMMIT")
		return 0, err
	}), func(error) error { return &pgconn.PgError{Code: "40001", Message: "looks retryable"} })
	_, err := tx.Run(ctxT(t), pool, work)
	require.ErrorIs(t, err, tx.ErrTxControl)
	require.Equal(t, 1, runs, "work that committed is not run again")
	require.Equal(t, 1, count(t, pool, "SELECT count(*) FROM log"))
}

// TestTooManyArgumentsAreInvalid: more arguments than a statement can have parameters is invalid input, refused
// before anything is sent. pgconn used to refuse it while encoding the round trip, after the savepoint queued with
// it was counted as sent: Recover then rolled back to a savepoint that did not exist.
func TestTooManyArgumentsAreInvalid(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("SELECT 1 WHERE 1 NOT IN (")
	args := make([]any, 65536)
	for i := range args {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, "$%d::int", i+1)
		args[i] = i + 2
	}
	sb.WriteString(")")
	huge := tx.Exec(sb.String(), args...)
	for _, mode := range everyExecMode() {
		t.Run(mode.String(), func(t *testing.T) {
			pool := wirePool(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			_, err := pool.Exec(ctxT(t), "CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE)")
			require.NoError(t, err)
			recovered := false
			work := tx.Then(note("before"), tx.Recover(huge, func(error) tx.Tx[pgconn.CommandTag] {
				recovered = true
				return note("fallback")
			}))
			_, err = tx.Run(ctxT(t), pool, work)
			require.ErrorIs(t, err, tx.ErrInvalid)
			require.ErrorContains(t, err, "65536 arguments")
			require.False(t, recovered, "invalid input is not recovered")
			require.Empty(t, notes(t, pool), "nothing is committed")
		})
	}
}

// TestStandardStringsEndAtTheirQuote: under standard_conforming_strings a backslash in '...' is a plain character.
// Taking it for an escape refused a valid statement, and let two statements through as one: under the simple
// protocol pgx ran both, and their extra result was read as the transaction-id look's (a panic in the library).
func TestStandardStringsEndAtTheirQuote(t *testing.T) {
	pool := wirePool(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol })
	_, err := pool.Exec(ctxT(t), "CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE)")
	require.NoError(t, err)

	const one = `SELECT count(*)::int FROM (VALUES ('a_b')) v(s) WHERE s LIKE 'a\_b' ESCAPE '\' AND s <> ';'`
	got, err := tx.Run(ctxT(t), pool, tx.QueryOne(one, pgx.RowTo[int]))
	require.NoError(t, err)
	require.Equal(t, 1, got)

	two := tx.Then(tx.Exec(`INSERT INTO log(note) VALUES ('C:\'); SELECT 'not yours'`),
		tx.QueryOne("SELECT '7'::text", pgx.RowTo[string]))
	_, err = tx.Run(ctxT(t), pool, two)
	require.ErrorIs(t, err, tx.ErrInvalid)
	require.Empty(t, notes(t, pool))
	require.False(t, errors.Is(err, tx.ErrCommitUnknown))
}

// TestLongThenChainsAreBuiltInLinearSpace: a chain grown one Then at a time, at its end or at its front, used to copy
// every earlier statement at each step. What building it allocates is measured, not how long it takes: doubling the
// chain must about double the bytes (quadratic building quadruples them).
func TestLongThenChainsAreBuiltInLinearSpace(t *testing.T) {
	one := func() tx.Tx[int] { return tx.Map(tx.Exec("SELECT 1"), func(pgconn.CommandTag) int { return 0 }) }
	for _, c := range []struct {
		name string
		grow func(w tx.Tx[int]) tx.Tx[int]
	}{
		{"at the end", func(w tx.Tx[int]) tx.Tx[int] { return tx.Then(w, one()) }},
		{"at the front", func(w tx.Tx[int]) tx.Tx[int] { return tx.Then(one(), w) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			build := func(n int) uint64 {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				w := one()
				for range n {
					w = c.grow(w)
				}
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(w)
				return after.TotalAlloc - before.TotalAlloc
			}
			small, large := build(4000), build(8000)
			require.Less(t, float64(large)/float64(small), 2.6, "bytes for 4,000 steps: %d, for 8,000: %d", small,
				large)
		})
	}
}

// TestThenChainsBuiltOnTwiceKeepTheirOwnStatements: chains extended from one base, at either end, share its
// statements, and each runs exactly its own (the first extension at an end writes into the room there; a second one
// at the same end must copy).
func TestThenChainsBuiltOnTwiceKeepTheirOwnStatements(t *testing.T) {
	pool := newPool(t, 1)
	base := note("0")
	baseNotes := []string{"0"}
	for i := 1; i < 40; i++ {
		base = tx.Then(base, note(strconv.Itoa(i)))
		baseNotes = append(baseNotes, strconv.Itoa(i))
	}
	left := tx.Then(base, note("left"))
	right := tx.Then(base, tx.Then(note("right"), note("right 2")))
	again := tx.Then(left, note("left 2"))
	before := tx.Then(note("before"), base)
	before2 := tx.Then(tx.Then(note("before 2"), note("before 3")), base)
	around := tx.Then(note("around"), again)
	for _, c := range []struct {
		work        tx.Tx[pgconn.CommandTag]
		first, last []string
	}{
		{right, nil, []string{"right", "right 2"}},
		{base, nil, nil},
		{left, nil, []string{"left"}},
		{again, nil, []string{"left", "left 2"}},
		{before, []string{"before"}, nil},
		{before2, []string{"before 2", "before 3"}, nil},
		{around, []string{"around"}, []string{"left", "left 2"}},
	} {
		_, err := pool.Exec(ctxT(t), "TRUNCATE log")
		require.NoError(t, err)
		_, err = tx.Run(ctxT(t), pool, c.work)
		require.NoError(t, err)
		got := notes(t, pool)
		want := append(append(slices.Clone(c.first), baseNotes...), c.last...)
		require.Equal(t, want, got)
	}
}

// TestFuncRoundTrips: each Func is a round-trip boundary, and BEGIN goes out on its own before a Func that starts the
// transaction (examples/sqlc and Func's documentation say so): BEGIN riding with user code's first statement would be
// lost or taken down with it when pgx fails that statement before sending it, or the server while preparing it.
func TestFuncRoundTrips(t *testing.T) {
	one := func(f func(ctx context.Context, q pgx.Tx) error) tx.Tx[struct{}] {
		return tx.Func(func(ctx context.Context, q pgx.Tx) (struct{}, error) { return struct{}{}, f(ctx, q) })
	}
	read := one(func(ctx context.Context, q pgx.Tx) error {
		var b int
		return q.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = $1", 1).Scan(&b)
	})
	cases := []struct {
		name  string
		work  tx.Tx[struct{}]
		trips int
	}{
		{"one query: BEGIN, the query, COMMIT", read, 3},
		{"after a statement of the runner, which carries BEGIN", tx.Then(tx.Exec("SELECT 1"), read), 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newTripCounter(t)
			n := tc.measure(t, func() error { _, err := tx.Run(ctxT(t), tc.conn, c.work); return err })
			require.Equal(t, c.trips, n)
		})
	}
}

// TestFuncSeveralStatementsAreNotReadAsTheLook: under the simple protocol pgx runs a Func's Exec of several
// statements, arguments and all, and answers each: a look sent after it read the second statement's result as the
// transaction id (here another transaction's, which reads "committed"), and a COMMIT that never reached the server
// was reported done.
func TestFuncSeveralStatementsAreNotReadAsTheLook(t *testing.T) {
	pool, check, proxy := ledgerPools(t, 1, func(c *pgxpool.Config) {
		c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	})
	// A first transaction on the one connection, so that its server history is known and the look reads an id alone.
	_, err := tx.Run(ctxT(t), pool, tx.Exec("INSERT INTO ledger VALUES ($1)", 1))
	require.NoError(t, err)
	proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		if faultproxy.IsCommit(m) {
			return faultproxy.CutBefore
		}
		return faultproxy.Forward
	})
	var other int64 // the id of a transaction that committed
	require.NoError(t, check.QueryRow(ctxT(t), "SELECT pg_current_xact_id()::text::bigint").Scan(&other))
	work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		_, err := q.Exec(ctx, "INSERT INTO ledger VALUES ($1); SELECT $2::bigint", 7, other)
		return 0, err
	})
	_, err = tx.Run(ctxT(t), pool, work, tx.WithPolicy(retry.Never()))
	require.Error(t, err, "the COMMIT never reached the server")
	var n int
	require.NoError(t, check.QueryRow(ctxT(t), "SELECT count(*) FROM ledger WHERE id = 7").Scan(&n))
	require.Zero(t, n)
}

// TestFuncConnectionLostWithBEGINIsRetried: the connection lost in the round trip that carries BEGIN with Func code's
// first statement leaves the connection's status at 'I', from before BEGIN. That is not a transaction ended by user
// SQL (ErrTxControl, never retried): nothing committed, and the run is retried on a new connection.
func TestFuncConnectionLostWithBEGINIsRetried(t *testing.T) {
	for _, mode := range everyExecMode() {
		t.Run(mode.String(), func(t *testing.T) {
			pool, check, proxy := ledgerPools(t, 2, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			var cut atomic.Bool
			proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
				if (m.Type == 'B' || m.Type == 'Q') && strings.Contains(m.SQL, "INSERT INTO ledger") &&
					cut.CompareAndSwap(false, true) {
					return faultproxy.CutAfter
				}
				return faultproxy.Forward
			})
			work := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				_, err := q.Exec(ctx, "INSERT INTO ledger VALUES ($1)", 7)
				return 0, err
			})
			_, err := tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.True(t, cut.Load(), "the round trip was cut")
			var n int
			require.NoError(t, check.QueryRow(ctxT(t), "SELECT count(*) FROM ledger").Scan(&n))
			require.Equal(t, 1, n)
		})
	}
}
