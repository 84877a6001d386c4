package jepsen

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/tx"
)

// Bank is the bank workload: Accounts accounts, ids 1..Accounts, each starting with Initial. A Bank is a plain
// value, safe to share; its methods build transactions and send nothing until they are run.
type Bank struct {
	Accounts int
	Initial  int64
}

// Transfer moves Amount from account From to account To. ID must be unique among all transfers of a run: the
// checker finds each transfer in the ledger by it.
type Transfer struct {
	ID       int64
	From, To int
	Amount   int64
}

// ErrInsufficientFunds is the error of a transfer whose source held less than the amount; it committed nothing.
var ErrInsufficientFunds = errors.New("jepsen: insufficient funds")

// Execer is what Setup and the final read need: a pool, a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// The ledger has no unique constraint on id on purpose: a transfer applied twice must show up as two rows for the
// checker to see, not as a unique violation that hides the double application behind an error.
const bankSchema = `
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE transfers (id bigint NOT NULL, src int NOT NULL, dst int NOT NULL, amount bigint NOT NULL);
CREATE INDEX transfers_id ON transfers (id)`

// Setup creates the accounts and the empty ledger.
func (b Bank) Setup(ctx context.Context, db Execer) error {
	if _, err := db.Exec(ctx, bankSchema); err != nil {
		return fmt.Errorf("jepsen: bank schema: %w", err)
	}
	_, err := db.Exec(ctx, "INSERT INTO accounts SELECT g, $2 FROM generate_series(1, $1::int) g", b.Accounts, b.Initial)
	if err != nil {
		return fmt.Errorf("jepsen: bank accounts: %w", err)
	}
	return nil
}

// Total is the sum every read must see.
func (b Bank) Total() int64 { return int64(b.Accounts) * b.Initial }

// TransferTx reads the source balance and, if it covers the amount, moves the money and records the transfer in
// the ledger, all in one transaction. A short balance fails with ErrInsufficientFunds.
func (b Bank) TransferTx(t Transfer) tx.Tx[struct{}] {
	balance := tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int64], t.From)
	return tx.Bind(balance, func(have int64) tx.Tx[struct{}] {
		if have < t.Amount {
			return tx.Fail[struct{}](fmt.Errorf("%w: account %d has %d, transfer %d needs %d",
				ErrInsufficientFunds, t.From, have, t.ID, t.Amount))
		}
		writes := tx.All([]tx.Tx[pgconn.CommandTag]{
			tx.Exec("UPDATE accounts SET balance = balance - $2 WHERE id = $1", t.From, t.Amount),
			tx.Exec("UPDATE accounts SET balance = balance + $2 WHERE id = $1", t.To, t.Amount),
			tx.Exec("INSERT INTO transfers (id, src, dst, amount) VALUES ($1, $2, $3, $4)", t.ID, t.From, t.To, t.Amount),
		})
		return tx.Map(writes, func([]pgconn.CommandTag) struct{} { return struct{}{} })
	})
}

// ReadTx reads every balance, ordered by account id.
func (b Bank) ReadTx() tx.Tx[[]int64] {
	return tx.Query("SELECT balance FROM accounts ORDER BY id", pgx.RowTo[int64])
}

// Beginner is what the plain-pgx control needs: a pool or a connection.
type Beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// TransferRMW is the negative control: the same transfer written the way hand-rolled code often is — read both
// balances, compute the new values in Go, write them back as absolute values — with plain pgx at isolation iso.
// At READ COMMITTED concurrent transfers overwrite each other's updates, and money appears or vanishes.
func (b Bank) TransferRMW(ctx context.Context, db Beginner, iso pgx.TxIsoLevel, t Transfer) error {
	return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: iso}, func(q pgx.Tx) error {
		var from, to int64
		if err := q.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = $1", t.From).Scan(&from); err != nil {
			return err
		}
		if err := q.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = $1", t.To).Scan(&to); err != nil {
			return err
		}
		if from < t.Amount {
			return ErrInsufficientFunds
		}
		// Writing in account order keeps concurrent transfers from deadlocking: the control is about lost
		// updates, not about waiting out deadlock_timeout.
		writes := [][2]int64{{int64(t.From), from - t.Amount}, {int64(t.To), to + t.Amount}}
		if t.To < t.From {
			writes[0], writes[1] = writes[1], writes[0]
		}
		for _, w := range writes {
			if _, err := q.Exec(ctx, "UPDATE accounts SET balance = $2 WHERE id = $1", w[0], w[1]); err != nil {
				return err
			}
		}
		_, err := q.Exec(ctx, "INSERT INTO transfers (id, src, dst, amount) VALUES ($1, $2, $3, $4)",
			t.ID, t.From, t.To, t.Amount)
		return err
	})
}

// ReadPlain reads every balance with plain pgx at isolation iso, for the control.
func (b Bank) ReadPlain(ctx context.Context, db Beginner, iso pgx.TxIsoLevel) ([]int64, error) {
	var out []int64
	err := pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: iso}, func(q pgx.Tx) error {
		rows, err := q.Query(ctx, "SELECT balance FROM accounts ORDER BY id")
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return out, err
}

// BankState is the database's state after a run: the balances by account id and the whole ledger.
type BankState struct {
	Balances []int64
	Ledger   []Transfer
}

// ReadState reads the final state; run it after the workload and the faults have stopped.
func (b Bank) ReadState(ctx context.Context, db Execer) (BankState, error) {
	var s BankState
	rows, err := db.Query(ctx, "SELECT balance FROM accounts ORDER BY id")
	if err != nil {
		return s, fmt.Errorf("jepsen: read balances: %w", err)
	}
	if s.Balances, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return s, fmt.Errorf("jepsen: read balances: %w", err)
	}
	rows, err = db.Query(ctx, "SELECT id, src, dst, amount FROM transfers ORDER BY id")
	if err != nil {
		return s, fmt.Errorf("jepsen: read ledger: %w", err)
	}
	s.Ledger, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Transfer, error) {
		var t Transfer
		err := r.Scan(&t.ID, &t.From, &t.To, &t.Amount)
		return t, err
	})
	if err != nil {
		return s, fmt.Errorf("jepsen: read ledger: %w", err)
	}
	return s, nil
}
