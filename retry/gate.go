package retry

import (
	"context"
	"fmt"
	"sync"
)

// Gate is admission control for contended transactions, shared by the Runs whose policies hold it. It has a
// number of slots. A retry takes a slot for its attempt and waits, holding no connection and no lock, while all
// are taken; a first attempt goes straight in — unless retries are waiting, in which case it queues behind them
// and takes a slot too.
//
// So without contention the gate does nothing: nothing fails, nothing waits, no slot is taken. Once retries
// outnumber the slots, the transactions that fight over the same rows are admitted size at a time, queueing in Go
// instead of failing one another in the database, and commits per second hold up as clients are added instead of
// collapsing. When the conflicts stop, the queue drains and first attempts bypass the gate again.
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
	waiters  []*gateWaiter
}

// StarvingAfter is the number of failed attempts after which a retry counts as starving: its attempt number is
// above it. On 10 hot accounts at 4 clients, retries otherwise reach 20 attempts a few times a second, each failing
// against first attempts that never queue.
const StarvingAfter = 3

func starving(attempt int) bool { return attempt > StarvingAfter }

type gateWaiter struct {
	attempt int
	ready   chan struct{} // closed when the slot is handed over
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
	switch {
	case attempt <= 1 && len(g.waiters) == 0 && g.starving == 0:
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
	g.mu.Unlock()
	select {
	case <-w.ready:
		return func() { g.release(attempt) }, nil
	case <-ctx.Done():
		g.abandon(w)
		return nil, ctx.Err()
	}
}

// hold counts a slot taken (+1) or given back (-1) by the given attempt among the starving ones. g.mu is held.
func (g *Gate) hold(attempt, delta int) {
	if starving(attempt) {
		g.starving += delta
	}
}

// release gives back the slot of the given attempt: to the waiter that has made the most attempts (the earliest of
// those), or to no one.
func (g *Gate) release(attempt int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold(attempt, -1)
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
	g.hold(w.attempt, +1)
	close(w.ready) // the slot passes from the releaser to w: taken stays the same
}

// abandon takes w out of the queue after its ctx ended. If the slot was handed to w meanwhile, it is passed on.
func (g *Gate) abandon(w *gateWaiter) {
	g.mu.Lock()
	for i, other := range g.waiters {
		if other == w {
			g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
			g.mu.Unlock()
			return
		}
	}
	g.mu.Unlock()
	g.release(w.attempt) // w was no longer waiting: it had been given a slot
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
