package pgtest

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
)

// shared is the per-binary cluster. A mutex rather than sync.Once lets Main stop it without starting one,
// and lets a signal arriving mid-start wait for the start to finish before stopping.
var shared struct {
	mu      sync.Mutex
	cluster *Cluster
	err     error
	done    bool
}

// Shared returns the test binary's cluster, starting it on first call; later calls return the same
// cluster or the same error. [Main] stops it; without Main it lives until the process exits, when its
// watchdog removes it.
func Shared() (*Cluster, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.done {
		shared.cluster, shared.err = Start(context.Background())
		shared.done = true
	}
	return shared.cluster, shared.err
}

// stopShared stops the shared cluster if one was started; afterwards Shared reports ErrStopped.
func stopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		_ = shared.cluster.Stop()
	}
	shared.cluster, shared.err, shared.done = nil, ErrStopped, true
}

// Main runs the tests of a test binary and then stops and removes the shared cluster (and the pgbouncer in
// front of it with PGXACT_TEST_POOLER=pgbouncer), if any test started one. SIGINT and SIGTERM also stop
// them before the process exits. Use it as:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig, ok := <-signals
		if !ok {
			return
		}
		stopPooler()
		stopShared()
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
	code := m.Run()
	signal.Stop(signals)
	close(signals)
	stopPooler()
	stopShared()
	os.Exit(code)
}
