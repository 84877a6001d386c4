package retry_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
)

// allowed counts how many of n failures in a row the budget allows a retry for.
func allowed(b *retry.Budget, n int) int {
	count := 0
	for range n {
		if b.Allow() {
			count++
		}
	}
	return count
}

func TestBudgetStopsRetriesAfterAboutHalfItsTokens(t *testing.T) {
	tests := []struct {
		max  float64
		want int
	}{
		{10, 4},   // 9, 8, 7, 6 are above 5; 5 is not
		{100, 49}, // 99 down to 51
		{11, 5},   // 10 down to 6, above 5.5
		{3, 1},    // 2 is above 1.5; 1 is not
		{2.5, 1},  // 1.5 is above 1.25
		{1000, 499},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			b := retry.NewBudget(tt.max, 0.1)
			require.Equal(t, tt.max, b.Tokens(), "a new budget is full")
			require.Equal(t, tt.want, allowed(b, 10_000))
			require.Zero(t, b.Tokens(), "tokens do not go below zero")
		})
	}
}

func TestBudgetSuccessesResumeRetries(t *testing.T) {
	b := retry.NewBudget(10, 1)
	require.Equal(t, 4, allowed(b, 100))
	for range 6 {
		b.Success()
	}
	require.Equal(t, 6.0, b.Tokens())
	require.False(t, b.Allow(), "5 tokens left are not above half")
	for range 100 {
		b.Success()
	}
	require.Equal(t, 10.0, b.Tokens(), "successes refill up to max")
	require.Equal(t, 4, allowed(b, 100))
}

// A Budget that validates must allow a retry when full: one of 2 tokens or fewer is left with half or fewer by the
// first failure, so it would pass for a throttle while turning retries off.
func TestBudgetTooSmallToAllowARetryIsInvalid(t *testing.T) {
	tests := []struct {
		max   float64
		valid bool
	}{
		{0.5, false},
		{1, false},
		{2, false},
		{2.001, true},
		{3, true},
		{10, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			p := retry.New(retry.On(retry.Serialization), retry.WithBudget(retry.NewBudget(tt.max, 1)))
			_, ok := p.Next(retry.Attempt{N: 1, Err: &pgconn.PgError{Code: "40001"}})
			if !tt.valid {
				require.ErrorIs(t, p.Validate(), retry.ErrInvalidPolicy)
				require.ErrorContains(t, p.Validate(), "allows no retry")
				require.False(t, ok, "an invalid policy never retries")
				return
			}
			require.NoError(t, p.Validate())
			require.True(t, ok, "a full, valid Budget allows the first retry")
		})
	}
}

func TestBudgetWithAFractionalRatio(t *testing.T) {
	b := retry.NewBudget(10, 0.25)
	allowed(b, 20)
	for range 28 { // 7 tokens
		b.Success()
	}
	require.InDelta(t, 7.0, b.Tokens(), 1e-9)
	require.True(t, b.Allow())  // 6 left
	require.False(t, b.Allow()) // 5 left
}

// TestPersistentFailureKeepsAttemptsNearFirstAttempts runs many always-failing transactions through a policy that
// would otherwise allow ten attempts each: with the budget they make barely more attempts than transactions.
func TestPersistentFailureKeepsAttemptsNearFirstAttempts(t *testing.T) {
	b := retry.NewBudget(10, 0.1)
	p := retry.New(retry.On(retry.Serialization), retry.MaxAttempts(10), retry.WithBackoff(nil), retry.WithBudget(b))
	const transactions = 1000
	total := 0
	for range transactions {
		total += attempts(t, p, failAlways())
	}
	require.Equal(t, transactions+4, total)

	for range 70 { // the database recovers: successes refill about 7 tokens
		p.Succeeded()
	}
	require.Equal(t, 2, attempts(t, p, failAlways()), "retries resume by themselves")
}

func TestInvalidAndNilBudgets(t *testing.T) {
	for name, b := range map[string]*retry.Budget{
		"zero":      {},
		"max 0":     retry.NewBudget(0, 1),
		"max < 0":   retry.NewBudget(-4, 1),
		"ratio < 0": retry.NewBudget(10, -1),
	} {
		t.Run(name+" allows nothing", func(t *testing.T) {
			b.Success()
			require.False(t, b.Allow())
			require.Zero(t, b.Tokens())
		})
	}
	var none *retry.Budget
	require.True(t, none.Allow(), "a nil budget allows every retry")
	none.Success()
	require.Zero(t, none.Tokens())
}

func TestBudgetConcurrentUse(t *testing.T) {
	const goroutines, each = 50, 20
	b := retry.NewBudget(100, 0.5)

	var mu sync.Mutex
	count := 0
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			n := allowed(b, each)
			mu.Lock()
			count += n
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, 49, count, "whatever the interleaving, 1000 failures allow exactly 49 retries")

	outOfRange := make(chan float64, goroutines*each)
	for range goroutines {
		wg.Go(func() {
			for range each {
				b.Success()
				b.Allow()
				if tokens := b.Tokens(); tokens < 0 || tokens > 100 {
					outOfRange <- tokens
				}
			}
		})
	}
	wg.Wait()
	close(outOfRange)
	require.Empty(t, outOfRange)
}

func TestPolicyConcurrentUse(t *testing.T) {
	p := retry.New(retry.On(retry.Serialization), retry.WithBudget(retry.NewBudget(1000, 1)),
		retry.WithBackoff(retry.Decorrelated(time.Millisecond, time.Second, retry.Seeded(9))))
	counts := make(chan int, 20*50)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 50 {
				n := countAttempts(p, failAlways())
				counts <- n
				if n%2 == 0 {
					p.Succeeded()
				}
			}
		})
	}
	wg.Wait()
	close(counts)
	for n := range counts {
		require.True(t, n >= 1 && n <= 20, "%d attempts", n)
	}
}
