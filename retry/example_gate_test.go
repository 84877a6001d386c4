package retry_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/pgxact/pgxact/retry"
)

// Two slots: retries take them, and a third retry has to wait; first attempts pass while no retry waits.
func ExampleNewGate() {
	g := retry.NewGate(2)
	ctx := context.Background()
	doneA, _ := g.Wait(ctx, 2)
	doneB, _ := g.Wait(ctx, 3)

	expired, cancel := context.WithCancel(ctx)
	cancel()
	_, err := g.Wait(expired, 2) // both slots are taken: it queues, and gives up with its context
	fmt.Println(err)

	done, err := g.Wait(ctx, 1) // a first attempt takes no slot
	fmt.Println(err)
	done()
	doneA()
	doneB()
	// Output:
	// context canceled
	// <nil>
}

// Once a retry waits, everything queues; the waiter with the most attempts goes first, and first attempts last.
func ExampleGate_Wait() {
	g := retry.NewGate(1)
	ctx := context.Background()
	release, _ := g.Wait(ctx, 2) // a retry holds the only slot

	var wg sync.WaitGroup
	for i, attempt := range []int{2, 1, 5} {
		wg.Go(func() {
			done, _ := g.Wait(ctx, attempt)
			fmt.Println("attempt", attempt, "admitted")
			done() // hands the slot to the next waiter
		})
		for g.Waiting() <= i { // arrive in this order
			runtime.Gosched()
		}
	}
	release()
	wg.Wait()
	// Output:
	// attempt 5 admitted
	// attempt 2 admitted
	// attempt 1 admitted
}
