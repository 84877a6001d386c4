package impl

import (
	"context"
	"errors"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/workload"
)

// naiveMaxTries bounds the naive retry loop.
const naiveMaxTries = 100

var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// txOptions are the options of w's transactions: its isolation level, SERIALIZABLE for most.
func txOptions(w workload.Workload) pgx.TxOptions {
	return pgx.TxOptions{IsoLevel: workload.IsolationOf(w)}
}

// newPgx is hand-written pgx: one pgx.BeginTxFunc, no retry.
func newPgx(db *pgxpool.Pool, w workload.Workload) Runner {
	opts := txOptions(w)
	return func(ctx context.Context, r *rand.Rand) (int, error) {
		return 1, beginFunc(ctx, db, opts, w.Body(r))
	}
}

// newNaiveRetry is the retry loop people write first: pgx.BeginTxFunc again at once on a serialization failure or a
// deadlock, up to naiveMaxTries times, with no backoff.
func newNaiveRetry(db *pgxpool.Pool, w workload.Workload) Runner {
	opts := txOptions(w)
	return func(ctx context.Context, r *rand.Rand) (int, error) {
		body := w.Body(r)
		for n := 1; ; n++ {
			err := beginFunc(ctx, db, opts, body)
			if err == nil || n == naiveMaxTries || !conflict(err) {
				return n, err
			}
		}
	}
}

// newUnsafe runs at READ COMMITTED without retries. The transfer workload writes absolute balances it read earlier,
// so at this level concurrent transfers lose updates: the checker must catch it.
func newUnsafe(db *pgxpool.Pool, w workload.Workload) Runner {
	return func(ctx context.Context, r *rand.Rand) (int, error) {
		return 1, beginFunc(ctx, db, readCommitted, w.Body(r))
	}
}

func beginFunc(ctx context.Context, db *pgxpool.Pool, opts pgx.TxOptions, body workload.Body) error {
	return pgx.BeginTxFunc(ctx, db, opts, func(t pgx.Tx) error { return body(ctx, t) })
}

// conflict reports a serialization failure (40001) or a deadlock (40P01).
func conflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
