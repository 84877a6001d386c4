package retry

import (
	"fmt"
	"time"
)

// Backoff gives the delay before attempt n+1 after n failed attempts (n from 1); prev is the delay slept before
// attempt n (0 before the first). Implementations must be safe for concurrent use: one Policy serves many
// transactions. The backoffs of this package never return a negative delay, and Policy.Validate reports their invalid
// parameters.
type Backoff interface {
	Delay(n int, prev time.Duration) time.Duration
}

// validator is implemented by the backoffs of this package so that Policy.Validate can report bad parameters.
type validator interface{ validate() error }

// Constant returns a Backoff that always waits d. d must not be negative.
func Constant(d time.Duration) Backoff { return constant(d) }

type constant time.Duration

func (c constant) Delay(int, time.Duration) time.Duration { return max(time.Duration(c), 0) }

func (c constant) validate() error {
	if c < 0 {
		return fmt.Errorf("%w: Constant delay %v is negative", ErrInvalidPolicy, time.Duration(c))
	}
	return nil
}

// Exponential returns a Backoff that waits base*2^(n-1), capped at max. The arithmetic is done with shifts and a
// comparison against the cap, so large n (hundreds of failures) stays at max instead of overflowing. base must be
// positive and max at least base.
func Exponential(base, max time.Duration) Backoff { return exponential{base: base, max: max} }

type exponential struct{ base, max time.Duration }

func (e exponential) Delay(n int, _ time.Duration) time.Duration {
	return capDouble(e.base, e.max, max(n, 1)-1) // max first: n-1 would overflow for math.MinInt
}

func (e exponential) validate() error { return checkBaseMax("Exponential", e.base, e.max) }

// capDouble returns base*2^shift capped at limit, without overflow: it compares base against limit>>shift instead
// of computing the product. shift must not be negative.
func capDouble(base, limit time.Duration, shift int) time.Duration {
	if base <= 0 || limit <= 0 {
		return 0
	}
	if shift >= 63 || base > limit>>shift {
		return limit
	}
	return base << shift
}

func checkBaseMax(name string, base, limit time.Duration) error {
	if base <= 0 || limit < base {
		return fmt.Errorf("%w: %s needs 0 < base <= max, got base %v, max %v", ErrInvalidPolicy, name, base, limit)
	}
	return nil
}
