// Package impl holds the transaction-running implementations the benchmark compares: pgxact's tx.Run and the usual
// alternatives on pgx (plain pgx.BeginTxFunc, the same in a naive retry loop, cockroach-go's crdbpgx.ExecuteTx and
// avito-tech's go-transaction-manager), plus two that are not run by default: "pgxact-unbudgeted" (the default
// policy without its retry budget) and "unsafe-rc", a deliberately unsafe one that shows the transfer invariant can
// fail.
//
// Every implementation runs the same workload transaction (pgxact the workload's tx.Tx form, the others its pgx Body
// form) at SERIALIZABLE, except "unsafe-rc", and reports how many attempts it made.
package impl
