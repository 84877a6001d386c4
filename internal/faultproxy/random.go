package faultproxy

import (
	"math/rand/v2"
	"sync"
)

// RandomCuts returns a Rule that cuts each message with probability prob, choosing CutBefore or CutAfter
// with equal odds. The choices come from a source seeded with seed, so the same sequence of calls gets the
// same answers; with concurrent connections the order of calls, and so which message gets which answer, is
// up to the scheduler. A prob of 0 or less never cuts, 1 or more always does. The Rule is safe for
// concurrent use.
func RandomCuts(prob float64, seed uint64) Rule {
	c := newCoin(seed)
	return func(Message) Action { return c.toss(prob) }
}

// CutCommits is [RandomCuts] restricted to messages for which [IsCommit] is true; everything else is
// forwarded without consuming randomness, so the answers depend only on the sequence of commits.
func CutCommits(prob float64, seed uint64) Rule {
	c := newCoin(seed)
	return func(m Message) Action {
		if !IsCommit(m) {
			return Forward
		}
		return c.toss(prob)
	}
}

// coin is a seeded random source shared by concurrent connections.
type coin struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newCoin(seed uint64) *coin {
	return &coin{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// toss draws the same two values on every call, so one call's outcome never shifts the next call's.
func (c *coin) toss(prob float64) Action {
	c.mu.Lock()
	hit, after := c.rng.Float64() < prob, c.rng.IntN(2) == 1
	c.mu.Unlock()
	switch {
	case !hit:
		return Forward
	case after:
		return CutAfter
	default:
		return CutBefore
	}
}
