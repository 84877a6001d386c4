package retry_test

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/retry"
)

// Never is for work that must not run twice, or whose caller retries it itself.
func ExampleNever() {
	p := retry.Never()
	delay, ok := p.Next(retry.Attempt{N: 1, Err: &pgconn.PgError{Code: "40001"}})
	fmt.Println(delay, ok, p.Validate())
	// Output: 0s false <nil>
}

// Each On replaces the classes set before; classes that can never be retried make the policy invalid.
func ExampleOn() {
	p := retry.New(retry.On(retry.Deadlock), retry.On(retry.Serialization))
	fmt.Println(p.Retryable(&pgconn.PgError{Code: "40001"}), p.Retryable(&pgconn.PgError{Code: "40P01"}))
	fmt.Println(retry.New(retry.On(retry.InFailedTransaction)).Validate())
	// Output:
	// true false
	// retry: invalid policy: On accepts only retryable classes (not Other, InFailedTransaction or undefined values)
}

// MaxAttempts counts the first attempt too: MaxAttempts(1) never retries.
func ExampleMaxAttempts() {
	conflict := &pgconn.PgError{Code: "40001"}
	for _, limit := range []int{1, 3} {
		p := retry.New(retry.On(retry.Serialization), retry.MaxAttempts(limit))
		n := 1 // every attempt fails
		for {
			if _, ok := p.Next(retry.Attempt{N: n, Err: conflict}); !ok {
				break
			}
			n++
		}
		fmt.Printf("MaxAttempts(%d): %d attempts\n", limit, n)
	}
	// Output:
	// MaxAttempts(1): 1 attempts
	// MaxAttempts(3): 3 attempts
}

// With only a time limit, attempts go on until the next one would begin too late, its delay included.
func ExampleMaxElapsed() {
	p := retry.New(retry.On(retry.Serialization), retry.MaxAttempts(0), retry.MaxElapsed(100*time.Millisecond),
		retry.WithBackoff(retry.Constant(30*time.Millisecond)))
	a := retry.Attempt{Err: &pgconn.PgError{Code: "40001"}}
	for a.N = 1; ; a.N++ {
		a.Elapsed += 10 * time.Millisecond // each attempt takes 10ms to fail
		delay, ok := p.Next(a)
		fmt.Printf("attempt %d failed at %v, retry: %v\n", a.N, a.Elapsed, ok)
		if !ok {
			break
		}
		a.Elapsed += delay
	}
	// Output:
	// attempt 1 failed at 10ms, retry: true
	// attempt 2 failed at 50ms, retry: true
	// attempt 3 failed at 90ms, retry: false
}

// linear is a Backoff of one's own: any type with a Delay method fits.
type linear time.Duration

func (l linear) Delay(n int, _ time.Duration) time.Duration {
	return time.Duration(l) * time.Duration(n)
}

func ExampleWithBackoff() {
	deadlock := &pgconn.PgError{Code: "40P01"}
	p := retry.New(retry.On(retry.Deadlock), retry.WithBackoff(linear(10*time.Millisecond)))
	for n := 1; n <= 3; n++ {
		delay, _ := p.Next(retry.Attempt{N: n, Err: deadlock})
		fmt.Print(delay, " ")
	}
	// A nil Backoff retries at once.
	fmt.Println(retry.New(retry.On(retry.Deadlock), retry.WithBackoff(nil)).Next(retry.Attempt{N: 1, Err: deadlock}))
	// Output: 10ms 20ms 30ms 0s true
}

// Policies sharing a Budget: failures under either throttle the retries of both, and successes under either
// bring them back.
func ExampleWithBudget() {
	budget := retry.NewBudget(4, 2) // retries while more than 2 tokens remain
	reads := retry.New(retry.On(retry.Serialization), retry.WithBudget(budget))
	writes := retry.New(retry.On(retry.Serialization, retry.Deadlock), retry.WithBudget(budget))
	conflict := retry.Attempt{N: 1, Err: &pgconn.PgError{Code: "40001"}}

	_, ok := writes.Next(conflict)
	fmt.Println("writes retry:", ok, budget.Tokens())
	_, ok = reads.Next(conflict)
	fmt.Println("reads retry:", ok, budget.Tokens())
	writes.Succeeded()
	_, ok = reads.Next(conflict)
	fmt.Println("reads retry after a success:", ok, budget.Tokens())
	// Output:
	// writes retry: true 3
	// reads retry: false 2
	// reads retry after a success: true 3
}

// Bad parameters do not panic: the policy that uses the budget reports them, and never retries.
func ExampleNewBudget() {
	fmt.Println(retry.NewBudget(100, 3).Tokens()) // starts full
	p := retry.New(retry.On(retry.Serialization), retry.WithBudget(retry.NewBudget(0, 3)))
	fmt.Println(p.Validate())
	// Output:
	// 100
	// retry: invalid policy: Budget needs positive finite max and ratio, got max 0, ratio 3
}

// Policies sharing a Gate run at most its size of their retries at once; tx.Run waits at the policy's Gate.
func ExampleWithGate() {
	gate := retry.NewGate(4)
	transfers := retry.New(retry.On(retry.Serialization), retry.WithGate(gate))
	fmt.Println(transfers.Gate() == gate)
	fmt.Println(retry.New(retry.On(retry.Serialization), retry.WithGate(retry.NewGate(0))).Validate())
	// Output:
	// true
	// retry: invalid policy: Gate needs a positive size, got 0
}

// UniqueViolation is worth retrying for insert-if-absent work racing another transaction for the same key.
func ExamplePolicy_Retryable() {
	p := retry.New(retry.On(retry.Serialization, retry.UniqueViolation))
	fmt.Println(p.Retryable(&pgconn.PgError{Code: "23505"}))
	fmt.Println(p.Retryable(fmt.Errorf("insert: %w", &pgconn.PgError{Code: "40001"})))
	fmt.Println(p.Retryable(&pgconn.PgError{Code: "40P01"}), p.Retryable(nil))
	// Output:
	// true
	// true
	// false false
}
