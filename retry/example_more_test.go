package retry_test

import (
	"context"
	"fmt"
	"runtime"

	"github.com/pgxact/pgxact/retry"
)

// Waiting tells how many attempts queue at the gate: a metric of contention.
func ExampleGate_Waiting() {
	g := retry.NewGate(1)
	ctx := context.Background()
	release, _ := g.Wait(ctx, 2) // a retry holds the only slot
	admitted := make(chan func())
	go func() {
		done, _ := g.Wait(ctx, 3)
		admitted <- done
	}()
	for g.Waiting() == 0 {
		runtime.Gosched()
	}
	fmt.Println("waiting:", g.Waiting())
	release()
	(<-admitted)()
	fmt.Println("waiting:", g.Waiting())
	// Output:
	// waiting: 1
	// waiting: 0
}

// Policy.Gate is what tx.Run waits at before each attempt: Default shares one per process, New has none unless given.
func ExamplePolicy_Gate() {
	fmt.Println(retry.Default().Gate() != nil, retry.Default().Gate() == retry.Default().Gate())
	fmt.Println(retry.New(retry.On(retry.Serialization)).Gate() == nil)
	// Output:
	// true true
	// true
}

// Succeeded refills the policy's budget; tx.Run calls it after every attempt that committed.
func ExamplePolicy_Succeeded() {
	b := retry.NewBudget(10, 2)
	p := retry.New(retry.On(retry.Serialization), retry.WithBudget(b))
	b.Allow()
	b.Allow()
	fmt.Println(b.Tokens())
	p.Succeeded()
	fmt.Println(b.Tokens())
	// Output:
	// 8
	// 10
}

// A Class prints as its name, for logs and metrics labels.
func ExampleClass_String() {
	fmt.Println(retry.Serialization, retry.Deadlock, retry.ConnectionLost, retry.Class(42))
	// Output: Serialization Deadlock ConnectionLost Class(42)
}
