package retry_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
)

// waitFor is a call to Gate.Wait in a goroutine of its own; admitted is closed once it returns.
type waitFor struct {
	name     string
	admitted chan struct{}
	done     func()
	err      error
}

// enter calls g.Wait for the attempt in a new goroutine and, unless it is admitted at once, waits until it queues,
// so that tests control the order of arrival.
func enter(t *testing.T, g *retry.Gate, ctx context.Context, name string, attempt int) *waitFor {
	t.Helper()
	w := &waitFor{name: name, admitted: make(chan struct{})}
	before := g.Waiting()
	go func() {
		w.done, w.err = g.Wait(ctx, attempt)
		close(w.admitted)
	}()
	require.Eventually(t, func() bool {
		select {
		case <-w.admitted:
			return true
		default:
			return g.Waiting() > before
		}
	}, 2*time.Second, time.Millisecond, "%s neither admitted nor queued", name)
	return w
}

func (w *waitFor) isAdmitted() bool {
	select {
	case <-w.admitted:
		return true
	default:
		return false
	}
}

// requireAdmittedNext releases one slot and checks that exactly want is admitted by it.
func requireAdmittedNext(t *testing.T, release func(), want *waitFor, others ...*waitFor) {
	t.Helper()
	release()
	select {
	case <-want.admitted:
	case <-time.After(2 * time.Second):
		t.Fatalf("%s was not admitted", want.name)
	}
	require.NoError(t, want.err)
	for _, o := range others {
		require.False(t, o.isAdmitted(), "%s was admitted before %s", o.name, want.name)
	}
}

func TestGateLetsFirstAttemptsThroughWithoutContention(t *testing.T) {
	g := retry.NewGate(1)
	ctx := context.Background()
	holder, err := g.Wait(ctx, 2) // a retry takes the only slot
	require.NoError(t, err)
	for range 100 {
		done, err := g.Wait(ctx, 1)
		require.NoError(t, err, "a first attempt does not wait while no retry is waiting")
		done()
	}
	holder()
}

func TestGateQueuesEverythingBehindWaitingRetries(t *testing.T) {
	g := retry.NewGate(1)
	ctx := context.Background()
	holder, err := g.Wait(ctx, 2)
	require.NoError(t, err)

	retry2 := enter(t, g, ctx, "second attempt", 2)
	first := enter(t, g, ctx, "first attempt", 1)
	retry5 := enter(t, g, ctx, "fifth attempt", 5)
	retry2b := enter(t, g, ctx, "another second attempt", 2)
	require.Equal(t, 4, g.Waiting(), "with a retry queued, even first attempts queue")

	requireAdmittedNext(t, holder, retry5, retry2, first, retry2b)
	requireAdmittedNext(t, retry5.done, retry2, first, retry2b)
	requireAdmittedNext(t, retry2.done, retry2b, first)
	requireAdmittedNext(t, retry2b.done, first)
	first.done()
	require.Zero(t, g.Waiting())

	// The queue has drained: first attempts bypass the gate again, and a retry finds its slot free.
	done, err := g.Wait(ctx, 1)
	require.NoError(t, err)
	done()
	done, err = g.Wait(ctx, 3)
	require.NoError(t, err)
	done()
}

func TestGateBoundsTheAttemptsInside(t *testing.T) {
	const size, retries = 3, 40
	g := retry.NewGate(size)
	var mu sync.Mutex
	inside, most := 0, 0
	var wg sync.WaitGroup
	for i := range retries {
		wg.Go(func() {
			done, err := g.Wait(context.Background(), 2+i%3)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			done()
		})
	}
	wg.Wait()
	require.Equal(t, size, most, "retries ran %d at once", most)
	require.Zero(t, g.Waiting())
}

func TestGateWaitEndsWithItsContext(t *testing.T) {
	g := retry.NewGate(1)
	holder, err := g.Wait(context.Background(), 2)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	gone := enter(t, g, ctx, "cancelled retry", 3)
	next := enter(t, g, context.Background(), "next retry", 2)
	cancel()
	<-gone.admitted
	require.True(t, errors.Is(gone.err, context.Canceled))
	require.Equal(t, 1, g.Waiting(), "the cancelled retry left the queue")

	requireAdmittedNext(t, holder, next)
	next.done()

	done, err := g.Wait(context.Background(), 2)
	require.NoError(t, err, "no slot was lost to the cancelled wait")
	done()
}

func TestGateNilAndInvalid(t *testing.T) {
	var nilGate *retry.Gate
	for range 3 {
		done, err := nilGate.Wait(context.Background(), 2)
		require.NoError(t, err)
		done()
	}
	require.Zero(t, nilGate.Waiting())

	for _, size := range []int{0, -1} {
		p := retry.New(retry.On(retry.Serialization), retry.WithGate(retry.NewGate(size)))
		require.ErrorIs(t, p.Validate(), retry.ErrInvalidPolicy, "size %d", size)
	}
	p := retry.New(retry.On(retry.Serialization), retry.WithGate(retry.NewGate(2)))
	require.NoError(t, p.Validate())
	require.NotNil(t, p.Gate())
	require.Nil(t, retry.New(retry.On(retry.Serialization)).Gate(), "New has no Gate unless given one")
}

func TestGateMakesFirstAttemptsTakeSlotsWhileARetryStarves(t *testing.T) {
	g := retry.NewGate(2)
	ctx := context.Background()
	starving, err := g.Wait(ctx, retry.StarvingAfter+1)
	require.NoError(t, err)

	other, err := g.Wait(ctx, 1)
	require.NoError(t, err, "a first attempt takes the free slot")
	queued := enter(t, g, ctx, "first attempt behind the starving retry", 1)
	require.False(t, queued.isAdmitted(), "no slot is left, and a starving retry keeps first attempts from bypassing")

	requireAdmittedNext(t, starving, queued)
	other()
	queued.done()

	done, err := g.Wait(ctx, 1) // nothing starves, nothing waits: first attempts bypass again
	require.NoError(t, err)
	done()
	retried, err := g.Wait(ctx, retry.StarvingAfter) // not yet starving
	require.NoError(t, err)
	second, err := g.Wait(ctx, 2)
	require.NoError(t, err)
	for range 3 { // both slots are taken, by retries that do not starve: first attempts still pass at once
		done, err := g.Wait(ctx, 1)
		require.NoError(t, err, "an ordinary retry does not hold first attempts back")
		done()
	}
	retried()
	second()
	require.Zero(t, g.Waiting())
}

// TestGateLetsQueuedFirstAttemptsInWhenRetriesAreRare: after a history of first attempts with hardly any retries,
// first attempts queued behind a retry go in as soon as no retry is waiting, without a slot; after a history of
// many retries (TestGateQueuesEverythingBehindWaitingRetries) they wait for slots.
func TestGateLetsQueuedFirstAttemptsInWhenRetriesAreRare(t *testing.T) {
	g := retry.NewGate(1)
	ctx := context.Background()
	for range 200 {
		done, err := g.Wait(ctx, 1)
		require.NoError(t, err)
		done()
	}
	holder, err := g.Wait(ctx, 2)
	require.NoError(t, err)
	queuedRetry := enter(t, g, ctx, "queued retry", 2)
	queuedFirst := enter(t, g, ctx, "first attempt behind it", 1)
	require.Equal(t, 2, g.Waiting(), "with a retry waiting, first attempts queue")

	holder()
	for _, w := range []*waitFor{queuedRetry, queuedFirst} {
		select {
		case <-w.admitted:
			require.NoError(t, w.err)
		case <-time.After(2 * time.Second):
			t.Fatalf("%s was not admitted", w.name)
		}
	}
	require.Zero(t, g.Waiting())

	done, err := g.Wait(ctx, 1)
	require.NoError(t, err, "a first attempt passes while the retry holds the only slot")
	done()
	queuedFirst.done() // took no slot: gives nothing back
	next := enter(t, g, ctx, "next retry", 3)
	require.False(t, next.isAdmitted(), "the retry still holds the only slot")
	requireAdmittedNext(t, queuedRetry.done, next)
	next.done()
	bounded, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	done, err = g.Wait(bounded, 2)
	require.NoError(t, err, "no slot was lost or created by the first attempts let in")
	done()
}
