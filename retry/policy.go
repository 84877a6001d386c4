package retry

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Defaults of Default (and the limits New starts from), chosen with txbench's transfer sweep (docs/retries.md has
// the figures); keep every tunable number here.
const (
	// defaultMaxAttempts: with the Gate, heavy contention costs about 1.4 attempts per commit, yet a few unlucky
	// transactions still lose ten times in a row at 4 workers; 20 turns those into commits, and MaxElapsed bounds
	// the time all the same.
	defaultMaxAttempts = 20
	defaultMaxElapsed  = 10 * time.Second
	defaultBackoffBase = time.Millisecond
	// defaultBackoffCap: 30ms gave more commits/s than 100ms at 4–32 workers and a shorter tail than 10ms at 64.
	defaultBackoffCap = 30 * time.Millisecond
	defaultBudgetMax  = 100 // failures in a row before the shared budget stops retries: about half of this
	// defaultBudgetRatio is the tokens a success gives back. Contention legitimately costs a few failed attempts per
	// commit (16 workers on 3 hot rows: about 2), and throttling those would turn contention into errors; what the
	// budget is for is failure without progress. 3 keeps retrying while at least 1 attempt in 4 succeeds.
	defaultBudgetRatio = 3
	maxSaneAttempts    = 1000
	maxSaneElapsed     = 24 * time.Hour
)

// defaultGateSize gives the Gate as many slots as the process has processors, and at least 2. Measured only on 2
// cores, where 2 slots kept 16–64 contending workers at the commit rate of 4; 1 slot cut retries further but also
// the commit rate.
func defaultGateSize() int { return max(2, runtime.GOMAXPROCS(0)) }

// defaultBudget and defaultGate are shared by every Default policy of the process, so that a persistent failure
// anywhere throttles the retries of all of them, and contending transactions queue together.
var (
	defaultBudget = NewBudget(defaultBudgetMax, defaultBudgetRatio)
	defaultGate   = NewGate(defaultGateSize())
	defaultPolicy = New(On(Serialization, Deadlock, ConnectionLost), WithBudget(defaultBudget), WithGate(defaultGate))
)

// ErrInvalidPolicy is the error Policy.Validate wraps for negative or absurd settings.
var ErrInvalidPolicy = errors.New("retry: invalid policy")

// Attempt describes an attempt that just failed.
type Attempt struct {
	N       int           // number of the failed attempt, from 1
	Err     error         // what it failed with
	Elapsed time.Duration // since the first attempt began
	Delay   time.Duration // the delay slept before this attempt (0 before the first)
}

// Policy decides whether to run again after a failed attempt, and after what delay. Build one with New and options,
// or take Default or Never.
//
// The zero Policy never retries. A Policy is an immutable value: copies may be used from many goroutines at once, and
// they share the Budget, which is a pointer. An invalid Policy (see Validate) never retries.
type Policy struct {
	classes     uint32 // bit c set: class c is retried
	maxAttempts int    // total attempts including the first; 0: no limit
	maxElapsed  time.Duration
	backoff     Backoff // nil: no delay
	budget      *Budget // nil: no budget
	gate        *Gate   // nil: retries do not wait for each other
	err         error   // what Validate reports, computed once by New
}

// Option configures a Policy in New.
type Option func(*Policy)

// New returns a Policy configured by opts, applied in order. Before the options, it retries no class (so New() never
// retries) and has Default's limits and backoff: 20 attempts, 10s, full-jitter exponential backoff from 1ms to 30ms,
// and no Budget or Gate.
func New(opts ...Option) Policy {
	p := Policy{
		maxAttempts: defaultMaxAttempts,
		maxElapsed:  defaultMaxElapsed,
		backoff:     FullJitter(Exponential(defaultBackoffBase, defaultBackoffCap), nil),
	}
	for _, opt := range opts {
		opt(&p)
	}
	p.err = p.check()
	return p
}

// Default returns the policy for whole-transaction retries: it retries Serialization, Deadlock and ConnectionLost,
// at most 20 attempts in all and none begun after 10s, with full-jitter exponential backoff from 1ms capped at 30ms,
// under a Budget (100 tokens, 3 per success) and a Gate (a slot per processor, at least 2) shared by every Default
// policy in the process.
func Default() Policy { return defaultPolicy }

// Never returns a Policy that never retries, the same as the zero Policy.
func Never() Policy { return Policy{} }

// On sets the classes that are retried, replacing those set before. Other and InFailedTransaction are never retried
// and make the Policy invalid, as do values that are not Class constants.
func On(classes ...Class) Option {
	return func(p *Policy) {
		p.classes = 0
		for _, c := range classes {
			p.classes |= classBit(c)
		}
	}
}

// invalidClassBit stands for any value outside the Class constants.
const invalidClassBit = 1 << 31

func classBit(c Class) uint32 {
	if !c.valid() {
		return invalidClassBit
	}
	return 1 << c
}

// MaxAttempts limits the total number of attempts, the first included: MaxAttempts(1) never retries. 0 means no
// limit on the count, which is valid only with a MaxElapsed.
func MaxAttempts(n int) Option { return func(p *Policy) { p.maxAttempts = n } }

// MaxElapsed stops retrying once d has passed since the first attempt began: no attempt starts later than that,
// delay included. 0 means no time limit, which is valid only with a MaxAttempts.
func MaxElapsed(d time.Duration) Option { return func(p *Policy) { p.maxElapsed = d } }

// WithBackoff sets the delay schedule. A nil Backoff means no delay.
func WithBackoff(b Backoff) Option { return func(p *Policy) { p.backoff = b } }

// WithBudget makes the Policy spend from b, typically shared with other policies. A nil b means no budget.
func WithBudget(b *Budget) Option { return func(p *Policy) { p.budget = b } }

// WithGate makes the Policy's retries wait at g, typically shared with other policies, so that no more than g's size
// of them run at once. A nil g means retries never wait for each other.
//
// The waiting is tx.Run's, before each attempt of a whole transaction, when it holds no connection and no lock.
// tx.Retry, which retries a statement-level failure inside a transaction, does not wait at the Gate: queueing there
// would keep the transaction's locks held, and could wait for a slot its own transaction's attempt holds.
func WithGate(g *Gate) Option { return func(p *Policy) { p.gate = g } }

// Validate returns nil for a usable Policy, or an error for which errors.Is(err, ErrInvalidPolicy) is true naming
// every problem: a class that cannot be retried, negative limits, no limit at all, absurd limits (over 1000 attempts
// or 24h), bad backoff or budget parameters. The zero Policy is valid.
func (p Policy) Validate() error { return p.err }

func (p Policy) check() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidPolicy}, args...)...))
	}
	if p.classes&(invalidClassBit|1<<Other|1<<InFailedTransaction) != 0 {
		add("On accepts only retryable classes (not Other, InFailedTransaction or undefined values)")
	}
	if p.maxAttempts < 0 || p.maxAttempts > maxSaneAttempts {
		add("MaxAttempts %d is outside [0, %d]", p.maxAttempts, maxSaneAttempts)
	}
	if p.maxElapsed < 0 || p.maxElapsed > maxSaneElapsed {
		add("MaxElapsed %v is outside [0, %v]", p.maxElapsed, maxSaneElapsed)
	}
	if p.classes != 0 && p.maxAttempts == 0 && p.maxElapsed == 0 {
		add("neither MaxAttempts nor MaxElapsed limits the retries")
	}
	if v, ok := p.backoff.(validator); ok {
		errs = append(errs, v.validate())
	}
	errs = append(errs, p.budget.validate(), p.gate.validate())
	return errors.Join(errs...)
}

// Retryable reports whether err's class, as found by Classify, is one p retries. InFailedTransaction never is.
func (p Policy) Retryable(err error) bool {
	c := Classify(err)
	return c != Other && c != InFailedTransaction && p.classes&classBit(c) != 0
}

// Next reports whether to run again after the failed attempt a, and the delay to sleep first. It says yes only if
// a.Err is Retryable, attempts are left, the next attempt would begin (after the delay) within MaxElapsed, and the
// Budget allows a retry. Every retryable failure spends from the Budget, even the last one, so the budget measures
// how often attempts fail.
func (p Policy) Next(a Attempt) (delay time.Duration, ok bool) {
	if p.err != nil || !p.Retryable(a.Err) {
		return 0, false
	}
	allowed := p.budget.Allow()
	if p.maxAttempts > 0 && a.N >= p.maxAttempts {
		return 0, false
	}
	delay = p.delay(a)
	// Compare with the time remaining rather than a.Elapsed+delay, which a huge custom delay could overflow.
	if p.maxElapsed > 0 && delay >= p.maxElapsed-max(a.Elapsed, 0) {
		return 0, false
	}
	if !allowed {
		return 0, false
	}
	return delay, true
}

func (p Policy) delay(a Attempt) time.Duration {
	if p.backoff == nil {
		return 0
	}
	return max(p.backoff.Delay(max(a.N, 1), a.Delay), 0)
}

// Gate returns the Gate the Policy's attempts are admitted by, or nil. The runner waits there before every attempt
// (first attempts usually pass at once, see Gate), after the delay, and gives the slot back when the attempt ends.
func (p Policy) Gate() *Gate { return p.gate }

// Deadline returns the time after which no attempt of a run whose first attempt began at start may begin, and false
// when the Policy has no MaxElapsed. A runner bounds its wait at the Gate with it.
func (p Policy) Deadline(start time.Time) (time.Time, bool) {
	if p.maxElapsed <= 0 {
		return time.Time{}, false
	}
	return start.Add(p.maxElapsed), true
}

// Succeeded tells p's Budget that an attempt succeeded, refilling it. Call it once per successful attempt; without a
// Budget it does nothing.
func (p Policy) Succeeded() { p.budget.Success() }
