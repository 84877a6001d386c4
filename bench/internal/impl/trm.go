package impl

import (
	"context"
	"math/rand/v2"

	trmpgx "github.com/avito-tech/go-transaction-manager/drivers/pgxv5/v2"
	"github.com/avito-tech/go-transaction-manager/trm/v2/manager"
	"github.com/avito-tech/go-transaction-manager/trm/v2/settings"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/workload"
)

// newTrm runs the Body with avito-tech's go-transaction-manager (trm) and its pgx v5 driver. trm
// manages transaction scope and propagation but does not retry, so it makes one attempt.
func newTrm(db *pgxpool.Pool, w workload.Workload) Runner {
	s := trmpgx.MustSettings(settings.Must(), trmpgx.WithTxOptions(txOptions(w)))
	m := manager.Must(trmpgx.NewDefaultFactory(db), manager.WithSettings(s))
	return func(ctx context.Context, r *rand.Rand) (int, error) {
		body := w.Body(r)
		return 1, m.Do(ctx, func(ctx context.Context) error {
			return body(ctx, trmpgx.DefaultCtxGetter.DefaultTrOrDB(ctx, db))
		})
	}
}
