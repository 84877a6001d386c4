package retry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Rand is a source of random numbers for jitter: it returns a float64 in [0, 1). A nil Rand means the concurrency-safe
// global source of math/rand/v2. A Rand given to a Backoff is called from every goroutine that shares the Policy, so
// it must be safe for concurrent use. Tests pass Seeded for deterministic schedules.
type Rand func() float64

// Seeded returns a deterministic Rand: the same seed gives the same sequence. It is safe for concurrent use (a
// mutex guards the generator), though concurrent callers then see the sequence in an unspecified order.
func Seeded(seed uint64) Rand {
	var mu sync.Mutex
	src := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		// 53 random bits scaled to [0, 1): exact in a float64, and independent of rand.Rand's method algorithms.
		return float64(src.Uint64()>>11) / (1 << 53)
	}
}

// float returns a number in [0, 1) from r, clamping what a careless Rand returns so delays stay within bounds.
func (r Rand) float() float64 {
	f := rand.Float64()
	if r != nil {
		f = r()
	}
	if !(f >= 0) { // also catches NaN
		return 0
	}
	return min(f, belowOne)
}

// belowOne is the largest float64 under 1: a Rand's 1 (or more) becomes it, so that [0, d) stays half-open.
var belowOne = math.Nextafter(1, 0)

// scale returns d*f for f in [0, 1).
func scale(d time.Duration, f float64) time.Duration { return toDuration(float64(d) * f) }

// toDuration converts x, a non-negative number of nanoseconds, saturating at the largest Duration: a float64 near
// math.MaxInt64 rounds up to 2^63, which a plain conversion turns into a negative Duration.
func toDuration(x float64) time.Duration {
	if x >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(x)
}

// FullJitter returns a Backoff that waits a uniform random time in [0, d), where d is b's delay. Spreading retries
// over the whole interval keeps transactions that failed together from colliding again. b must not be nil.
func FullJitter(b Backoff, r Rand) Backoff { return fullJitter{b: b, r: r} }

type fullJitter struct {
	b Backoff
	r Rand
}

func (j fullJitter) Delay(n int, prev time.Duration) time.Duration {
	return scale(max(j.b.Delay(n, prev), 0), j.r.float())
}

func (j fullJitter) validate() error { return validateInner("FullJitter", j.b) }

// EqualJitter returns a Backoff that waits d/2 plus a uniform random time in [0, d/2), where d is b's delay: it keeps
// at least half of the backoff while still spreading retries. b must not be nil.
func EqualJitter(b Backoff, r Rand) Backoff { return equalJitter{b: b, r: r} }

type equalJitter struct {
	b Backoff
	r Rand
}

func (j equalJitter) Delay(n int, prev time.Duration) time.Duration {
	half := max(j.b.Delay(n, prev), 0) / 2
	return half + scale(half, j.r.float())
}

func (j equalJitter) validate() error { return validateInner("EqualJitter", j.b) }

func validateInner(name string, b Backoff) error {
	if b == nil {
		return fmt.Errorf("%w: %s of a nil Backoff", ErrInvalidPolicy, name)
	}
	if v, ok := b.(validator); ok {
		return v.validate()
	}
	return nil
}

// Decorrelated returns AWS's "decorrelated jitter" Backoff: min(max, uniform[base, prev*3)), where prev is the
// previous delay (base before the first retry). Each delay depends on the last rather than on n, so the schedule grows
// roughly exponentially while successive delays stay loosely correlated. base must be positive and max at least base.
func Decorrelated(base, max time.Duration, r Rand) Backoff {
	return decorrelated{base: base, max: max, r: r}
}

type decorrelated struct {
	base, max time.Duration
	r         Rand
}

func (d decorrelated) Delay(_ int, prev time.Duration) time.Duration {
	if d.base <= 0 || d.max < d.base {
		return max(d.max, 0)
	}
	prev = max(prev, d.base)
	// In float64, prev*3 cannot overflow; the cap applies to the sample, as in the AWS formula.
	lo := float64(d.base)
	sample := lo + (3*float64(prev)-lo)*d.r.float()
	return toDuration(min(sample, float64(d.max)))
}

func (d decorrelated) validate() error { return checkBaseMax("Decorrelated", d.base, d.max) }
