package ledger

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/pgxact/pgxact/examples/sqlc/db"
	"github.com/pgxact/pgxact/tx"
)

// ErrInsufficientFunds is returned by a Transfer whose payer cannot cover the amount.
var ErrInsufficientFunds = errors.New("ledger: insufficient funds")

// query lifts one call of the generated Queries into a Tx. db.New(q) binds the Queries to the running transaction;
// it is cheap, and must not outlive the call, because q belongs to one attempt.
func query[T any](call func(ctx context.Context, q *db.Queries) (T, error)) tx.Tx[T] {
	return tx.Func(func(ctx context.Context, q pgx.Tx) (T, error) { return call(ctx, db.New(q)) })
}

// Open creates an account with an opening balance.
func Open(owner string, balance int64) tx.Tx[db.Account] {
	return query(func(ctx context.Context, q *db.Queries) (db.Account, error) {
		return q.CreateAccount(ctx, db.CreateAccountParams{Owner: owner, Balance: balance})
	})
}

// Account reads one account.
func Account(id int64) tx.Tx[db.Account] {
	return query(func(ctx context.Context, q *db.Queries) (db.Account, error) { return q.GetAccount(ctx, id) })
}

// Transfer moves amount from one account to another and records it. It reads the payer, decides, then writes:
// under SERIALIZABLE (tx.Run's default) two concurrent transfers from one account cannot both spend the same money —
// one of them fails with 40001 and tx.Run runs it again from the read.
func Transfer(from, to, amount int64) tx.Tx[db.Transfer] {
	return tx.Bind(Account(from), func(payer db.Account) tx.Tx[db.Transfer] {
		if payer.Balance < amount {
			return tx.Fail[db.Transfer](ErrInsufficientFunds)
		}
		return query(func(ctx context.Context, q *db.Queries) (db.Transfer, error) {
			if _, err := q.AddToBalance(ctx, db.AddToBalanceParams{Delta: -amount, ID: from}); err != nil {
				return db.Transfer{}, err
			}
			if _, err := q.AddToBalance(ctx, db.AddToBalanceParams{Delta: amount, ID: to}); err != nil {
				return db.Transfer{}, err
			}
			return q.CreateTransfer(ctx, db.CreateTransferParams{FromID: from, ToID: to, Amount: amount})
		})
	})
}

// History lists the transfers an account took part in, oldest first.
func History(id int64) tx.Tx[[]db.Transfer] {
	return query(func(ctx context.Context, q *db.Queries) ([]db.Transfer, error) { return q.ListTransfers(ctx, id) })
}

// Total is the sum of all balances, which transfers never change.
func Total() tx.Tx[int64] {
	return query(func(ctx context.Context, q *db.Queries) (int64, error) { return q.TotalBalance(ctx) })
}
