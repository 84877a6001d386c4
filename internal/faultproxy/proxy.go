package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotLoopback is returned by [Start] when the target is not a loopback IP address and port.
var ErrNotLoopback = errors.New("faultproxy: target is not a loopback address")

// dialTimeout bounds connecting to the target, and so how long [Proxy.Close] can wait for a pending dial.
const dialTimeout = 5 * time.Second

// Proxy forwards connections accepted on a loopback port to a PostgreSQL server, applying a [Rule] to the
// client's frontend messages. Create one with [Start]; the zero value is not usable. All methods are safe for
// concurrent use. After [Proxy.Close] the proxy cannot be restarted.
type Proxy struct {
	target string
	ln     *net.TCPListener
	rule   atomic.Pointer[Rule]
	stats  counters
	wg     sync.WaitGroup // accept loop and connection handlers

	mu     sync.Mutex
	closed bool
	links  map[*link]struct{}

	closeOnce sync.Once
	closeErr  error
}

// Start listens on 127.0.0.1 on a free port and forwards each accepted connection to target, a "host:port"
// whose host must be a loopback IP literal such as 127.0.0.1 or ::1. It returns an error for which
// errors.Is(err, ErrNotLoopback) is true for any other target. The initial rule forwards everything.
func Start(target string) (*Proxy, error) {
	if err := checkLoopback(target); err != nil {
		return nil, err
	}
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, links: make(map[*link]struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// checkLoopback refuses names as well as remote addresses: a name could resolve anywhere.
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

// Port returns the port clients connect to.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Route points cfg at the proxy, without TLS, which the proxy does not speak, and without fallbacks: for the default
// sslmode=prefer pgx adds one per host that keeps the server's own port, and when the proxy refuses TLS pgx would
// take it and reach the server around the proxy, so that no fault is ever injected.
func (p *Proxy) Route(cfg *pgconn.Config) {
	cfg.Host, cfg.Port = "127.0.0.1", uint16(p.Port())
	cfg.Fallbacks, cfg.TLSConfig = nil, nil
}

// SetRule replaces the rule for messages read from now on, on every connection. A nil rule forwards everything.
func (p *Proxy) SetRule(r Rule) {
	if r == nil {
		p.rule.Store(nil)
		return
	}
	p.rule.Store(&r)
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats { return p.stats.snapshot() }

// Close stops listening, closes every proxied connection and waits until all of the proxy's goroutines have
// returned. Calling it again does nothing and returns the first call's result.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		links := p.links
		p.links = nil
		p.mu.Unlock()

		p.closeErr = p.ln.Close()
		for l := range links {
			l.abort()
		}
		p.wg.Wait()
	})
	return p.closeErr
}

// serve accepts connections until the listener is closed.
func (p *Proxy) serve() {
	defer p.wg.Done()
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
		id := p.stats.conns.Add(1)
		p.wg.Add(1)
		go p.handle(id, client)
	}
}

// handle connects client to the target and relays both directions until either ends or is cut.
func (p *Proxy) handle(id uint64, client *net.TCPConn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		_ = client.Close()
		return
	}
	l := newLink(id, client, server.(*net.TCPConn), p)
	if !p.track(l) {
		l.abort()
		return
	}
	defer p.untrack(l)
	l.run()
}

// track registers l so Close can abort it; it reports false if the proxy is already closed.
func (p *Proxy) track(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.links[l] = struct{}{}
	return true
}

func (p *Proxy) untrack(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.links, l)
}

// decide asks the current rule about m.
func (p *Proxy) decide(m Message) Action {
	p.stats.messages.Add(1)
	r := p.rule.Load()
	if r == nil {
		return Forward
	}
	return (*r)(m)
}
