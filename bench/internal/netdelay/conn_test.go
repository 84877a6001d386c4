package netdelay_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/netdelay"
)

// dialDelayed connects to addr through netdelay.Dialer with the given round-trip time, closed at cleanup.
func dialDelayed(t *testing.T, addr string, rtt time.Duration) net.Conn {
	t.Helper()
	dial, err := netdelay.Dialer(rtt, (&net.Dialer{}).DialContext)
	require.NoError(t, err)
	c, err := dial(context.Background(), "tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A request answered at once takes the round-trip time, never less, and not much more on an idle machine.
func TestDelayedConnRoundTripTakesTheRequestedTime(t *testing.T) {
	echo := startEcho(t)
	for _, rtt := range []time.Duration{500 * time.Microsecond, 2 * time.Millisecond, 10 * time.Millisecond} {
		t.Run(rtt.String(), func(t *testing.T) {
			c := dialDelayed(t, echo, rtt)
			requireRoundTrips(t, c, rtt, 1)
		})
	}
}

// Writes sent back to back without reading cost one round trip together, as a pipeline does on a link, and
// arrive in order; a write after a read waits a whole round trip again.
func TestDelayedConnPipelinedWritesCostOneRoundTrip(t *testing.T) {
	const rtt = 20 * time.Millisecond
	c := dialDelayed(t, startEcho(t), rtt)
	for range 2 { // the second burst follows a read: it must pay its own round trip, not ride on the first's
		requireOneRoundTripBurst(t, c, rtt, 50)
	}
}

// The dialer reaches loopback only, and a negative round trip is refused up front.
func TestDialerRefusesWhatIsNotLoopback(t *testing.T) {
	_, err := netdelay.Dialer(-time.Millisecond, (&net.Dialer{}).DialContext)
	require.Error(t, err)
	dial, err := netdelay.Dialer(time.Millisecond, func(context.Context, string, string) (net.Conn, error) {
		t.Fatal("dialed an address that is not loopback")
		return nil, nil
	})
	require.NoError(t, err)
	for _, addr := range []string{"192.0.2.1:5432", "localhost:5432", "example.com:80", "nonsense"} {
		_, err := dial(context.Background(), "tcp", addr)
		require.ErrorIs(t, err, netdelay.ErrNotLoopback, addr)
	}
}

// Close while a write waits ends both: the write fails instead of reaching the server, and nothing is left behind.
func TestDelayedConnCloseDuringAWrite(t *testing.T) {
	before := settledGoroutines(1 << 30)
	const rtt = 200 * time.Millisecond
	c := dialDelayed(t, startEcho(t), rtt)
	done := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("late"))
		done <- err
	}()
	time.Sleep(rtt / 4)
	require.NoError(t, c.Close())
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(5 * rtt):
		t.Fatal("the write did not end after Close")
	}
	_, err := c.Write([]byte("after"))
	require.Error(t, err)
	require.LessOrEqual(t, settledGoroutines(before+2), before+2) // the echo server's accept loop and connection
}
