// Package netdelay is a TCP proxy on loopback that delays the bytes crossing it, so that a benchmark on one machine
// pays the round trips a network would charge.
//
// # The model
//
// A Proxy listens on 127.0.0.1 and forwards every connection to one loopback target. Each direction of each
// connection delays what it carries by half the round-trip time asked for: bytes read at time t are written at
// t + rtt/2, in the order they were read. Reading never waits for writing (up to a bounded queue, after which TCP
// flow control pushes back), so bytes a client sends together arrive together, and a pipeline of statements costs one
// round trip, not one per statement, as on a real link. Bandwidth is not limited.
//
// # Precision
//
// On Linux the delays are kept with a timerfd per direction, woken through Go's network poller, which keeps them
// within some tens of microseconds of the target while idle; Go's own timers round sub-millisecond sleeps up to about
// a millisecond. The proxy shares the CPUs with whatever it measures, so under load its delays grow the way every
// other process's latency does. Elsewhere it falls back on Go's timers.
package netdelay
