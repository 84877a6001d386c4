package retry_test

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/retry"
)

// The class of an error survives %w wrapping but not %v.
func Example_wrapping() {
	serialization := &pgconn.PgError{Code: "40001", Message: "could not serialize access"}

	fmt.Println(retry.Classify(serialization))
	fmt.Println(retry.Classify(fmt.Errorf("transfer: %w", serialization)))
	fmt.Println(retry.Classify(fmt.Errorf("transfer: %v", serialization)))
	fmt.Println(retry.Classify(io.EOF), retry.Classify(retry.Uncommitted(io.EOF)))
	// Output:
	// Serialization
	// Serialization
	// Other
	// Other ConnectionLost
}

// A runner's loop: ask the policy after each failure, sleep the delay it gives, stop when it says no.
func ExamplePolicy_Next() {
	p := retry.New(
		retry.On(retry.Serialization, retry.Deadlock),
		retry.MaxAttempts(4),
		retry.WithBackoff(retry.Exponential(10*time.Millisecond, time.Second)),
	)
	if err := p.Validate(); err != nil {
		panic(err)
	}
	deadlock := &pgconn.PgError{Code: "40P01"}

	a := retry.Attempt{}
	for a.N = 1; ; a.N++ {
		a.Err = deadlock // every attempt fails in this example
		delay, ok := p.Next(a)
		if !ok {
			fmt.Printf("attempt %d failed: giving up\n", a.N)
			break
		}
		fmt.Printf("attempt %d failed: retrying in %v\n", a.N, delay)
		a.Delay, a.Elapsed = delay, a.Elapsed+delay // a real runner sleeps here
	}
	// Output:
	// attempt 1 failed: retrying in 10ms
	// attempt 2 failed: retrying in 20ms
	// attempt 3 failed: retrying in 40ms
	// attempt 4 failed: giving up
}

func ExampleExponential() {
	b := retry.Exponential(time.Millisecond, 100*time.Millisecond)
	for _, n := range []int{1, 2, 3, 7, 8, 200} {
		fmt.Println(n, b.Delay(n, 0))
	}
	// Output:
	// 1 1ms
	// 2 2ms
	// 3 4ms
	// 7 64ms
	// 8 100ms
	// 200 100ms
}

// A Rand that always returns 0.5 shows each jitter's shape; Seeded gives deterministic random schedules for tests.
func ExampleFullJitter() {
	half := func() float64 { return 0.5 }
	exp := retry.Exponential(time.Millisecond, 100*time.Millisecond)
	fmt.Println(retry.FullJitter(exp, half).Delay(4, 0))  // uniform [0, 8ms)
	fmt.Println(retry.EqualJitter(exp, half).Delay(4, 0)) // 4ms + uniform [0, 4ms)
	fmt.Println(retry.Decorrelated(time.Millisecond, 100*time.Millisecond, half).Delay(4, 10*time.Millisecond))
	// Output:
	// 4ms
	// 6ms
	// 15.5ms
}

// Under a persistent failure the budget stops retries after about max/2 failures; successes bring them back.
func ExampleBudget() {
	b := retry.NewBudget(10, 1)
	allowed := 0
	for range 100 {
		if b.Allow() {
			allowed++
		}
	}
	fmt.Println("retries allowed in 100 failures:", allowed)

	for range 10 {
		b.Success()
	}
	fmt.Println("after 10 successes:", b.Tokens(), b.Allow())
	// Output:
	// retries allowed in 100 failures: 4
	// after 10 successes: 10 true
}

func ExamplePolicy_Validate() {
	p := retry.New(retry.On(retry.Serialization), retry.MaxAttempts(-3))
	err := p.Validate()
	fmt.Println(errors.Is(err, retry.ErrInvalidPolicy))
	fmt.Println(err)
	// Output:
	// true
	// retry: invalid policy: MaxAttempts -3 is outside [0, 1000]
}

// The default policy retries serialization failures and deadlocks, not other errors.
func ExampleDefault() {
	p := retry.Default()
	fmt.Println(p.Retryable(&pgconn.PgError{Code: "40001"}), p.Retryable(&pgconn.PgError{Code: "40P01"}))
	fmt.Println(p.Retryable(&pgconn.PgError{Code: "23505"}), p.Retryable(errors.New("boom")))
	// Output:
	// true true
	// false false
}

// A policy that also retries lock timeouts, at most 3 attempts, with a constant pause.
func ExampleNew() {
	p := retry.New(
		retry.On(retry.Serialization, retry.Deadlock, retry.LockNotAvailable),
		retry.MaxAttempts(3),
		retry.WithBackoff(retry.Constant(5*time.Millisecond)),
	)
	lock := &pgconn.PgError{Code: "55P03"}
	for n := 1; n <= 3; n++ {
		d, ok := p.Next(retry.Attempt{N: n, Err: lock})
		fmt.Println(n, d, ok)
	}
	// Output:
	// 1 5ms true
	// 2 5ms true
	// 3 0s false
}
