package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/tx"
)

const (
	initialBalance = 1000
	maxAmount      = 100

	transferRead = "SELECT (SELECT balance FROM bench_accounts WHERE id = $1), " +
		"(SELECT balance FROM bench_accounts WHERE id = $2)"
	transferWrite = "UPDATE bench_accounts SET balance = $2 WHERE id = $1"
	transferGap   = "SELECT pg_sleep($1)"
)

// TransferConfig configures the transfer workload.
type TransferConfig struct {
	Accounts int // at least 2; few accounts make them hot
	// Gap, when positive, makes every transaction sleep that long on the server between reading the balances and
	// writing them. It widens the window in which an unsafe isolation level loses updates; tests use it to make a
	// violation certain.
	Gap time.Duration
}

type transfer struct {
	accounts int64
	gap      float64 // seconds, for pg_sleep; 0: no gap
}

// Transfer returns the Jepsen-style bank workload: each transaction reads the balances of two random accounts and,
// if the first holds enough, moves a random amount to the second by writing both new balances as absolute values,
// in account order.
// Its invariants are that the total stays what it was and no balance goes negative, which holds only if the
// transactions are serializable (and is checked after every slice).
func Transfer(c TransferConfig) Workload {
	return transfer{accounts: int64(max(c.Accounts, 2)), gap: c.Gap.Seconds()}
}

func (transfer) Name() string { return "transfer" }

func (w transfer) Setup(ctx context.Context, db *pgxpool.Pool) error {
	if err := execAll(ctx, db,
		"DROP TABLE IF EXISTS bench_accounts",
		"CREATE TABLE bench_accounts (id bigint PRIMARY KEY, balance bigint NOT NULL)",
	); err != nil {
		return err
	}
	_, err := db.Exec(ctx, "INSERT INTO bench_accounts (id, balance) SELECT g, $2::bigint FROM generate_series(0, $1::bigint - 1) AS g",
		w.accounts, initialBalance)
	if err != nil {
		return fmt.Errorf("workload: fill bench_accounts: %w", err)
	}
	return execAll(ctx, db, "ANALYZE bench_accounts")
}

func (transfer) Reset(ctx context.Context, db *pgxpool.Pool) error {
	_, err := db.Exec(ctx, "UPDATE bench_accounts SET balance = $1", initialBalance)
	if err != nil {
		return fmt.Errorf("workload: reset bench_accounts: %w", err)
	}
	return nil
}

func (w transfer) Check(ctx context.Context, db *pgxpool.Pool, _ int64) error {
	var total, lowest int64
	err := db.QueryRow(ctx, "SELECT coalesce(sum(balance), 0)::bigint, coalesce(min(balance), 0) FROM bench_accounts").
		Scan(&total, &lowest)
	if err != nil {
		return fmt.Errorf("workload: check: %w", err)
	}
	if want := w.accounts * initialBalance; total != want {
		return fmt.Errorf("%w: the accounts hold %d in all, not %d", ErrInvariant, total, want)
	}
	if lowest < 0 {
		return fmt.Errorf("%w: a balance went negative (%d)", ErrInvariant, lowest)
	}
	return nil
}

// move is one transfer's parameters.
type move struct{ from, to, amount int64 }

func (w transfer) draw(r *rand.Rand) move {
	from := r.Int64N(w.accounts)
	to := (from + 1 + r.Int64N(w.accounts-1)) % w.accounts
	return move{from: from, to: to, amount: 1 + r.Int64N(maxAmount)}
}

type write struct{ id, balance int64 }

// writes returns the two new balances in account order. Writing in a fixed order, as careful code does, keeps
// concurrent transfers from deadlocking (which would stall them for deadlock_timeout, 1s, and measure PostgreSQL's
// deadlock detector instead of the implementations); conflicts are then serialization failures.
func (m move) writes(from, to int64) [2]write {
	a, b := write{m.from, from - m.amount}, write{m.to, to + m.amount}
	if a.id > b.id {
		a, b = b, a
	}
	return [2]write{a, b}
}

func scanPair(row pgx.CollectableRow) ([2]int64, error) {
	var p [2]int64
	err := row.Scan(&p[0], &p[1])
	return p, err
}

func (w transfer) Tx(r *rand.Rand) tx.Tx[struct{}] {
	m := w.draw(r)
	read := tx.QueryOne(transferRead, scanPair, m.from, m.to)
	return tx.Bind(read, func(b [2]int64) tx.Tx[struct{}] {
		if b[0] < m.amount {
			return tx.Pure(struct{}{})
		}
		ws := m.writes(b[0], b[1])
		write := tx.Then(tx.Exec(transferWrite, ws[0].id, ws[0].balance), tx.Exec(transferWrite, ws[1].id, ws[1].balance))
		if w.gap > 0 {
			write = tx.Then(tx.Exec(transferGap, w.gap), write)
		}
		return discard(write)
	})
}

func (w transfer) Body(r *rand.Rand) Body {
	m := w.draw(r)
	return func(ctx context.Context, q Querier) error {
		var from, to int64
		if err := q.QueryRow(ctx, transferRead, m.from, m.to).Scan(&from, &to); err != nil {
			return err
		}
		if from < m.amount {
			return nil
		}
		if w.gap > 0 {
			if _, err := q.Exec(ctx, transferGap, w.gap); err != nil {
				return err
			}
		}
		for _, wr := range m.writes(from, to) {
			if _, err := q.Exec(ctx, transferWrite, wr.id, wr.balance); err != nil {
				return err
			}
		}
		return nil
	}
}
