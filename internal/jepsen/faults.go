package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgxact/pgxact/internal/faultproxy"
)

// Terminator ends random client backends of one database with pg_terminate_backend: the sessions of a pool die
// mid-transaction, mid-COMMIT or idle, as when an administrator or a failover kills them. A Terminator is a plain
// configuration value.
type Terminator struct {
	MinPause, MaxPause time.Duration // pause between kills, drawn uniformly
	Max                int           // kills at most this many backends
	Seed               uint64
	// App limits the victims to sessions with this application_name, so that the test's own checking
	// connections survive; empty means every client backend of the database.
	App string
}

// terminateSQL picks a backend of the connection's own database other than itself. The candidates are sessions
// of client backends only: killing autovacuum or walsenders would test something else.
const terminateSQL = `
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND ($1 = '' OR application_name = $1)
ORDER BY random() LIMIT 1`

// Run kills backends through conn, which must be connected directly to the database under test, until ctx is done
// or Max backends were ended. It returns how many it ended; conn is not closed. Errors of conn end the run.
func (k Terminator) Run(ctx context.Context, conn *pgx.Conn) (int, error) {
	rng := rand.New(rand.NewPCG(k.Seed, 0x5eed))
	kills := 0
	for kills < k.Max {
		if !pause(ctx, k.MinPause+jitter(rng, k.MaxPause-k.MinPause)) {
			return kills, nil
		}
		var ended bool
		err := conn.QueryRow(ctx, terminateSQL, k.App).Scan(&ended)
		switch {
		case ctx.Err() != nil:
			return kills, nil
		case errors.Is(err, pgx.ErrNoRows):
			continue // nobody to kill right now
		case err != nil:
			return kills, fmt.Errorf("jepsen: terminate: %w", err)
		case ended:
			kills++
		}
	}
	return kills, nil
}

func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(d)))
}

func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Cutter is a fault proxy rule that resets connections: it cuts a COMMIT with probability CommitProb and any
// other frontend message with probability OtherProb, choosing at random between cutting before the message
// reaches the server and right after. After Max cuts it forwards everything. Create it with NewCutter; it is safe
// for concurrent use, as a faultproxy.Rule must be.
type Cutter struct {
	commitProb, otherProb float64
	max                   int64

	mu  sync.Mutex
	rng *rand.Rand

	cuts                      atomic.Int64
	commitBefore, commitAfter atomic.Int64
	otherBefore, otherAfter   atomic.Int64
}

// NewCutter returns a Cutter; seed fixes its random choices (their order still depends on the scheduler).
func NewCutter(commitProb, otherProb float64, max int, seed uint64) *Cutter {
	return &Cutter{commitProb: commitProb, otherProb: otherProb, max: int64(max), rng: rand.New(rand.NewPCG(seed, 0xc07))}
}

// Rule is the faultproxy rule to install with Proxy.SetRule.
func (c *Cutter) Rule() faultproxy.Rule { return c.decide }

func (c *Cutter) decide(m faultproxy.Message) faultproxy.Action {
	commit := faultproxy.IsCommit(m)
	prob := c.otherProb
	if commit {
		prob = c.commitProb
	}
	c.mu.Lock()
	hit, after := c.rng.Float64() < prob, c.rng.IntN(2) == 1
	c.mu.Unlock()
	if !hit || c.cuts.Add(1) > c.max {
		return faultproxy.Forward
	}
	c.count(commit, after).Add(1)
	if after {
		return faultproxy.CutAfter
	}
	return faultproxy.CutBefore
}

func (c *Cutter) count(commit, after bool) *atomic.Int64 {
	switch {
	case commit && after:
		return &c.commitAfter
	case commit:
		return &c.commitBefore
	case after:
		return &c.otherAfter
	default:
		return &c.otherBefore
	}
}

// CutCounts is how many connections a Cutter cut, by where.
type CutCounts struct {
	CommitBefore, CommitAfter int64 // COMMIT held back, or forwarded with its answer lost
	OtherBefore, OtherAfter   int64 // any other message
}

// Counts returns the cuts so far.
func (c *Cutter) Counts() CutCounts {
	return CutCounts{
		CommitBefore: c.commitBefore.Load(), CommitAfter: c.commitAfter.Load(),
		OtherBefore: c.otherBefore.Load(), OtherAfter: c.otherAfter.Load(),
	}
}

// Total is the number of cuts of every kind.
func (c CutCounts) Total() int64 {
	return c.CommitBefore + c.CommitAfter + c.OtherBefore + c.OtherAfter
}
