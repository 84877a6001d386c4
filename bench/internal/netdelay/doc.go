// Package netdelay makes a benchmark on one machine pay the round trips a network would charge, in one of two ways:
// a TCP proxy on loopback that delays the bytes crossing it (Proxy), for any client, or a client connection that
// holds back its own writes (Conn, through Dialer), for Go clients that can be given a dial function.
//
// # Why two
//
// Neither is a network. A Proxy relays every byte through a second socket and two goroutines on the CPUs the client
// and the server share, which a real link would not charge to the host (about 11 µs a chunk, measured at 16
// workers); a Conn costs one timer per write and nothing else, but only a Go program can use it. On a machine whose
// kernel has no netem, a Conn is the closer model of a network for Go clients, and a Proxy the only one for others
// (pgbench).
//
// # The proxy's model
//
// A Proxy listens on 127.0.0.1 and forwards every connection to one loopback target. Each direction of each
// connection delays what it carries by half the round-trip time asked for: bytes read at time t are written at
// t + rtt/2, in the order they were read. Reading never waits for writing (up to a bounded queue, after which TCP
// flow control pushes back), so bytes a client sends together arrive together, and a pipeline of statements costs one
// round trip, not one per statement, as on a real link. Bandwidth is not limited.
//
// # The connection's model
//
// A Conn delays each write by the whole round-trip time and reads at once. For a client that waits for each answer
// this is the same as half the delay each way: the request reaches the server a round trip late, the answer comes
// straight back, and the server sees the same idle time between a transaction's statements (so locks are held as
// long). Writes sent back to back without an answer between them are not charged one round trip each.
//
// # Precision
//
// On Linux the delays are kept with a timerfd per direction (per connection for a Conn), woken through Go's network
// poller, which keeps them within some tens of microseconds of the target while idle; Go's own timers round
// sub-millisecond sleeps up to about a millisecond. Both share the CPUs with whatever they measure, so under load
// their delays grow the way every other process's latency does. Elsewhere they fall back on Go's timers.
package netdelay
