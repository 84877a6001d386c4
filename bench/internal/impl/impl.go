package impl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/workload"
)

// Runner runs one transaction of a workload, with parameters drawn from r, to its end (committed, or failed for
// good) and returns the number of attempts it made. A Runner belongs to one goroutine.
type Runner func(ctx context.Context, r *rand.Rand) (attempts int, err error)

// Impl is a named way of running transactions. New makes a Runner for one worker goroutine, on the primary pool db.
// An implementation that also reads from a streaming standby (NeedsReplica) is given the standby's pool with
// OnReplica; until then its Runners fail with ErrNoReplica.
type Impl struct {
	Name string
	New  newRunner
	// Flows: for a workload.Flowing workload, the runner runs each worker's Flow (the pgxact implementations); the
	// others run the workload's Body, a different transaction, so their figures do not compare with these.
	Flows bool
	// onReplica, if not nil, returns the New that reads from standby.
	onReplica func(standby *pgxpool.Pool) newRunner
}

type newRunner = func(db *pgxpool.Pool, w workload.Workload) Runner

// NeedsReplica reports whether im reads from a standby, which OnReplica must provide.
func (im Impl) NeedsReplica() bool { return im.onReplica != nil }

// OnReplica returns im reading from standby, a pool on one streaming hot standby of the primary that New will be
// given. An implementation that needs no replica is returned unchanged.
func (im Impl) OnReplica(standby *pgxpool.Pool) Impl {
	if im.onReplica != nil {
		im.New = im.onReplica(standby)
	}
	return im
}

// all lists every implementation; Defaults names those the benchmark runs unless told otherwise.
var all = []Impl{
	{Name: "pgxact", Flows: true, New: newPgxact},
	{Name: "pgxact-unbudgeted", Flows: true, New: newPgxactUnbudgeted},
	{Name: "pgxact-ungated", Flows: true, New: newPgxactUngated},
	{Name: "pgxact-fused", Flows: true, New: newPgxactFused},
	{Name: "pgx", New: newPgx},
	{Name: "pgx-naive-retry", New: newNaiveRetry},
	{Name: "crdb", New: newCrdb},
	{Name: "trm", New: newTrm},
	{Name: "unsafe-rc", New: newUnsafe},
	routed("pgxact-replica", true),
	routed("pgxact-replica-notoken", false),
}

// Names lists every implementation's name.
func Names() []string {
	names := make([]string, len(all))
	for i, im := range all {
		names[i] = im.Name
	}
	return names
}

// Defaults names the implementations the benchmark compares by default: all but the pgxact variants, the unsafe
// one and those that need a replica.
func Defaults() []string { return []string{"pgxact", "pgx", "pgx-naive-retry", "crdb", "trm"} }

// ByName returns the implementation called name.
func ByName(name string) (Impl, error) {
	i := slices.IndexFunc(all, func(im Impl) bool { return im.Name == name })
	if i < 0 {
		return Impl{}, fmt.Errorf("impl: unknown implementation %q (known: %v)", name, Names())
	}
	return all[i], nil
}
