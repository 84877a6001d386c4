package tx_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

// TestRoundTrips counts the round trips a transaction makes on the wire, after pgx's statement cache is warm.
func TestRoundTrips(t *testing.T) {
	tc := newTripCounter(t)
	ctx := ctxT(t)
	read := func(id int) tx.Tx[int] {
		return tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], id)
	}
	chain := func(k int) tx.Tx[int] {
		t := read(1)
		for range k - 1 {
			t = tx.Bind(t, func(b int) tx.Tx[int] {
				return tx.QueryOne("SELECT balance + $1::int - $1::int FROM accounts WHERE id = 1", pgx.RowTo[int], b)
			})
		}
		return t
	}
	reads := func(k int) tx.Tx[[]int] {
		ts := make([]tx.Tx[int], k)
		for i := range ts {
			ts[i] = read(i%10 + 1)
		}
		return tx.All(ts)
	}
	runs := func(t tx.Tx[int]) func() error {
		return func() error { _, err := tx.Run(ctx, tc.conn, t); return err }
	}
	cases := []struct {
		name string
		run  func() error
		want int
	}{
		{"pgx.BeginTxFunc, one statement (the baseline)", func() error {
			return pgx.BeginTxFunc(ctx, tc.conn, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(q pgx.Tx) error {
				_, err := q.Exec(ctx, "UPDATE accounts SET balance = balance WHERE id = 1")
				return err
			})
		}, 3},
		{"one statement", func() error {
			_, err := tx.Run(ctx, tc.conn, tx.Exec("UPDATE accounts SET balance = balance WHERE id = 1"))
			return err
		}, 2},
		{"five independent reads", func() error { _, err := tx.Run(ctx, tc.conn, reads(5)); return err }, 2},
		{"twenty independent reads", func() error { _, err := tx.Run(ctx, tc.conn, reads(20)); return err }, 2},
		{"a Bind chain of three", runs(chain(3)), 4},
		{"a Bind chain of five", runs(chain(5)), 6},
		{"Then of two statements", runs(tx.Then(tx.Exec("SELECT 1"), read(2))), 2},
		{"a read-only transaction", func() error { _, err := tx.Run(ctx, tc.conn, reads(3), tx.ReadOnly()); return err }, 2},
		{"Pure touches nothing", runs(tx.Pure(1)), 0},
		{"a Nested statement after another", runs(tx.Then(tx.Exec("SELECT 1"), tx.Nested(read(1)))), 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, tc.measure(t, c.run))
		})
	}
}

// TestSavepointsCostNoRoundTripInEveryMode: a Nested scope's SAVEPOINT rides along with the next statements on pgx's
// batch path (a Tracer, the describing mode) as on the runner's own wire: it goes out on its own only for a statement
// the connection has not seen yet, which measure's warm-up run is. So every mode makes as many round trips as the wire.
func TestSavepointsCostNoRoundTripInEveryMode(t *testing.T) {
	ctx := ctxT(t)
	read := func(id int) tx.Tx[int] {
		return tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], id)
	}
	named := tx.QueryOne("SELECT balance FROM accounts WHERE id = @id", pgx.RowTo[int], pgx.NamedArgs{"id": 1})
	works := []tx.Tx[int]{
		tx.Then(tx.Exec("SELECT 1"), tx.Nested(read(1))),
		tx.Then(tx.Then(tx.Exec("SELECT 1"), tx.Nested(read(1))), tx.Nested(read(2))),
		tx.Then(tx.Exec("SELECT 1"), tx.Nested(named)), // pgx caches the text its NamedArgs rewrite makes
		tx.Then(tx.Exec("SELECT 1"), tx.Nested(tx.QueryOne("SELECT balance FROM accounts WHERE id = @id",
			pgx.RowTo[int], &pgx.NamedArgs{"id": 1}))),
	}
	trips := func(t *testing.T, configure func(*pgx.ConnConfig)) []int {
		tc := newTripCounter(t, configure)
		var n []int
		for _, w := range works {
			// Twice warm: the first run sends the SAVEPOINT on its own (its statement is new), so the runner's own
			// wire prepares the SAVEPOINT's text only in the second.
			_, err := tx.Run(ctx, tc.conn, w)
			require.NoError(t, err)
			n = append(n, tc.measure(t, func() error { _, err := tx.Run(ctx, tc.conn, w); return err }))
		}
		require.Equal(t, n[0], n[2], "named arguments cost what positional ones do")
		require.Equal(t, n[0], n[3], "named arguments by pointer cost what positional ones do")
		return n
	}
	wire := trips(t, func(*pgx.ConnConfig) {})
	require.Less(t, wire[0], wire[1], "precondition: a second scope costs its round trip")
	modes := []struct {
		name      string
		configure func(*pgx.ConnConfig)
	}{
		{"tracer", func(c *pgx.ConnConfig) { c.Tracer = &recordingTracer{} }},
		{"cache describe", func(c *pgx.ConnConfig) { c.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			require.Equal(t, wire, trips(t, m.configure))
		})
	}
}

// A SetLocal of a setting that changes no name, then a statement, in an open transaction: no split round trip, even
// in the describe-exec mode, where every statement is described ahead of its round trip.
func TestSetLocalSplitsNoRoundTrip(t *testing.T) {
	ctx := ctxT(t)
	first := tx.Exec("UPDATE accounts SET balance = balance WHERE id = $1", 1)
	upd := tx.Exec("UPDATE accounts SET balance = balance WHERE id = $1", 2)
	modes := []struct {
		name      string
		configure func(*pgx.ConnConfig)
	}{
		{"wire", func(*pgx.ConnConfig) {}},
		{"describe exec", func(c *pgx.ConnConfig) { c.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			tc := newTripCounter(t, m.configure)
			measure := func(then tx.Tx[pgconn.CommandTag]) int {
				w := tx.Bind(first, func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] { return then })
				_, err := tx.Run(ctx, tc.conn, w)
				require.NoError(t, err)
				return tc.measure(t, func() error { _, err := tx.Run(ctx, tc.conn, w); return err })
			}
			plain := measure(tx.Then(tx.Exec("UPDATE accounts SET balance = balance WHERE id = $1", 3), upd))
			require.Equal(t, plain, measure(tx.Then(tx.SetLocal("statement_timeout", "5s"), upd)))
			require.Equal(t, plain, measure(tx.Then(tx.Exec("SET LOCAL lock_timeout = '5s'"), upd)))
			require.Equal(t, plain, measure(tx.Then(tx.Exec("SET CONSTRAINTS ALL DEFERRED"), upd)))
			require.Equal(t, plain, measure(tx.Then(tx.Exec("SET LOCAL app.role = 'x'"), upd)))
			require.Equal(t, plain, measure(tx.Then(tx.SetLocal("request.jwt.claim.role", "x"), upd)))
		})
	}
}

// A Recover whose part fails in Go (no rows) and sent nothing that changes names: its ROLLBACK TO travels with the
// fallback's statement, also in the describe-exec mode, where every statement is described ahead of its round trip.
// Counted: BEGIN and the UPDATE, described then run (2); the SAVEPOINT alone, since the SELECT is described ahead
// (1); the SELECT (2); ROLLBACK TO and the fallback's UPDATE (2); COMMIT (1). The wire, warm: 4.
func TestRecoverAfterNoRowsCostsNoExtraRoundTrip(t *testing.T) {
	ctx := ctxT(t)
	modes := []struct {
		name      string
		configure func(*pgx.ConnConfig)
		want      int
	}{
		{"wire", func(*pgx.ConnConfig) {}, 4},
		{"describe exec", func(c *pgx.ConnConfig) { c.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec }, 8},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			tc := newTripCounter(t, m.configure)
			w := tx.Then(tx.Exec("UPDATE accounts SET balance = balance WHERE id = $1", 1),
				tx.Recover(tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], 99),
					func(error) tx.Tx[int] {
						return tx.Map(tx.Exec("UPDATE accounts SET balance = balance WHERE id = $1", 2),
							func(pgconn.CommandTag) int { return 0 })
					}))
			_, err := tx.Run(ctx, tc.conn, w)
			require.NoError(t, err)
			require.Equal(t, m.want, tc.measure(t, func() error { _, err := tx.Run(ctx, tc.conn, w); return err }))
		})
	}
}
