package faultproxy

import (
	"net"
	"sync/atomic"
	"time"
)

const (
	// readSize is how much is read from a socket at a time.
	readSize = 32 << 10
	// drainTimeout bounds how long a cut connection keeps reading the server while waiting for it to close
	// its side, and how long the final forward to a stalled server may block.
	drainTimeout = 5 * time.Second
	// strandTimeout bounds how long a stranded server connection is held open.
	strandTimeout = 10 * time.Second
)

// link is one proxied connection: a client socket, the server socket dialled for it, and the state of the
// client->server parser. It is used by exactly two goroutines, one per direction.
type link struct {
	id     uint64
	client *net.TCPConn
	server *net.TCPConn
	proxy  *Proxy

	// cutting is set before a cut forwards anything, and toClient checks it after every read from the server,
	// so a reply to the cut message is always read after the flag is set and is dropped.
	cutting atomic.Bool

	// stmts maps prepared statement names to their SQL; only the client->server goroutine touches it.
	stmts map[string]string
}

func newLink(id uint64, client, server *net.TCPConn, p *Proxy) *link {
	return &link{id: id, client: client, server: server, proxy: p, stmts: make(map[string]string)}
}

// run relays both directions and returns when both have finished.
func (l *link) run() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.toClient()
	}()
	l.toServer()
	if !l.cutting.Load() {
		l.abort()
	}
	<-done
}

// toClient copies the server's bytes to the client. During a cut it discards them instead, until the server
// closes its side or the drain deadline passes; reading them keeps the kernel from answering our close with
// a reset that could race the last forwarded message.
func (l *link) toClient() {
	defer func() { _ = l.server.Close() }()
	buf := make([]byte, readSize)
	for {
		n, err := l.server.Read(buf)
		if n > 0 && !l.cutting.Load() {
			if _, werr := l.client.Write(buf[:n]); werr != nil && !l.cutting.Load() {
				l.abort()
				return
			}
		}
		if err != nil {
			if !l.cutting.Load() {
				l.abort()
			}
			return
		}
	}
}

// toServer forwards the startup phase, then the client's messages under the proxy's rule.
func (l *link) toServer() {
	if rest, ok := l.startup(); ok {
		l.relay(rest)
	}
}

// cut forwards flush to the server, resets the client and half-closes the server side, so the server reads
// everything forwarded and then a clean end of stream, as if the client had vanished.
func (l *link) cut(flush []byte) {
	l.sever(flush)
	_ = l.server.CloseWrite()
	_ = l.server.SetReadDeadline(time.Now().Add(drainTimeout))
}

// strand forwards flush, resets the client and keeps the server socket open without writing to it, reading (and
// dropping) whatever the server sends until strandTimeout or the proxy's Close.
func (l *link) strand(flush []byte) {
	l.sever(flush)
	_ = l.server.SetReadDeadline(time.Now().Add(strandTimeout))
}

// sever counts a cut, forwards flush and resets the client; what becomes of the server side is the caller's choice.
func (l *link) sever(flush []byte) {
	l.proxy.stats.cuts.Add(1)
	l.cutting.Store(true)
	if len(flush) > 0 {
		_ = l.server.SetWriteDeadline(time.Now().Add(drainTimeout))
		_ = l.writeServer(flush)
	}
	_ = l.client.SetLinger(0) // close with RST: the client gets an error at once, whatever it is doing
	_ = l.client.Close()
}

// abort closes both sockets; both goroutines then fail their next read or write and return.
func (l *link) abort() {
	_ = l.client.Close()
	_ = l.server.Close()
}

// writeServer forwards client bytes and counts the write.
func (l *link) writeServer(b []byte) error {
	if _, err := l.server.Write(b); err != nil {
		return err
	}
	l.proxy.stats.writes.Add(1)
	return nil
}

// readClient appends one read's worth of client bytes to buf, growing it when less than readSize is free.
// Bytes read come back with a nil error; the error surfaces on the next call.
func (l *link) readClient(buf []byte) ([]byte, error) {
	if cap(buf)-len(buf) < readSize {
		grown := make([]byte, len(buf), max(2*cap(buf), len(buf)+readSize))
		copy(grown, buf)
		buf = grown
	}
	n, err := l.client.Read(buf[len(buf):cap(buf)])
	if n > 0 {
		return buf[:len(buf)+n], nil
	}
	return buf, err
}

// readAtLeast reads from the client until buf holds at least n bytes.
func (l *link) readAtLeast(buf []byte, n int) ([]byte, error) {
	var err error
	for len(buf) < n && err == nil {
		buf, err = l.readClient(buf)
	}
	return buf, err
}

// raw forwards buf and then everything else the client sends, without looking at it.
func (l *link) raw(buf []byte) {
	for {
		if len(buf) > 0 && l.writeServer(buf) != nil {
			return
		}
		var err error
		if buf, err = l.readClient(buf[:0]); err != nil {
			return
		}
	}
}
