package jepsen_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/jepsen"
)

func blockOn(c chan struct{}) { <-c }

func TestLeakedFindsGoroutinesThatOutliveTheWait(t *testing.T) {
	before := jepsen.SnapshotGoroutines()
	stop := make(chan struct{})
	go blockOn(stop)

	leaked := before.Leaked(50 * time.Millisecond)
	close(stop)

	require.Len(t, leaked, 1)
	require.Contains(t, leaked[0], "blockOn")
}

func TestLeakedWaitsForGoroutinesThatFinish(t *testing.T) {
	before := jepsen.SnapshotGoroutines()
	stop := make(chan struct{})
	go blockOn(stop)
	time.AfterFunc(20*time.Millisecond, func() { close(stop) })

	require.Empty(t, before.Leaked(5*time.Second))
}

func TestLeakedIgnoresGoroutinesFromBefore(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go blockOn(stop)
	time.Sleep(time.Millisecond) // let it start, so the snapshot sees it
	before := jepsen.SnapshotGoroutines()

	require.Empty(t, before.Leaked(0))
}

func TestLeakedIgnoresTestGoroutines(t *testing.T) {
	before := jepsen.SnapshotGoroutines()
	t.Run("a subtest runs in a goroutine of its own", func(t *testing.T) {
		leaked := before.Leaked(0)
		for _, l := range leaked {
			require.False(t, strings.Contains(l, "testing.tRunner"), "%s", l)
		}
		require.Empty(t, leaked)
	})
}
