package retry_test

import (
	"errors"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
)

// attempts counts how many attempts a runner makes with p when every attempt fails with err and takes no time.
func attempts(t *testing.T, p retry.Policy, err error) int {
	t.Helper()
	n := countAttempts(p, err)
	require.Positive(t, n, "the policy did not stop within %d attempts", runaway)
	return n
}

const runaway = 10_000

// countAttempts is attempts for goroutines other than the test's: it returns -1 if the policy does not stop.
func countAttempts(p retry.Policy, err error) int {
	a := retry.Attempt{Err: err}
	for a.N = 1; a.N <= runaway; a.N++ {
		delay, ok := p.Next(a)
		if !ok {
			return a.N
		}
		a.Delay = delay
		a.Elapsed += delay
	}
	return -1
}

func TestPoliciesThatNeverRetry(t *testing.T) {
	policies := map[string]retry.Policy{
		"the zero Policy":            {},
		"Never()":                    retry.Never(),
		"New() without classes":      retry.New(),
		"MaxAttempts(1)":             retry.New(retry.On(retry.Serialization), retry.MaxAttempts(1)),
		"an invalid policy":          retry.New(retry.On(retry.Serialization), retry.MaxAttempts(-1)),
		"On() with no classes":       retry.New(retry.On(retry.Serialization), retry.On()),
		"a drained invalid budget":   retry.New(retry.On(retry.Serialization), retry.WithBudget(&retry.Budget{})),
		"a MaxElapsed below a delay": retry.New(retry.On(retry.Serialization), retry.WithBackoff(retry.Constant(time.Second)), retry.MaxElapsed(time.Second)),
	}
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, 1, attempts(t, p, failAlways()))
			p.Succeeded() // must not panic
		})
	}
}

func TestZeroPolicyIsValid(t *testing.T) {
	require.NoError(t, retry.Policy{}.Validate())
	require.NoError(t, retry.Never().Validate())
	require.NoError(t, retry.New().Validate())
	require.NoError(t, retry.Default().Validate())
}

func TestMaxAttemptsCountsTheFirstAttempt(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			p := retry.New(retry.On(retry.Deadlock), retry.MaxAttempts(n), retry.WithBackoff(nil), retry.MaxElapsed(0))
			require.NoError(t, p.Validate())
			require.Equal(t, n, attempts(t, p, pgError("40P01")))
		})
	}
}

func TestMaxElapsedStopsBeforeTheNextAttemptWouldStart(t *testing.T) {
	p := retry.New(retry.On(retry.Serialization), retry.MaxAttempts(0), retry.MaxElapsed(time.Second),
		retry.WithBackoff(retry.Constant(300*time.Millisecond)))
	require.NoError(t, p.Validate())
	// Attempts start at 0, 300ms, 600ms and 900ms; one at 1.2s would be past the limit.
	require.Equal(t, 4, attempts(t, p, failAlways()))

	delay, ok := p.Next(retry.Attempt{N: 1, Err: failAlways(), Elapsed: 699 * time.Millisecond})
	require.True(t, ok)
	require.Equal(t, 300*time.Millisecond, delay)
	_, ok = p.Next(retry.Attempt{N: 1, Err: failAlways(), Elapsed: 700 * time.Millisecond})
	require.False(t, ok, "the next attempt would start exactly at the limit")
}

func TestMaxElapsedWithAHugeDelayDoesNotOverflow(t *testing.T) {
	p := retry.New(retry.On(retry.Serialization), retry.WithBackoff(retry.Constant(math.MaxInt64)))
	_, ok := p.Next(retry.Attempt{N: 1, Err: failAlways(), Elapsed: time.Second})
	require.False(t, ok)
}

func TestTheClassSetDecidesWhatIsRetried(t *testing.T) {
	p := retry.New(retry.On(retry.LockNotAvailable, retry.UniqueViolation), retry.WithBackoff(nil))
	tests := []struct {
		err  error
		want bool
	}{
		{pgError("55P03"), true},
		{fmt.Errorf("lock: %w", pgError("55P03")), true},
		{pgError("23505"), true},
		{pgError("40001"), false},
		{pgError("23P01"), false},
		{fmt.Errorf("lock: %v", pgError("55P03")), false},
		{errors.New("boom"), false},
		{nil, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v is retried: %v", tt.err, tt.want), func(t *testing.T) {
			require.Equal(t, tt.want, p.Retryable(tt.err))
			_, ok := p.Next(retry.Attempt{N: 1, Err: tt.err})
			require.Equal(t, tt.want, ok)
		})
	}
}

func TestOtherAndInFailedTransactionAreNeverRetryable(t *testing.T) {
	p := retry.New(retry.On(retry.Other, retry.InFailedTransaction))
	require.ErrorIs(t, p.Validate(), retry.ErrInvalidPolicy)
	require.False(t, p.Retryable(pgError("25P02")))
	require.False(t, p.Retryable(errors.New("boom")))
	require.False(t, p.Retryable(nil))
}

func TestOnReplacesTheSet(t *testing.T) {
	p := retry.New(retry.On(retry.Serialization), retry.On(retry.Deadlock))
	require.False(t, p.Retryable(pgError("40001")))
	require.True(t, p.Retryable(pgError("40P01")))
}

func TestDefault(t *testing.T) {
	p := retry.Default()
	require.True(t, p.Retryable(pgError("40001")))
	require.True(t, p.Retryable(pgError("40P01")))
	require.True(t, p.Retryable(retry.Uncommitted(io.EOF)))
	for _, code := range []string{"55P03", "23505", "23P01", "25006", "25P02"} {
		require.False(t, p.Retryable(pgError(code)), code)
	}
	require.False(t, p.Retryable(io.EOF), "a connection error that may hide a commit")

	for range 40 {
		p.Succeeded() // refill the process-wide budget, which earlier runs of this test (-count) spent
	}
	a := retry.Attempt{Err: failAlways()}
	for a.N = 1; a.N < 20; a.N++ {
		delay, ok := p.Next(a)
		require.True(t, ok, "attempt %d", a.N)
		require.True(t, delay >= 0 && delay < 30*time.Millisecond, "delay %v", delay)
	}
	_, ok := p.Next(a)
	require.False(t, ok, "the twentieth attempt is the last")
	require.NotNil(t, p.Gate(), "Default queues contending transactions at a shared Gate")
	require.Same(t, p.Gate(), retry.Default().Gate())

	_, ok = p.Next(retry.Attempt{N: 1, Err: failAlways(), Elapsed: 10 * time.Second})
	require.False(t, ok, "no attempt begins after 10s")
	// These 21 failures spent 21 of the 100 tokens of the process-wide budget, which still allows retries.
}

func TestValidate(t *testing.T) {
	on := retry.On(retry.Serialization)
	invalid := map[string][]retry.Option{
		"On(Other)":                    {retry.On(retry.Other)},
		"On(InFailedTransaction)":      {retry.On(retry.Serialization, retry.InFailedTransaction)},
		"On an undefined class":        {retry.On(retry.Class(42))},
		"On a negative class":          {retry.On(retry.Class(-1))},
		"negative MaxAttempts":         {on, retry.MaxAttempts(-1)},
		"absurd MaxAttempts":           {on, retry.MaxAttempts(1_000_000)},
		"negative MaxElapsed":          {on, retry.MaxElapsed(-time.Second)},
		"absurd MaxElapsed":            {on, retry.MaxElapsed(48 * time.Hour)},
		"no limit at all":              {on, retry.MaxAttempts(0), retry.MaxElapsed(0)},
		"negative Constant":            {on, retry.WithBackoff(retry.Constant(-1))},
		"Exponential base 0":           {on, retry.WithBackoff(retry.Exponential(0, time.Second))},
		"Exponential max below base":   {on, retry.WithBackoff(retry.Exponential(time.Second, time.Millisecond))},
		"FullJitter of nil":            {on, retry.WithBackoff(retry.FullJitter(nil, nil))},
		"EqualJitter of a bad backoff": {on, retry.WithBackoff(retry.EqualJitter(retry.Constant(-1), nil))},
		"Decorrelated negative base":   {on, retry.WithBackoff(retry.Decorrelated(-1, time.Second, nil))},
		"Decorrelated max below base":  {on, retry.WithBackoff(retry.Decorrelated(time.Second, 1, nil))},
		"Budget with max 0":            {on, retry.WithBudget(retry.NewBudget(0, 1))},
		"Budget with negative ratio":   {on, retry.WithBudget(retry.NewBudget(10, -1))},
		"Budget with NaN max":          {on, retry.WithBudget(retry.NewBudget(math.NaN(), 1))},
		"Budget with infinite ratio":   {on, retry.WithBudget(retry.NewBudget(10, math.Inf(1)))},
		"zero Budget":                  {on, retry.WithBudget(&retry.Budget{})},
	}
	for name, opts := range invalid {
		t.Run(name+" is invalid", func(t *testing.T) {
			p := retry.New(opts...)
			require.ErrorIs(t, p.Validate(), retry.ErrInvalidPolicy)
			_, ok := p.Next(retry.Attempt{N: 1, Err: failAlways()})
			require.False(t, ok, "an invalid policy never retries")
		})
	}

	valid := map[string][]retry.Option{
		"count limit only":      {on, retry.MaxElapsed(0)},
		"time limit only":       {on, retry.MaxAttempts(0)},
		"no delay":              {on, retry.WithBackoff(nil)},
		"no budget":             {on, retry.WithBudget(nil)},
		"a custom Backoff":      {on, retry.WithBackoff(backoffFunc(func(int, time.Duration) time.Duration { return 0 }))},
		"every retryable class": {retry.On(retry.Serialization, retry.Deadlock, retry.LockNotAvailable, retry.UniqueViolation, retry.ExclusionViolation, retry.ConnectionLost, retry.ReadOnlyTransaction)},
		"Decorrelated":          {on, retry.WithBackoff(retry.Decorrelated(time.Millisecond, time.Second, retry.Seeded(1)))},
		"EqualJitter":           {on, retry.WithBackoff(retry.EqualJitter(retry.Exponential(1, 2), nil))},
	}
	for name, opts := range valid {
		t.Run(name+" is valid", func(t *testing.T) {
			require.NoError(t, retry.New(opts...).Validate())
		})
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	err := retry.New(retry.MaxAttempts(-1), retry.MaxElapsed(-1)).Validate()
	require.ErrorIs(t, err, retry.ErrInvalidPolicy)
	require.ErrorContains(t, err, "MaxAttempts -1")
	require.ErrorContains(t, err, "MaxElapsed -1ns")
}

type backoffFunc func(n int, prev time.Duration) time.Duration

func (f backoffFunc) Delay(n int, prev time.Duration) time.Duration { return f(n, prev) }

func TestNextFeedsTheBackoff(t *testing.T) {
	var gotN []int
	var gotPrev []time.Duration
	b := backoffFunc(func(n int, prev time.Duration) time.Duration {
		gotN, gotPrev = append(gotN, n), append(gotPrev, prev)
		return time.Duration(n) * time.Millisecond
	})
	p := retry.New(retry.On(retry.Serialization), retry.MaxAttempts(4), retry.WithBackoff(b))
	require.Equal(t, 4, attempts(t, p, failAlways()))
	require.Equal(t, []int{1, 2, 3}, gotN)
	require.Equal(t, []time.Duration{0, time.Millisecond, 2 * time.Millisecond}, gotPrev)
}

func TestNextClampsANegativeCustomDelay(t *testing.T) {
	p := retry.New(retry.On(retry.Serialization),
		retry.WithBackoff(backoffFunc(func(int, time.Duration) time.Duration { return -time.Hour })))
	delay, ok := p.Next(retry.Attempt{N: 1, Err: failAlways()})
	require.True(t, ok)
	require.Zero(t, delay)
}

func TestNextSpendsTheBudgetOnlyForRetryableFailures(t *testing.T) {
	b := retry.NewBudget(10, 1)
	p := retry.New(retry.On(retry.Serialization), retry.MaxAttempts(2), retry.WithBudget(b))
	_, _ = p.Next(retry.Attempt{N: 1, Err: errors.New("not retryable")})
	require.Equal(t, 10.0, b.Tokens())
	_, ok := p.Next(retry.Attempt{N: 1, Err: failAlways()})
	require.True(t, ok)
	require.Equal(t, 9.0, b.Tokens())
	_, ok = p.Next(retry.Attempt{N: 2, Err: failAlways()})
	require.False(t, ok)
	require.Equal(t, 8.0, b.Tokens(), "the last failure counts too")
	p.Succeeded()
	require.Equal(t, 9.0, b.Tokens())
}
