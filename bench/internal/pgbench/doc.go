// Package pgbench runs PostgreSQL's own benchmark program, pgbench, on the benchmark's database: to create the
// tables of its TPC-B-like transaction (pgbench -i) and to measure that transaction as pgbench runs it, with its
// builtin script or with the five statements in one pipeline, so that the Go implementations can be compared with it
// on the same server in the same run.
//
// # Where pgbench comes from
//
// For is given a pool on the database and looks for the pgbench of the server's major version in the Debian layout
// (/usr/lib/postgresql/<major>/bin), then on PATH, then the highest version in /usr/lib/postgresql/*/bin. It
// connects with the pool's host, port, user, password and database, as a libpq connection string.
//
// # Isolation
//
// pgbench runs at the server's default isolation level; Run sets default_transaction_isolation to READ COMMITTED,
// PostgreSQL's default, through PGOPTIONS, so that a server configured otherwise still measures the usual pgbench.
package pgbench
