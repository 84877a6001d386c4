package netdelay

import (
	"net"
	"time"
)

const (
	// readSize is how much is read from a socket at a time.
	readSize = 32 << 10
	// queueLen bounds the chunks in flight in one direction; a full queue stops reading, and TCP flow control
	// then slows the sender, as a link's buffers would.
	queueLen = 256
)

// chunk is what one read returned, and when it is due at the other side.
type chunk struct {
	due  time.Time
	data []byte
}

// relay copies src to dst, each chunk delayed by p.delay after it was read. A reader stamps and queues, a writer
// waits for each chunk's time and writes it, so that reading goes on while earlier chunks wait. At src's end dst's
// write side is closed once the queue has drained; if dst fails, both sides are closed and the rest is dropped.
func (p *Proxy) relay(src, dst *net.TCPConn) {
	queue := make(chan chunk, queueLen)
	done := make(chan struct{})
	go func() {
		defer close(done)
		deliver(queue, src, dst)
	}()
	buf := make([]byte, readSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			queue <- chunk{due: time.Now().Add(p.delay), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			break
		}
	}
	close(queue)
	<-done
}

// deliver writes each queued chunk to dst at its due time.
func deliver(queue <-chan chunk, src, dst *net.TCPConn) {
	w := newWaiter()
	defer w.close()
	for c := range queue {
		w.waitUntil(c.due)
		if _, err := dst.Write(c.data); err != nil {
			_ = src.Close()
			_ = dst.Close()
			for range queue {
			}
			return
		}
	}
	_ = dst.CloseWrite()
}
