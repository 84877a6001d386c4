// Package pgtest gives tests, examples and tools a real, throwaway PostgreSQL server.
//
// # Model
//
// A test binary shares one [Cluster]: a PostgreSQL server started lazily on first use and stopped (its data
// directory removed) when the binary finishes. Every [ConnString], [Config] or [Pool] call creates a new, empty
// database private to the calling test and drops it in the test's cleanup, so tests can run in parallel
// without seeing each other's tables.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		pool := pgtest.Pool(t) // new database, closed and dropped at cleanup
//		...
//	}
//
// Programs that are not tests (benchmark CLIs, demos) call [Start] and [Cluster.Stop] themselves.
//
// # Where the server comes from
//
// If DATABASE_URL is set, that server is used and databases are created on it; its host must be loopback
// (127.0.0.0/8, ::1, localhost or a unix socket directory), anything else is refused with an error for which
// errors.Is(err, ErrNotLoopback) is true. Otherwise pgtest runs initdb and pg_ctl (found on PATH, through
// pg_config --bindir, or in /usr/lib/postgresql/*/bin) in a fresh temporary directory, listening only on
// 127.0.0.1 at a free port, with durability switched off for speed. When the process runs as root the server
// runs as the unprivileged "postgres" OS user, because PostgreSQL refuses to run as root.
//
// When no PostgreSQL can be had, ConnString, Config and Pool fail the test (they never skip) with a message
// saying how to install it: apt-get install -y postgresql.
//
// # Cleanup
//
// [Main] stops the shared cluster after the tests and on SIGINT or SIGTERM. In addition, an embedded cluster
// is watched by a small helper process that stops it and removes its directory when the owning process dies
// any other way (a test timeout panic, os.Exit, SIGKILL).
//
// # Scale-out
//
// [Cluster.StartReplica] starts a streaming hot standby of an embedded cluster, and [Cluster.StartPgbouncer]
// puts pgbouncer in transaction pooling mode in front of a cluster.
//
// # Failover
//
// [Cluster.Crash], [Cluster.Restart] and [Cluster.Promote] stop a server as a power cut would, bring it back, and
// promote a standby, for tests that arrange a failover by hand. [StartHA] runs a real HA cluster instead:
// pg_auto_failover (a monitor, a primary and a standby, from the distribution's packages) on loopback, with a
// multi-host connection string that follows the primary, planned switchovers, primary crashes and a frozen,
// unreachable primary ([HA.FreezePrimary]). Everything it starts is bounded in time and killed by [HA.Stop] or, if
// the test binary dies, by its watchdog. If pg_auto_failover is missing, StartHA fails with [ErrNoAutoFailover].
//
// # Through pgbouncer
//
// With PGXACT_TEST_POOLER=pgbouncer, ConnString, Config and Pool return connection strings that go through one
// pgbouncer in transaction pooling mode, started on first use in front of the shared embedded cluster and
// stopped with it by [Main]. Databases are still created and dropped directly on the cluster. The strings
// carry default_query_exec_mode=exec: pgbouncer before 1.21 cannot carry pgx's default cached prepared
// statements, and exec keeps the default's one round trip per statement, with nothing left on the server
// connection. pgx.ParseConfig and pgxpool.ParseConfig understand that setting; pgconn.Connect would send it
// to pgbouncer, which refuses it. [Pooled] reports the mode. If pgbouncer is missing (apt-get install -y
// pgbouncer), or DATABASE_URL is set, the tests fail; they never skip. Any other value of the variable fails
// them too.
package pgtest
