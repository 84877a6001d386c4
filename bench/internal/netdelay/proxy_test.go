package netdelay_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/netdelay"
)

// A round trip of a small message through the proxy takes the requested round-trip time plus what loopback, the echo
// and the timers add, which stays well under a millisecond on an idle machine.
func TestRoundTripTakesTheRequestedTime(t *testing.T) {
	echo := startEcho(t)
	for _, rtt := range []time.Duration{500 * time.Microsecond, 2 * time.Millisecond, 10 * time.Millisecond} {
		t.Run(rtt.String(), func(t *testing.T) {
			p := startProxy(t, echo, rtt)
			require.Equal(t, rtt, p.RTT())
			c := dial(t, p)
			requireRoundTrips(t, c, rtt, 2) // half the delay each way
		})
	}
}

// Writes sent back to back travel together: a hundred of them come back after one round trip, not a hundred, and
// in the order they were sent.
func TestPipelinedWritesArriveTogetherAndInOrder(t *testing.T) {
	const rtt = 20 * time.Millisecond
	p := startProxy(t, startEcho(t), rtt)
	requireOneRoundTripBurst(t, dial(t, p), rtt, 100)
}

// A stream larger than the queue and the socket buffers comes through whole and in order.
func TestLargeStreamsArriveIntact(t *testing.T) {
	p := startProxy(t, startEcho(t), time.Millisecond)
	c := dial(t, p)
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	errs := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errs <- err
	}()
	back := make([]byte, len(data))
	_, err := io.ReadFull(c, back)
	require.NoError(t, err)
	require.NoError(t, <-errs)
	require.True(t, bytes.Equal(data, back), "the stream was altered")
}

// A client's half-close reaches the server after the delay, once what came before it has been delivered.
func TestHalfCloseIsForwardedAfterTheData(t *testing.T) {
	p := startProxy(t, startEcho(t), 2*time.Millisecond)
	c := dial(t, p)
	_, err := c.Write([]byte("last words"))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	back, err := io.ReadAll(c)
	require.NoError(t, err, "the echo server saw the end and closed, and so did the proxy")
	require.Equal(t, "last words", string(back))
}

// Close ends busy connections, returns within about one delay, and leaves no goroutine behind.
func TestCloseEndsConnectionsAndLeaksNoGoroutine(t *testing.T) {
	echo := startEcho(t)
	before := runtime.NumGoroutine()
	p, err := netdelay.Start(echo, 50*time.Millisecond)
	require.NoError(t, err)
	var clients []net.Conn
	for range 8 {
		c, err := net.Dial("tcp4", p.Addr())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(bytes.Repeat([]byte("in flight"), 1000))
		require.NoError(t, err)
		clients = append(clients, c)
	}
	time.Sleep(10 * time.Millisecond) // let the proxy accept and queue, so Close has work in flight to drop
	began := time.Now()
	require.NoError(t, p.Close())
	require.Less(t, time.Since(began), time.Second)
	require.NoError(t, p.Close(), "Close again does nothing")
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := io.Copy(io.Discard, c)
			if errors.Is(err, syscall.ECONNRESET) {
				// Also closed: a socket closed with unread input (the data in flight) sends a reset, not an end.
				err = nil
			}
			require.NoError(t, err, "the proxy closed the connection instead of leaving it hanging")
		})
	}
	wg.Wait()
	require.LessOrEqual(t, settledGoroutines(before), before)
	_, err = net.DialTimeout("tcp4", p.Addr(), time.Second)
	require.Error(t, err, "the proxy no longer listens")
}

func TestStartAcceptsOnlyLoopbackTargets(t *testing.T) {
	for _, target := range []string{"10.1.2.3:5432", "localhost:5432", "example.com:5432", "127.0.0.1"} {
		t.Run(target, func(t *testing.T) {
			_, err := netdelay.Start(target, time.Millisecond)
			require.ErrorIs(t, err, netdelay.ErrNotLoopback)
		})
	}
	p, err := netdelay.Start("[::1]:5432", time.Millisecond)
	require.NoError(t, err)
	require.NoError(t, p.Close())
	_, err = netdelay.Start("127.0.0.1:5432", -time.Millisecond)
	require.Error(t, err)
}
