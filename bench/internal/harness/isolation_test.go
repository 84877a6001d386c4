package harness_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/harness"
	"github.com/pgxact/pgxact/bench/internal/impl"
	"github.com/pgxact/pgxact/bench/internal/workload"
	"github.com/pgxact/pgxact/tx"
)

// levelCheck is a workload whose transactions fail with ErrInvariant unless they run at level.
type levelCheck struct{ level pgx.TxIsoLevel }

const showIsolation = "SELECT current_setting('transaction_isolation')"

func (levelCheck) Name() string                                      { return "levelcheck" }
func (w levelCheck) Isolation() pgx.TxIsoLevel                       { return w.level }
func (levelCheck) Setup(context.Context, *pgxpool.Pool) error        { return nil }
func (levelCheck) Reset(context.Context, *pgxpool.Pool) error        { return nil }
func (levelCheck) Check(context.Context, *pgxpool.Pool, int64) error { return nil }

func (w levelCheck) Tx(*rand.Rand) tx.Tx[struct{}] {
	return tx.Bind(tx.QueryOne(showIsolation, pgx.RowTo[string]), func(got string) tx.Tx[struct{}] {
		if err := w.check(got); err != nil {
			return tx.Fail[struct{}](err)
		}
		return tx.Pure(struct{}{})
	})
}

func (w levelCheck) Body(*rand.Rand) workload.Body {
	return func(ctx context.Context, q workload.Querier) error {
		var got string
		if err := q.QueryRow(ctx, showIsolation).Scan(&got); err != nil {
			return err
		}
		return w.check(got)
	}
}

func (w levelCheck) check(got string) error {
	if got != string(w.level) {
		return fmt.Errorf("%w: ran at %s, not %s", workload.ErrInvariant, got, w.level)
	}
	return nil
}

// tpcb's comparison with pgbench holds only if every implementation runs it at pgbench's READ COMMITTED: each one
// runs an Isolated workload at the level it names.
func TestEveryImplementationRunsAnIsolatedWorkloadAtItsLevel(t *testing.T) {
	pool := newPool(t, 2)
	ims := impls(t, append(impl.Defaults(), "pgxact-unbudgeted", "pgxact-ungated", "pgxact-fused")...)
	for _, level := range []pgx.TxIsoLevel{pgx.ReadCommitted, pgx.RepeatableRead} {
		t.Run(string(level), func(t *testing.T) {
			res, err := harness.RunCell(t.Context(), pool, levelCheck{level: level}, ims, harness.Options{
				Workers: 1, Duration: 20 * time.Millisecond, Rounds: 1, Seed: 1,
			})
			require.NoError(t, err)
			for _, r := range res {
				require.Positive(t, r.Commits, "%s: %v", r.Impl, r.TopErrorKinds())
				require.True(t, r.InvariantOK, "%s: %s", r.Impl, r.Violation)
			}
		})
	}
}
