// Package jepsen tests pgxact's runner the way Jepsen and Elle test databases: many concurrent clients run
// transactions through tx.Run while faults strike, every outcome is recorded, and checkers decide afterwards
// whether the history could have come from a correct system.
//
// # Workloads
//
// Bank (after Jepsen's bank test) moves money between accounts with a fixed total, records each transfer under a
// unique id in a ledger table in the same transaction, and reads all balances. CheckBank requires every read to sum
// to the total with no negative balance, every acknowledged transfer in the ledger exactly once, no transfer that
// failed definitely, and final balances that agree with the ledger. Ambiguous outcomes (tx.ErrCommitUnknown) may go
// either way; they are counted and settled against the ledger.
//
// List-append (after Elle) appends unique values to keyed lists and reads lists back. CheckList takes the per-key
// version order from the longest read, requires every read to be a prefix of it, builds the ww, wr and rw
// dependency graph over committed transactions and reports its cycles as G0, G1c or G2-item.
//
// # Faults
//
// Terminator ends random backends of the test database with pg_terminate_backend; Cutter is a faultproxy rule that
// resets connections at random messages, COMMIT included; the tests add context deadlines, lock_timeout and
// statement_timeout, and more workers than pool connections. Every fault source is bounded in count and time.
//
// # Leaks
//
// SnapshotGoroutines and Leaked find goroutines started during a test that never finished, without a dependency
// on goleak.
//
// The package is internal: it exists for the tests in this directory and for the figures in docs/reliability.md.
package jepsen
