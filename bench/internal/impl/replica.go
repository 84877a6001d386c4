package impl

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/workload"
	"github.com/pgxact/pgxact/replica"
)

// ErrNoReplica is what the Runners of an implementation that NeedsReplica fail with until OnReplica gave it a
// standby.
var ErrNoReplica = errors.New("impl: this implementation needs a standby (Impl.OnReplica)")

// routed is pgxact's tx.Run through a replica.Router over the primary and one standby: with session, each worker
// runs through a replica.Session of its own (read-your-writes); without, through the Router, whose reads may be
// stale. Workers share one Router per primary pool, as the goroutines of a server would.
func routed(name string, session bool) Impl {
	unbound := func(*pgxpool.Pool, workload.Workload) Runner { return failing(ErrNoReplica) }
	return Impl{Name: name, Flows: true, New: unbound, onReplica: func(standby *pgxpool.Pool) newRunner {
		routers := &routers{standby: standby, by: map[*pgxpool.Pool]*replica.Router{}}
		return func(db *pgxpool.Pool, w workload.Workload) Runner {
			router, err := routers.get(db)
			if err != nil {
				return failing(err)
			}
			if session {
				return pgxactRunner(router.Session(), w)
			}
			return pgxactRunner(router, w)
		}
	}}
}

// routers keeps one Router per primary pool, with the default MaxWait and Cooldown.
type routers struct {
	standby *pgxpool.Pool
	mu      sync.Mutex
	by      map[*pgxpool.Pool]*replica.Router
}

func (rs *routers) get(primary *pgxpool.Pool) (*replica.Router, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r, ok := rs.by[primary]; ok {
		return r, nil
	}
	r, err := replica.New(primary, []*pgxpool.Pool{rs.standby})
	if err != nil {
		return nil, err
	}
	rs.by[primary] = r
	return r, nil
}

// failing is a Runner that makes no attempt and returns err.
func failing(err error) Runner {
	return func(context.Context, *rand.Rand) (int, error) { return 0, err }
}
