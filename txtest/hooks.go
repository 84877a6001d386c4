package txtest

import (
	"context"
	"sync"
	"testing"
)

// HookCounter counts how often named AfterCommit hooks run, so a test can require that a side effect happened
// exactly once even though the transaction body ran several times:
//
//	var hooks txtest.HookCounter
//	work := tx.Then(insertOrder, tx.AfterCommit(hooks.Hook("email")))
//	...
//	hooks.RequireOnce(t, "email")
//
// The zero HookCounter is ready to use. It is safe for concurrent use, and must not be copied after first use.
type HookCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// NewHookCounter returns an empty HookCounter; it is the same as a zero one.
func NewHookCounter() *HookCounter { return &HookCounter{} }

// Hook returns a function for tx.AfterCommit that counts a run under name.
func (h *HookCounter) Hook(name string) func(context.Context) {
	return func(context.Context) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.counts == nil {
			h.counts = make(map[string]int)
		}
		h.counts[name]++
	}
}

// Count returns how often the hooks named name have run.
func (h *HookCounter) Count(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[name]
}

// RequireCount fails t at once unless the hooks named name ran exactly n times.
func (h *HookCounter) RequireCount(t testing.TB, name string, n int) {
	t.Helper()
	if got := h.Count(name); got != n {
		t.Fatalf("txtest: AfterCommit hook %q ran %d times, want %d", name, got, n)
	}
}

// RequireOnce fails t at once unless the hooks named name ran exactly once.
func (h *HookCounter) RequireOnce(t testing.TB, name string) {
	t.Helper()
	h.RequireCount(t, name, 1)
}
