package retry

import (
	"fmt"
	"math"
	"sync"
)

// Budget is a retry budget shared across transactions, a token bucket in the style of gRPC retry throttling. It
// starts full with max tokens; each failed attempt spends one token and each success adds ratio tokens, up to max.
// Retries are allowed only while more than max/2 tokens remain. Under a persistent failure the tokens drain after
// about max/2 failures and from then on almost every transaction makes a single attempt, so retries cannot multiply
// the load on a struggling server; once successes return they refill the bucket and retries resume by themselves.
//
// A Budget is safe for concurrent use and is meant to be shared, by pointer, among policies. The zero Budget is not
// usable (it allows no retries): create one with NewBudget. A nil *Budget allows every retry.
type Budget struct {
	mu     sync.Mutex
	tokens float64
	max    float64
	ratio  float64
	valid  bool // set by NewBudget for good parameters; an invalid or zero Budget allows nothing
}

// NewBudget returns a full Budget of max tokens that refills ratio tokens per success. ratio must be positive and
// finite, max finite and greater than 2: a Budget of 2 tokens or fewer would allow no retry even when full, since the
// first failure leaves it half of its tokens or fewer. NewBudget does not panic on bad values, so a budget built from
// configuration can be checked like the rest of a policy: Policy.Validate returns an error for which
// errors.Is(err, ErrInvalidPolicy) is true, and an invalid Budget allows no retries.
func NewBudget(max float64, ratio float64) *Budget {
	b := &Budget{max: max, ratio: ratio}
	if b.validate() == nil {
		b.tokens, b.valid = max, true
	}
	return b
}

func (b *Budget) validate() error {
	if b == nil {
		return nil
	}
	if !positiveFinite(b.max) || !positiveFinite(b.ratio) {
		return fmt.Errorf("%w: Budget needs positive finite max and ratio, got max %v, ratio %v",
			ErrInvalidPolicy, b.max, b.ratio)
	}
	if b.max <= noRetryMax {
		// Such a budget would pass for a throttle while silently turning retries off: refuse it where it is configured.
		return fmt.Errorf("%w: Budget max %v allows no retry, not even when full: it must be greater than %v",
			ErrInvalidPolicy, b.max, noRetryMax)
	}
	return nil
}

// noRetryMax is the largest max of a Budget that allows no retry: a full one allows the first only if the token
// that failure spends leaves more than half, max-1 > max/2, that is max > 2.
const noRetryMax = 2

func positiveFinite(f float64) bool { return f > 0 && !math.IsInf(f, 1) }

// Allow spends a token for a failed attempt and reports whether a retry is allowed: whether more than max/2 tokens
// remain after spending.
func (b *Budget) Allow() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.valid {
		return false
	}
	b.tokens = max(b.tokens-1, 0)
	return b.tokens > b.max/2
}

// Success adds ratio tokens for a successful attempt, up to max.
func (b *Budget) Success() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.valid {
		return
	}
	b.tokens = min(b.tokens+b.ratio, b.max)
}

// Tokens returns the number of tokens left, for metrics and tests.
func (b *Budget) Tokens() float64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens
}
