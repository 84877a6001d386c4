package netdelay_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/netdelay"
)

// startEcho runs a loopback server that writes back whatever it reads, closed at cleanup with its connections.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// startProxy starts a proxy with the given round-trip time in front of target, closed at cleanup.
func startProxy(t *testing.T, target string, rtt time.Duration) *netdelay.Proxy {
	t.Helper()
	p, err := netdelay.Start(target, rtt)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// dial connects to the proxy, closed at cleanup.
func dial(t *testing.T, p *netdelay.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp4", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and reads as many bytes back, returning how long that took.
func roundTrip(t *testing.T, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	began := time.Now()
	_, err := c.Write(msg)
	require.NoError(t, err)
	back := make([]byte, len(msg))
	_, err = io.ReadFull(c, back)
	require.NoError(t, err)
	require.Equal(t, msg, back)
	return time.Since(began)
}

// earlyAim is the most by which netdelay aims a wait early, to make up for the timer's lateness (maxLateness).
const earlyAim = 100 * time.Microsecond

// requireRoundTrips times 40 round trips of a small message on c, whose delay is made of that many timed waits: none may
// be shorter than rtt less what the waits may aim early, and the median must stay under one and a half rtt plus 4ms.
// The upper bound is loose on purpose: the test binary shares the CPUs with other packages' tests, whose load delays
// every wake-up; what it must catch is a round trip charged twice (at an rtt of 10ms, 20ms against a bound of 19ms),
// not a busy machine.
func requireRoundTrips(t *testing.T, c net.Conn, rtt time.Duration, waits int) {
	t.Helper()
	var took []time.Duration
	for range 40 {
		took = append(took, roundTrip(t, c, []byte("ping")))
	}
	slices.Sort(took)
	median := took[len(took)/2]
	t.Logf("rtt %v: min %v, median %v, max %v", rtt, took[0], median, took[len(took)-1])
	require.GreaterOrEqual(t, took[0], rtt-time.Duration(waits)*earlyAim, "a round trip was faster than the delay")
	require.Less(t, median, rtt*3/2+4*time.Millisecond)
}

// requireOneRoundTripBurst writes n small messages back to back on c, then reads them all back: they must come in
// order, after at least rtt and well before they would if each had been delayed after the one before (n round
// trips; the bound is a quarter of that, loose for a loaded machine).
func requireOneRoundTripBurst(t *testing.T, c net.Conn, rtt time.Duration, n int) {
	t.Helper()
	var sent bytes.Buffer
	began := time.Now()
	for i := range n {
		msg := []byte{byte(i), byte(i >> 8), 'x'}
		sent.Write(msg)
		_, err := c.Write(msg)
		require.NoError(t, err)
	}
	back := make([]byte, sent.Len())
	_, err := io.ReadFull(c, back)
	require.NoError(t, err)
	took := time.Since(began)
	require.Equal(t, sent.Bytes(), back)
	require.GreaterOrEqual(t, took, rtt-earlyAim)
	require.Less(t, took, time.Duration(n)*rtt/4, "the writes were delayed one after another")
}

// settledGoroutines waits up to 5s for the number of goroutines to fall to at most n and returns the last count.
func settledGoroutines(n int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := runtime.NumGoroutine()
		if got <= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}
