// Command txbench measures PostgreSQL transaction runners under contention: pgxact's tx.Run against hand-written pgx,
// a naive retry loop, cockroach-go's crdbpgx and avito-tech's trm, on four workloads (single, reads, chain,
// transfer) and a sweep of concurrent workers, checking each workload's invariant as it goes.
//
// It runs against DATABASE_URL if set (a loopback server; a new database is created and dropped), else it starts a
// throwaway PostgreSQL of its own with package pgtest. The workload readheavy (not run by default) is meant for the
// implementations pgxact-replica and pgxact-replica-notoken, which route reads to a streaming hot standby: when they
// are selected txbench starts one with pgtest's Cluster.StartReplica, which it can only do for its own server, not
// for DATABASE_URL's. The workload tpcb (not run by default either) is pgbench's TPC-B-like transaction on the
// tables the real pgbench -i makes, which every implementation runs at READ COMMITTED, as pgbench does; -pgbench also
// runs the pgbench program itself on it, with its builtin script and with the transaction in one pipeline, next to
// the Go implementations. -rtt adds a round-trip time to every connection, the pools' and pgbench's alike, so that
// round trips cost what they would over a network: by default each write of the pools' connections waits it out
// (pgbench goes through a delaying proxy on loopback), with -rtt-via proxy every connection goes through the proxy.
// Run with -h for the flags; -quick is the short run CI and the README use, -json writes one JSON object per
// (workload, impl, workers), and -out DIR writes a markdown report with SVG plots.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
