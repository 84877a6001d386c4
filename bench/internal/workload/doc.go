// Package workload defines the transactions the benchmark runs, each written twice: once as a pgxact tx.Tx and once
// as plain pgx code for the implementations that take a closure, so every implementation does the same work with the
// same SQL.
//
// # Cells and slices
//
// The harness runs a workload in short slices. Before each slice it calls Reset, which puts the tables back in their
// starting state; after it, Check verifies the workload's invariant against the number of transactions the harness
// saw commit in that slice. A violation is reported with an error wrapping ErrInvariant, as is a transaction that
// read a value it should not have.
//
// # The workloads
//
//   - single: one UPDATE of a random row of a 100,000-row table.
//   - reads: k independent point reads; every value read is checked.
//   - chain: k dependent statements following pointers, the last one an UPDATE; the row reached is checked.
//   - transfer: a Jepsen-style bank; read two balances, move an amount if funds suffice, writing absolute values.
//     The total is conserved only if the transactions are serializable.
//   - readheavy (not run by default): 90% read-only transactions of k point reads, 10% writes, in per-worker flows
//     (Flowing) whose reads must see the worker's own earlier writes, checked on every read.
//   - tpcb (not run by default): pgbench's TPC-B-like transaction on the tables of pgbench -i, at READ COMMITTED as
//     pgbench runs it; the history's deltas must add up to the change of every balance.
//
// Every workload runs at SERIALIZABLE but those that are Isolated (tpcb).
package workload
