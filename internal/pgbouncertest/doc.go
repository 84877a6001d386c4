// Package pgbouncertest checks that tx.Run keeps its promises through pgbouncer in transaction pooling mode: fused
// BEGIN and pipelined statements, savepoints, SetLocal, whole-transaction retries. It holds tests only.
//
// pgbouncer before 1.21 (and later ones without max_prepared_statements) cannot carry pgx's default
// QueryExecModeCacheStatement: a statement prepared on one server connection is unknown on the next. The tests run in
// the modes that work: QueryExecModeExec (recommended), QueryExecModeCacheDescribe and QueryExecModeSimpleProtocol.
package pgbouncertest
