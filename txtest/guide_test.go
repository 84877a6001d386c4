package txtest_test

// The code of docs/guide.md, compiled and run against PostgreSQL here so that the guide cannot drift from the API.
// Keep the two in sync: each function below appears in the guide under the same name.

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/samber/lo"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

const guideSchema = `
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0));
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer text NOT NULL, total int NOT NULL);
CREATE TABLE outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, topic text NOT NULL, payload jsonb NOT NULL);
CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant text NOT NULL, body text NOT NULL);
INSERT INTO accounts VALUES (1, 100), (2, 100), (3, 0);`

// --- From zero ---

var ErrInsufficientFunds = errors.New("insufficient funds")

func balanceOf(id int) tx.Tx[int] {
	return tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], id)
}

// transfer moves amount between two accounts and yields the payer's new balance.
func transfer(from, to, amount int) tx.Tx[int] {
	return tx.Bind(balanceOf(from), func(balance int) tx.Tx[int] {
		if balance < amount {
			return tx.Fail[int](ErrInsufficientFunds)
		}
		move := tx.Exec(`UPDATE accounts SET balance = balance + CASE id WHEN $1 THEN -$3::int ELSE $3::int END
			WHERE id IN ($1, $2)`, from, to, amount)
		return tx.Then(move, balanceOf(from))
	})
}

type Payment struct{ From, To, Amount int }

// payAll makes every payment it can in one transaction: a payment without funds is rolled back to its savepoint and
// skipped, the others commit together. It yields how many were made.
func payAll(payments []Payment) tx.Tx[int] {
	pay := func(p Payment) tx.Tx[bool] {
		paid := tx.Map(transfer(p.From, p.To, p.Amount), func(int) bool { return true })
		return tx.Recover(paid, func(err error) tx.Tx[bool] {
			if errors.Is(err, ErrInsufficientFunds) {
				return tx.Pure(false)
			}
			return tx.Fail[bool](err)
		})
	}
	return tx.Map(compose.Traverse(payments, pay), func(done []bool) int { return lo.Count(done, true) })
}

// --- Cookbook ---

// ensureUser inserts a user, or finds the one inserted first, and yields its id.
func ensureUser(email string) tx.Tx[int64] {
	insert := tx.QueryOne("INSERT INTO users (email) VALUES ($1) RETURNING id", pgx.RowTo[int64], email)
	return tx.Recover(insert, func(err error) tx.Tx[int64] {
		if retry.Classify(err) != retry.UniqueViolation {
			return tx.Fail[int64](err)
		}
		return tx.QueryOne("SELECT id FROM users WHERE email = $1", pgx.RowTo[int64], email)
	})
}

// placeOrder records an order and its event in one transaction, and wakes the outbox relay once it has committed.
func placeOrder(customer string, total int, wake func(context.Context)) tx.Tx[int64] {
	insert := tx.QueryOne("INSERT INTO orders (customer, total) VALUES ($1, $2) RETURNING id", pgx.RowTo[int64], customer, total)
	return tx.Bind(insert, func(id int64) tx.Tx[int64] {
		event := tx.Exec(`INSERT INTO outbox (topic, payload) VALUES ('order.placed', jsonb_build_object('order_id', $1::bigint))`, id)
		return tx.Then(event, tx.Then(tx.AfterCommit(wake), tx.Pure(id)))
	})
}

// tenantNotes reads one tenant's notes with the tenant set for the transaction only.
func tenantNotes(tenant string) tx.Tx[[]string] {
	return tx.Then(
		tx.SetLocal("app.tenant_id", tenant),
		tx.Query("SELECT body FROM notes WHERE tenant = current_setting('app.tenant_id') ORDER BY id", pgx.RowTo[string]),
	)
}

type Dashboard struct {
	Balance int
	Orders  int
	Email   string
}

// dashboard reads three independent things in one round trip.
func dashboard(account int, user int64) tx.Tx[Dashboard] {
	reads := compose.Zip3(
		balanceOf(account),
		tx.QueryOne("SELECT count(*)::int FROM orders", pgx.RowTo[int]),
		tx.QueryOne("SELECT email FROM users WHERE id = $1", pgx.RowTo[string], user),
	)
	return tx.Map(reads, func(r lo.Tuple3[int, int, string]) Dashboard {
		return Dashboard{Balance: r.A, Orders: r.B, Email: r.C}
	})
}

// rawPgx is plain pgx code inside a transaction, for what the constructors do not cover.
func rawPgx() tx.Tx[int64] {
	return tx.Func(func(ctx context.Context, q pgx.Tx) (int64, error) {
		n, err := q.CopyFrom(ctx, pgx.Identifier{"notes"}, []string{"tenant", "body"},
			pgx.CopyFromRows([][]any{{"acme", "copied 1"}, {"acme", "copied 2"}}))
		return n, err
	})
}

// --- The guide, run ---

func guidePool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t)
	_, err := pool.Exec(context.Background(), guideSchema)
	require.NoError(t, err)
	return pool
}

func TestGuide(t *testing.T) {
	ctx := ctxT(t)

	t.Run("transfer, retried after injected serialization failures", func(t *testing.T) {
		pool := guidePool(t)
		left, err := tx.Run(ctx, txtest.Inject(pool, txtest.FailFirst(2), txtest.InBody()), transfer(1, 2, 30),
			tx.WithPolicy(txtest.Policy()), tx.WithObserver(tx.SlogObserver(slog.New(slog.DiscardHandler))))
		require.NoError(t, err)
		require.Equal(t, 70, left)
		_, err = tx.Run(ctx, pool, transfer(3, 1, 1))
		require.ErrorIs(t, err, ErrInsufficientFunds)

		policy := retry.New(retry.On(retry.Serialization, retry.Deadlock), retry.MaxAttempts(5),
			retry.WithGate(retry.NewGate(4)))
		left, err = tx.Run(ctx, txtest.Inject(pool, txtest.FailFirst(4)), transfer(1, 2, 30), tx.WithPolicy(policy), tx.WithIsolation(pgx.RepeatableRead))
		require.NoError(t, err)
		require.Equal(t, 40, left)
	})
	t.Run("payAll skips what it cannot pay under savepoints", func(t *testing.T) {
		pool := guidePool(t)
		n, err := tx.Run(ctx, txtest.Inject(pool), payAll([]Payment{{1, 3, 60}, {2, 3, 500}, {1, 3, 40}}))
		require.NoError(t, err)
		require.Equal(t, 2, n)
		got, err := tx.Run(ctx, pool, compose.Sequence([]tx.Tx[int]{balanceOf(1), balanceOf(2), balanceOf(3)}), tx.ReadOnly())
		require.NoError(t, err)
		require.Equal(t, []int{0, 100, 100}, got)
	})
	t.Run("ensureUser is idempotent", func(t *testing.T) {
		pool := guidePool(t)
		a, err := tx.Run(ctx, pool, ensureUser("ada@example.com"))
		require.NoError(t, err)
		b, err := tx.Run(ctx, pool, ensureUser("ada@example.com"))
		require.NoError(t, err)
		require.Equal(t, a, b)
	})
	t.Run("placeOrder wakes the relay once, however often it is retried", func(t *testing.T) {
		pool := guidePool(t)
		var wakes atomic.Int32
		work := placeOrder("ada", 42, func(context.Context) { wakes.Add(1) })
		txtest.RequireRetrySafe(t, pool, work, func() txtest.Counts { return txtest.Counts{"wakes": int(wakes.Load())} })
		require.EqualValues(t, 2, wakes.Load())
		var events int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&events))
		require.Equal(t, 2, events)
	})
	t.Run("tenantNotes sees its tenant only, and the setting does not outlive the transaction", func(t *testing.T) {
		pool := guidePool(t)
		_, err := pool.Exec(ctx, "INSERT INTO notes (tenant, body) VALUES ('acme', 'a1'), ('globex', 'g1'), ('acme', 'a2')")
		require.NoError(t, err)
		got, err := tx.Run(ctx, pool, tenantNotes("acme"), tx.ReadOnly())
		require.NoError(t, err)
		require.Equal(t, []string{"a1", "a2"}, got)
		var leaked *string
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_setting('app.tenant_id', true)").Scan(&leaked))
		require.True(t, leaked == nil || *leaked == "", "setting leaked: %v", leaked)
	})
	t.Run("dashboard", func(t *testing.T) {
		pool := guidePool(t)
		user, err := tx.Run(ctx, pool, ensureUser("bob@example.com"))
		require.NoError(t, err)
		d, err := tx.Run(ctx, pool, dashboard(1, user), tx.ReadOnly())
		require.NoError(t, err)
		require.Equal(t, Dashboard{Balance: 100, Orders: 0, Email: "bob@example.com"}, d)
	})
	t.Run("raw pgx inside a transaction", func(t *testing.T) {
		pool := guidePool(t)
		n, err := tx.Run(ctx, pool, rawPgx())
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
	})
	t.Run("a nested failure that is not recovered rolls everything back", func(t *testing.T) {
		pool := guidePool(t)
		work := tx.Then(tx.Exec("UPDATE accounts SET balance = 0 WHERE id = 1"), tx.Nested(transfer(3, 2, 10)))
		_, err := tx.Run(ctx, pool, work)
		require.ErrorIs(t, err, ErrInsufficientFunds)
		require.Equal(t, 100, balance(t, pool, 1))
	})
}
