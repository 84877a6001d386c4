package retry

import (
	"context"
	"fmt"
	"sync"
)

// Gate is admission control for contended transactions, shared by the Runs whose policies hold it. It has a
// number of slots. A retry takes a slot for its attempt and waits, holding no connection and no lock, while all
// are taken; a first attempt goes straight in — unless retries are waiting, in which case it queues behind them.
//
// So without contention the gate does nothing: nothing fails, nothing waits, no slot is taken. Once retries
// outnumber the slots, the transactions that fight over the same rows are admitted size at a time, queueing in Go
// instead of failing one another in the database, and commits per second hold up as clients are added instead of
// collapsing. When the conflicts stop, the queue drains and first attempts bypass the gate again.
//
// How queued first attempts are let in depends on how hot the rows are. While retries make HotRetryShare or more of
// the recent attempts, a queued first attempt takes a slot like a retry, and newcomers queue behind it until the
// queue is empty. Below that share, conflicts are rare and the queue is a burst's, not a hot spot's: once no retry
// is waiting, the first attempts queued behind the retries are let in at once, without slots.
//
// Waiting retries are let in by the number of attempts they have made, most first, and in arrival order among
// equals; waiting first attempts come after all retries, in arrival order. Favouring the transaction that has failed
// most often keeps it from running out of attempts. For the same reason, while a retry that has already failed
// StarvingAfter times holds a slot, first attempts do not bypass the gate either: they take the other slots or
// queue, so the starving transaction runs against a few others instead of against every client at once.
//
// A Gate is safe for concurrent use and is meant to be shared, by pointer, among policies. The zero Gate is not
// usable: create one with NewGate. A nil *Gate admits everything at once.
type Gate struct {
	mu       sync.Mutex
	size     int
	taken    int
	starving int // slots held by starving retries (see StarvingAfter)
	retries  int // waiters that are retries: while there are any, first attempts queue too
	waiters  []*gateWaiter
	// Recent arrivals, halved every arrivalWindow: they tell a hot spot from a rare conflict (see contended).
	arrivedFirst, arrivedRetry int
}

// arrivalWindow is the number of arrivals after which the counts of recent first attempts and retries are halved,
// so that they follow the last few hundred transactions.
const arrivalWindow = 256

// HotRetryShare is the share of retries among recent arrivals at which a Gate counts its transactions as contending
// for hot rows (see Gate). Measured on 2 cores: about 0.5 % of attempts were retries on 64 clients of the chain
// workload (rare conflicts on many rows), 10–60 % on 10 hot accounts at 4–64 clients.
const HotRetryShare = 0.05

// StarvingAfter is the number of failed attempts after which a retry counts as starving: its attempt number is
// above it. On 10 hot accounts at 4 clients, retries otherwise reach 20 attempts a few times a second, each failing
// against first attempts that never queue.
const StarvingAfter = 3

func starving(attempt int) bool { return attempt > StarvingAfter }

type gateWaiter struct {
	attempt int
	slot    bool          // set before ready is closed: the waiter was given a slot, not just let through
	ready   chan struct{} // closed when the waiter may begin
}

// NewGate returns a Gate with size slots. size must be positive: Policy.Validate reports a Gate built with a
// smaller one, and such a Gate admits everything at once.
func NewGate(size int) *Gate {
	return &Gate{size: size}
}

func (g *Gate) validate() error {
	if g == nil || g.size > 0 {
		return nil
	}
	return fmt.Errorf("%w: Gate needs a positive size, got %d", ErrInvalidPolicy, g.size)
}

// Wait blocks until attempt number attempt (1 for a transaction's first) may begin, and returns the function to call
// once the attempt has ended, which gives back its slot if it took one. It returns ctx's error if ctx ends first.
func (g *Gate) Wait(ctx context.Context, attempt int) (done func(), err error) {
	if g == nil || g.size <= 0 {
		return func() {}, nil
	}
	g.mu.Lock()
	g.arrive(attempt)
	switch {
	case attempt <= 1 && g.open():
		g.letFirstAttemptsIn() // any left queued from before the rows cooled go in with it, not after it
		g.mu.Unlock()
		return func() {}, nil // no contention in sight: first attempts take no slot
	case len(g.waiters) == 0 && g.taken < g.size:
		g.taken++
		g.hold(attempt, +1)
		g.mu.Unlock()
		return func() { g.release(attempt) }, nil
	}
	w := &gateWaiter{attempt: attempt, ready: make(chan struct{})}
	g.waiters = append(g.waiters, w)
	if attempt > 1 {
		g.retries++
	}
	g.mu.Unlock()
	select {
	case <-w.ready:
		return g.doneFor(w), nil
	case <-ctx.Done():
		g.abandon(w)
		return nil, ctx.Err()
	}
}

// open reports whether first attempts may bypass the gate: no retry that starves holds a slot, and no retry is
// waiting — nor, on hot rows, any first attempt. Why the difference: on hot rows, first attempts let in size at a
// time are what keeps them from failing one another (letting them all in once the retries had gone halved the commit
// rate of 10 hot accounts at 16–64 clients); where conflicts are rare, a short burst of retries would otherwise leave
// every client queueing behind the ones queued before it, size at a time, long after the burst (12 % fewer commits at
// 64 clients of the chain workload). g.mu is held.
func (g *Gate) open() bool {
	if g.starving > 0 {
		return false
	}
	if g.contended() {
		return len(g.waiters) == 0
	}
	return g.retries == 0
}

// arrive counts an attempt arriving at the gate. g.mu is held.
func (g *Gate) arrive(attempt int) {
	if attempt <= 1 {
		g.arrivedFirst++
	} else {
		g.arrivedRetry++
	}
	if g.arrivedFirst+g.arrivedRetry >= arrivalWindow {
		g.arrivedFirst, g.arrivedRetry = g.arrivedFirst/2, g.arrivedRetry/2
	}
}

// contended reports whether retries made HotRetryShare or more of the recent arrivals. g.mu is held.
func (g *Gate) contended() bool {
	return float64(g.arrivedRetry) >= HotRetryShare*float64(g.arrivedFirst+g.arrivedRetry)
}

// doneFor is what ends the attempt of a waiter that was let in: a slot given back, or nothing.
func (g *Gate) doneFor(w *gateWaiter) func() {
	if !w.slot {
		return func() {}
	}
	return func() { g.release(w.attempt) }
}

// hold counts a slot taken (+1) or given back (-1) by the given attempt among the starving ones. g.mu is held.
func (g *Gate) hold(attempt, delta int) {
	if starving(attempt) {
		g.starving += delta
	}
}

// release gives back the slot of the given attempt: to the waiter that has made the most attempts (the earliest of
// those), or to no one; then, if the gate is open again, lets in the first attempts still queued.
func (g *Gate) release(attempt int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold(attempt, -1)
	g.handOver()
	g.letFirstAttemptsIn()
}

// handOver passes a slot that was just given back to the best waiter, or frees it. g.mu is held.
func (g *Gate) handOver() {
	if len(g.waiters) == 0 {
		g.taken--
		return
	}
	best := 0
	for i, w := range g.waiters {
		if w.attempt > g.waiters[best].attempt { // strictly more: equals keep arrival order
			best = i
		}
	}
	w := g.waiters[best]
	g.waiters = append(g.waiters[:best], g.waiters[best+1:]...)
	if w.attempt > 1 {
		g.retries--
	}
	g.hold(w.attempt, +1)
	w.slot = true
	close(w.ready) // the slot passes from the releaser to w: taken stays the same
}

// letFirstAttemptsIn lets every queued waiter in without a slot once the gate is open with waiters queued, which
// happens only where retries are rare and none waits: then only first attempts are left in the queue, and they
// would have bypassed the gate had they come now. g.mu is held.
func (g *Gate) letFirstAttemptsIn() {
	if len(g.waiters) == 0 || !g.open() {
		return
	}
	for _, w := range g.waiters {
		close(w.ready)
	}
	clear(g.waiters)
	g.waiters = g.waiters[:0]
}

// abandon takes w out of the queue after its ctx ended. If w was let in meanwhile, its slot, if any, is passed on.
func (g *Gate) abandon(w *gateWaiter) {
	g.mu.Lock()
	for i, other := range g.waiters {
		if other == w {
			g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
			if w.attempt > 1 {
				g.retries--
			}
			g.letFirstAttemptsIn()
			g.mu.Unlock()
			return
		}
	}
	slot := w.slot
	g.mu.Unlock()
	if slot {
		g.release(w.attempt) // w was no longer waiting: it had been given a slot
	}
}

// Waiting returns the number of attempts waiting at the gate, for metrics and tests.
func (g *Gate) Waiting() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiters)
}
