// Package replica routes tx.Run's transactions between a PostgreSQL primary and its streaming hot standbys, with
// read-your-writes sessions whose tokens can travel in a cookie.
//
//	router, err := replica.New(primaryPool, []*pgxpool.Pool{replicaPool})
//	...
//	read := []tx.Option{tx.ReadOnly(), tx.WithIsolation(pgx.RepeatableRead)}
//	n, err := tx.Run(ctx, router, countOrders, read...)   // a replica, possibly a little behind
//
//	s := router.Session()                                   // or router.SessionFrom(cookie)
//	_, err = tx.Run(ctx, s, placeOrder)                     // the primary; s records where the commit ended
//	n, err = tx.Run(ctx, s, countOrders, read...)           // a replica that has replayed it, or the primary
//	cookie = s.Token()
//
// # Routing
//
// A Router is a tx.Acquirer: tx.Run asks it for a connection with the transaction's options and then owns BEGIN, as
// with a pool. Read-only transactions (tx.ReadOnly()) go to the replicas in turn; read-write ones go to the primary.
// PostgreSQL refuses SERIALIZABLE on a standby, so a read-only transaction left at tx.Run's default isolation runs
// REPEATABLE READ on a replica (SERIALIZABLE if the primary serves it); one that asks for SERIALIZABLE by name, or is
// DEFERRABLE, goes to the primary, which alone can keep that promise. A replica whose pool fails to lend a
// connection, or whose server fails the replay check, is left out for WithCooldown; with no replica left, reads go
// to the primary. Only a read with a position to wait for (a Session's, after a commit) looks at the replica's
// replay: one without asks nothing, so a replica pool whose server was promoted or detached keeps serving those
// reads, as it stands, until a read with a position finds that it is no standby. BeginTx always uses the primary:
// tx.Run settles ambiguous commits through it with pg_xact_status.
//
// # Read-your-writes
//
// A Router's reads may lag the primary by any amount. A Session is also a tx.CommitRecorder: tx.Run tells it the
// primary's pg_current_wal_insert_lsn() right after each COMMIT made through it (in the COMMIT's round trip), and the
// Session keeps the highest. A later read through the Session is sent to a replica that is known to have replayed
// that far, or to one that gets there within WithMaxWait (polled with pg_last_wal_replay_lsn() on the very
// connection the read will use — one extra round trip, only while the replica is not known to be caught up), and to
// the primary otherwise. Positions are parsed and compared in Go as 64-bit numbers, never spliced into SQL. When a
// commit's position was lost (the connection broke after COMMIT), the Session reads from the primary until it has
// learnt there a position past that commit. Token and Router.SessionFrom carry a Session across requests.
//
// A position is only meaningful on one timeline: after a failover, a standby left behind on the old timeline may have
// passed the new primary's positions with other contents. So the Session also keeps the primary's timeline (a
// tx.TimelineRecorder), and a read goes to a standby only when the standby's last restartpoint is on that timeline;
// otherwise, to the primary, which moves the session onto its own timeline when that is later. The Router also keeps
// the primary's timeline as its Sessions learnt it (a commit's report raises it; a look at the primary itself sets
// it, lower after a pg_upgrade), and a session read never goes to a standby on an earlier one: a standby left behind
// by a failover still passes a token from before it, and would show writes the failover lost and none made since.
// Until the Router has learnt the new timeline (no commit through it since the failover), such a standby can still
// serve those tokens: remove standbys left behind from the replica pools, as HA managers do.
//
// Each replica pool must reach exactly one standby, directly or through its own pgbouncer: the Router remembers how
// far each has replayed. Choosing a replica takes at most MaxWait plus 250 ms, and leaves a caller's deadline a
// reserve for the primary (see WithMaxWait): a replica pool that lends no
// connection in time is skipped, and a replica that does not answer the replay look is left out for the cooldown. Set
// connect_timeout on replica pools too, so that dials to a dead replica do not pile up behind that bound.
//
// # Failover and recovery conflicts
//
// A read on a standby can be cancelled when replay must remove row versions it may still need (hot_standby_feedback
// off) or take a lock it holds: PostgreSQL reports SQLSTATE 40001, "canceling statement due to conflict with
// recovery", or ends an idle-in-transaction session with a FATAL 40001 "terminating connection due to conflict with
// recovery". Both are retry.Serialization, which tx.Run retries by default from BEGIN, through the Router again.
//
// After a failover under a stable address the primary pool may reach a standby. tx.Run's BEGIN asks for READ WRITE
// (and SERIALIZABLE by default), which a standby refuses at once with 0A000 feature_not_supported ("cannot set
// transaction read-write mode during recovery", "cannot use serializable mode in a hot standby"), not with 25006
// read_only_sql_transaction: no retry class covers it, so the write fails without retries, having changed nothing.
// retry.ReadOnlyTransaction (25006, opt-in with retry.On) is what a write gets on a standby in a transaction that did
// not ask for READ WRITE, such as plain pgx code. Recovering from failover is the pool's job: connect the primary pool
// with several hosts and target_session_attrs=read-write, and discard old connections (pgxpool.Pool.Reset) when such
// an error is seen, for example from a tx.Observer.
//
// # pgbouncer
//
// Pools may point at pgbouncer in transaction pooling mode. Unless pgbouncer tracks prepared statements (1.21+ with
// max_prepared_statements), set the pool's ConnConfig.DefaultQueryExecMode to pgx.QueryExecModeExec (or
// default_query_exec_mode=exec in the connection string); QueryExecModeSimpleProtocol and QueryExecModeCacheDescribe
// work too. tx.Run's batches, savepoints and SetLocal are transaction-scoped and safe there; session state (SET,
// advisory locks, LISTEN, temporary tables) is not.
package replica
