package retry_test

import (
	"fmt"
	"time"

	"github.com/pgxact/pgxact/retry"
)

// Constant ignores how many attempts failed; a negative delay is reported by Validate rather than panicking.
func ExampleConstant() {
	b := retry.Constant(5 * time.Millisecond)
	fmt.Println(b.Delay(1, 0), b.Delay(10, 5*time.Millisecond))

	p := retry.New(retry.On(retry.Serialization), retry.WithBackoff(retry.Constant(-time.Millisecond)))
	fmt.Println(p.Validate())
	// Output:
	// 5ms 5ms
	// retry: invalid policy: Constant delay -1ms is negative
}

// The same seed gives the same random schedule, so a test can assert on jittered delays.
func ExampleSeeded() {
	schedule := func(seed uint64) []time.Duration {
		b := retry.FullJitter(retry.Exponential(time.Millisecond, time.Second), retry.Seeded(seed))
		var delays []time.Duration
		for n := 1; n <= 4; n++ {
			delays = append(delays, b.Delay(n, 0).Round(time.Microsecond))
		}
		return delays
	}
	fmt.Println(schedule(7))
	fmt.Println(schedule(7))
	fmt.Println(schedule(8))
	// Output:
	// [511µs 523µs 1.468ms 5.541ms]
	// [511µs 523µs 1.468ms 5.541ms]
	// [740µs 1.473ms 2.662ms 4.574ms]
}

// EqualJitter keeps at least half of each exponential delay: every delay lies in [d/2, d).
func ExampleEqualJitter() {
	exp := retry.Exponential(10*time.Millisecond, time.Second)
	b := retry.EqualJitter(exp, retry.Seeded(1))
	for n := 1; n <= 4; n++ {
		fmt.Printf("attempt %d: %v of at most %v\n", n, b.Delay(n, 0).Round(time.Microsecond), exp.Delay(n, 0))
	}
	// Output:
	// attempt 1: 7.637ms of at most 10ms
	// attempt 2: 10.307ms of at most 20ms
	// attempt 3: 33.67ms of at most 40ms
	// attempt 4: 46.046ms of at most 80ms
}

// Decorrelated draws each delay from [base, 3*prev) and caps it, so the runner passes back the delay it slept last.
func ExampleDecorrelated() {
	b := retry.Decorrelated(10*time.Millisecond, 100*time.Millisecond, retry.Seeded(1))
	var prev time.Duration // 0 before the first retry: treated as base
	var delays []time.Duration
	for n := 1; n <= 8; n++ {
		prev = b.Delay(n, prev)
		delays = append(delays, prev.Round(time.Microsecond))
	}
	fmt.Println(delays)
	// Output: [20.549ms 11.588ms 26.926ms 20.697ms 57.603ms 37.212ms 75.496ms 100ms]
}
