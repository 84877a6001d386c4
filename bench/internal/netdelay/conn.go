package netdelay

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a client's connection whose writes reach the server a whole round-trip time late, and whose reads are
// not delayed: for a client that waits for each answer, the same time per round trip as a link delaying each
// direction by half of it, with no relay in between. It is the client-side alternative to a Proxy: no second socket,
// no copy and no relaying goroutines, only one timer per write, so that it takes from the shared CPUs about what a
// real network takes from a client (nothing for the delay itself).
//
// Writes sent back to back without a read between them (a pipeline flushed in parts) are not delayed again one after
// the other: a write goes out as late after the one before it as the writer came back to write it, so a burst costs
// one round trip, as on a link. Make one with Delay or Dialer; the zero value is not usable. Its methods are safe for
// concurrent use, as net.Conn's are: writes are serialised, and Close waits for a write still in its delay (at most
// one round trip), which then fails on the closed socket.
type Conn struct {
	net.Conn
	rtt time.Duration

	mu     sync.Mutex // holds the waiter, which belongs to one goroutine at a time
	w      *waiter
	closed bool

	// behind is how long (ns) the writer has been held back, in all, since the last read that returned data: the
	// time by which its clock runs late of the link's. A later write subtracts it from its delay, because on a link
	// it would have been sent that much earlier and would be in flight already.
	behind atomic.Int64
}

// Delay returns c with every write delayed by rtt as described at Conn. rtt must not be negative.
func Delay(c net.Conn, rtt time.Duration) (*Conn, error) {
	if err := checkRTT(rtt); err != nil {
		return nil, err
	}
	return newConn(c, rtt), nil
}

func newConn(c net.Conn, rtt time.Duration) *Conn { return &Conn{Conn: c, rtt: rtt, w: newWaiter()} }

// Write waits out the rest of the round trip, then writes b.
func (c *Conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if wait := c.rtt - time.Duration(c.behind.Load()); wait > 0 && !c.closed {
		began := time.Now()
		c.w.waitUntil(began.Add(wait))
		c.behind.Add(int64(time.Since(began)))
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// Read reads without delay: the answer to a write was sent by the server after the write arrived, which is as late
// as the round trip makes it. Data read brings the writer's clock back in step with the link's.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.behind.Store(0)
	}
	return n, err
}

// Close closes the connection and the timer, after a write still waiting has ended its wait.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.w.close() // a Write after Close does not wait, and fails on the closed socket
	}
	return err
}

// DialFunc has the shape of pgconn.DialFunc (and of net.Dialer.DialContext).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer returns a DialFunc that dials with dial and wraps what it returns in a Conn adding rtt. It refuses any TCP
// address that is not a loopback IP literal (errors.Is(err, ErrNotLoopback)): the delay is a benchmark's stand-in
// for a network, never a way to reach one.
func Dialer(rtt time.Duration, dial DialFunc) (DialFunc, error) {
	if err := checkRTT(rtt); err != nil {
		return nil, err
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network != "unix" {
			if err := checkLoopback(addr); err != nil {
				return nil, err
			}
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newConn(c, rtt), nil // rtt was checked above: nothing can fail here and leave c open
	}, nil
}

// checkRTT refuses a negative round-trip time.
func checkRTT(rtt time.Duration) error {
	if rtt < 0 {
		return fmt.Errorf("netdelay: negative round-trip time %v", rtt)
	}
	return nil
}
