// Package impl holds the transaction-running implementations the benchmark compares: pgxact's tx.Run and the usual
// alternatives on pgx (plain pgx.BeginTxFunc, the same in a naive retry loop, cockroach-go's crdbpgx.ExecuteTx and
// avito-tech's go-transaction-manager), plus some that are not run by default: "pgxact-unbudgeted" (the default
// policy without its retry budget), "pgxact-ungated" (the default policy as it was before retry.Gate),
// "pgxact-fused" (the default policy with tx.FuseCommit) and "unsafe-rc", a deliberately unsafe one that shows the
// transfer invariant can fail.
//
// Two more, "pgxact-replica" and "pgxact-replica-notoken", run tx.Run through a replica.Router over the primary and
// one streaming standby (Impl.OnReplica gives them the standby): the first with a replica.Session per worker, so
// reads see the worker's own writes; the second through the bare Router, whose reads may be stale.
//
// For a workload.Flowing workload the pgxact implementations run each worker's own Flow, with the options each step
// asks for (read-only steps at REPEATABLE READ, which a Router may send to the standby).
//
// Every implementation runs the same workload transaction (pgxact the workload's tx.Tx form, the others its pgx Body
// form) at the workload's isolation level (workload.IsolationOf: SERIALIZABLE, but READ COMMITTED for tpcb, as pgbench
// runs it), except "unsafe-rc", always at READ COMMITTED, and reports how many attempts it made.
package impl
