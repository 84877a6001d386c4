package tx

import (
	"github.com/jackc/pgx/v5/pgconn"
)

// history names the server history a transaction id belongs to: the cluster's system identifier, the timeline the
// server was writing when the id was assigned, and when that server process started.
//
// A transaction id alone is not an identity. Ids are handed out from a counter that is only as durable as the WAL
// that mentions them, so a server can hand one out again:
//   - after a failover, the promoted standby continues from the last id it replayed, and an id the old primary gave
//     out just before it died goes to another transaction there;
//   - after a crash, a server recovers to the end of its flushed WAL; an id whose records had not been flushed
//     (synchronous_commit = off, or a COMMIT that never finished) is handed out again.
//
// pg_xact_status then answers for that other transaction. The system identifier tells clusters apart (a standby made
// with pg_basebackup shares its primary's), the timeline tells apart the branches of one cluster (every promotion
// starts a new one), and the start time tells apart the lives of one server. Within one of them an id means one
// transaction, so a status read there is about ours.
//
// One kind of new life keeps the start time: when a backend crashes, the postmaster ends all the others, runs crash
// recovery and goes on, and ids whose records were not flushed are handed out again. Shared memory is set up anew
// then, and with it the statistics, whose reset time (pg_stat_archiver.stats_reset) moves: reset tells those lives
// apart. An administrator's pg_stat_reset_shared moves it too; that only makes an answer unknown (see xactStatus).
//
// The zero history is "not known"; it matches nothing, not even itself.
type history struct {
	system   string // pg_control_system().system_identifier, as text: it is a uint64 and overflows bigint
	timeline int64  // 0 on a server in recovery, whose timeline can still change under the connection
	started  int64  // pg_postmaster_start_time(), in microseconds since 1970
	reset    int64  // pg_stat_archiver.stats_reset, in microseconds since 1970; 0 while it is NULL
}

// known reports whether h names a history that a status answer can be checked against.
func (h history) known() bool { return h.system != "" && h.timeline > 0 }

// same reports whether h and o are one history of transaction ids. Unknown histories are never the same.
func (h history) same(o history) bool { return h.known() && h == o }

// branch reports whether o is on h's system and timeline, whatever its start time: the same server, or its copy,
// after a restart.
func (h history) branch(o history) bool {
	return h.known() && h.system == o.system && h.timeline == o.timeline
}

// historyKey is the key under which a connection's history is kept in pgconn's per-connection CustomData: a
// connection to the server itself talks to one server process for its whole life, which a crash or a restart ends,
// and a primary's timeline never changes while it runs, so the history is asked once per connection instead of once
// per transaction. Not so through a pooler (pgbouncer): the client's connection outlives the server processes behind
// it, and even the server's restarts, so there the history is read in every transaction that looks (see
// rememberHistory).
const historyKey = "pgxact.history"

// historySQL is the part of a select list that reads the server's history. A server in recovery reports timeline 0:
// pg_current_wal_lsn would fail there, and its timeline changes if it is promoted while the connection stays open.
// The CASE keeps the failing branch from being evaluated.
const historySQL = `(SELECT system_identifier::text FROM pg_control_system()),
	CASE WHEN pg_is_in_recovery() THEN 0
	ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END::bigint,
	floor(extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint,
	coalesce(floor(extract(epoch FROM (SELECT stats_reset FROM pg_stat_archiver)) * 1000000)::bigint, 0)`

// connHistory returns the history cached on pc, and whether there was one.
func connHistory(pc *pgconn.PgConn) (history, bool) {
	if pc == nil {
		return history{}, false
	}
	h, ok := pc.CustomData()[historyKey].(history)
	return h, ok
}

// rememberHistory caches h on pc, read by the server process backendPID. Only a primary's history is kept (a
// standby's timeline moves on at promotion), and only on a connection to the server itself, whose process is the one
// the connection reported at startup: behind a pooler the two differ, and the history must be read again each time.
func rememberHistory(pc *pgconn.PgConn, h history, backendPID uint32) {
	if pc != nil && h.known() && pc.PID() == backendPID {
		pc.CustomData()[historyKey] = h
	}
}
