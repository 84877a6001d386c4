package jepsen

import (
	"context"
	"sync"
	"sync/atomic"
)

// RunWorkers runs op from n goroutines until total operations have started or ctx is done, waits for the running
// ones to return, and reports how many started. Each operation gets its sequence number, from 0, which is also a
// good seed for its randomness. op must return promptly once ctx is done: the time bound of a load test is ctx's
// deadline, so RunWorkers itself never outlives an op that respects ctx.
func RunWorkers(ctx context.Context, n, total int, op func(ctx context.Context, seq int)) int {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				seq := int(next.Add(1) - 1)
				if seq >= total {
					return
				}
				op(ctx, seq)
			}
		}()
	}
	wg.Wait()
	return min(int(next.Load()), total)
}
