package netdelay

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrNotLoopback is returned by Start when the target is not a loopback IP address and port.
var ErrNotLoopback = errors.New("netdelay: target is not a loopback address")

// dialTimeout bounds connecting to the target, and so how long Close can wait for a pending dial.
const dialTimeout = 5 * time.Second

// Proxy forwards connections accepted on a loopback port to a target, delaying each direction by half its round-trip
// time. Create one with Start; the zero value is not usable. Its methods are safe for concurrent use; after Close it
// cannot be restarted.
type Proxy struct {
	target string
	delay  time.Duration // one way
	ln     *net.TCPListener
	wg     sync.WaitGroup // the accept loop and the connections' goroutines

	mu     sync.Mutex
	closed bool
	conns  map[*net.TCPConn]struct{} // both sides of every live connection

	closeOnce sync.Once
	closeErr  error
}

// Start listens on 127.0.0.1 on a free port and forwards each accepted connection to target, a "host:port" whose host
// must be a loopback IP literal such as 127.0.0.1 or ::1, delaying each direction by rtt/2. It returns an error for
// which errors.Is(err, ErrNotLoopback) is true for any other target, names included: a name could resolve anywhere.
func Start(target string, rtt time.Duration) (*Proxy, error) {
	if err := checkLoopback(target); err != nil {
		return nil, err
	}
	if err := checkRTT(rtt); err != nil {
		return nil, err
	}
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("netdelay: listen: %w", err)
	}
	p := &Proxy{target: target, delay: rtt / 2, ln: ln, conns: map[*net.TCPConn]struct{}{}}
	p.wg.Go(p.serve)
	return p, nil
}

func checkLoopback(target string) error {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrNotLoopback, target, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, target)
	}
	return nil
}

// Addr returns the address clients connect to, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// RTT returns the round-trip time the proxy adds: twice the one-way delay.
func (p *Proxy) RTT() time.Duration { return 2 * p.delay }

// Close stops listening, closes every proxied connection, dropping what was still queued, and waits until all of the
// proxy's goroutines have returned, which takes at most about one delay. Calling it again does nothing and returns
// the first call's result.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		conns := p.conns
		p.conns = nil
		p.mu.Unlock()
		p.closeErr = p.ln.Close()
		for c := range conns {
			_ = c.Close()
		}
		p.wg.Wait()
	})
	return p.closeErr
}

// serve accepts connections until the listener is closed.
func (p *Proxy) serve() {
	for {
		client, err := p.ln.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors and similar: back off instead of spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.wg.Go(func() { p.handle(client) })
	}
}

// handle connects client to the target and relays both directions until both have ended.
func (p *Proxy) handle(client *net.TCPConn) {
	defer client.Close()
	conn, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		return
	}
	server := conn.(*net.TCPConn)
	defer server.Close()
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)
	var wg sync.WaitGroup
	wg.Go(func() { p.relay(server, client) })
	p.relay(client, server)
	wg.Wait()
}

// track registers the sides of a connection so that Close can close them; it reports false once the proxy is
// closed.
func (p *Proxy) track(conns ...*net.TCPConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(conns ...*net.TCPConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
	}
}
