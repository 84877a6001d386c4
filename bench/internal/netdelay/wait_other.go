//go:build !linux

package netdelay

import "time"

// waiter sleeps until a given time with Go's timers, which round sub-millisecond sleeps up to about a millisecond.
type waiter struct{}

func newWaiter() *waiter { return &waiter{} }

func (*waiter) waitUntil(due time.Time) { time.Sleep(time.Until(due)) }

func (*waiter) close() {}
