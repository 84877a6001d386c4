package impl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/workload"
)

// ErrCommitHidden is wrapped by the error the crdb runner reports when COMMIT failed but crdbpgx.ExecuteTx returned
// nil. On CockroachDB, RELEASE SAVEPOINT cockroach_restart is the real commit and ExecuteTx ignores COMMIT's error;
// on PostgreSQL, RELEASE commits nothing, so a serialization failure at COMMIT would otherwise be counted as a commit.
var ErrCommitHidden = errors.New("impl: crdb: COMMIT failed but ExecuteTx reported success")

// newCrdb runs the Body with crdbpgx.ExecuteTx, with its default retry settings (restart under
// SAVEPOINT cockroach_restart on 40001, at most 50 retries).
func newCrdb(db *pgxpool.Pool, w workload.Workload) Runner {
	watch := &commitWatch{Pool: db}
	opts := txOptions(w)
	return func(ctx context.Context, r *rand.Rand) (int, error) {
		body := w.Body(r)
		attempts := 0
		watch.err = nil
		err := crdbpgx.ExecuteTx(ctx, watch, opts, func(t pgx.Tx) error {
			attempts++
			return body(ctx, t)
		})
		if err == nil && watch.err != nil {
			err = fmt.Errorf("%w: %w", ErrCommitHidden, watch.err)
		}
		return attempts, err
	}
}

// commitWatch hands out transactions that remember their COMMIT's error, so that the benchmark counts only real
// commits. It belongs to one worker, like its Runner.
type commitWatch struct {
	*pgxpool.Pool
	err error // the last COMMIT's error
}

func (c *commitWatch) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	t, err := c.Pool.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &watchedTx{Tx: t, watch: c}, nil
}

type watchedTx struct {
	pgx.Tx
	watch *commitWatch
}

func (t *watchedTx) Commit(ctx context.Context) error {
	err := t.Tx.Commit(ctx)
	t.watch.err = err
	return err
}
