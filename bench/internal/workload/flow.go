package workload

import (
	"math/rand/v2"

	"github.com/pgxact/pgxact/tx"
)

// Flowing is a Workload whose transactions depend on what the same worker committed before, such as a user who
// must read their own writes. A runner that supports flows gives each worker its own Flow from NewFlow and runs its
// Steps; runners that do not fall back on Tx and Body, which a Flowing workload keeps as a stateless approximation.
type Flowing interface {
	Workload
	// NewFlow returns the state of one new worker. It is safe for concurrent use; the Flow it returns is not.
	NewFlow() Flow
}

// Flow is one worker's stream of transactions. A Flow belongs to one goroutine.
type Flow interface {
	// Next draws the worker's next transaction.
	Next(r *rand.Rand) Step
}

// Step is one transaction of a Flow.
type Step struct {
	Tx tx.Tx[struct{}]
	// Options are the tx.Run options the transaction needs, such as tx.ReadOnly for a read a replica may serve.
	Options []tx.Option
	// Committed, if not nil, must be called once Tx has committed, before the Flow's next Next: a Tx may run several
	// times, and only the runner knows which attempt committed.
	Committed func()
}

// Counter is implemented by workloads that count something per slice besides commits (where reads ran, say), to be
// reported next to the figures. Counts returns the counts since the last Reset.
type Counter interface {
	Counts() map[string]int64
}
