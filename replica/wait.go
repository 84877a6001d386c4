package replica

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replay polling: start fast, since replicas usually trail by a millisecond or two, and back off to a few polls per
// ten milliseconds so a long MaxWait does not flood the replica.
const (
	pollStart = 500 * time.Microsecond
	pollMax   = 4 * time.Millisecond
)

// caughtUp reports whether the replica behind conn replays token by deadline, polling pg_last_wal_replay_lsn(). A
// replica marked slow for token gets a single look. An error means the replica could not answer.
func (r *Router) caughtUp(ctx context.Context, m *member, conn *pgx.Conn, token lsn, deadline time.Time) (bool, error) {
	if m.slowFor(token, time.Now()) {
		deadline = time.Time{}
	}
	pause := pollStart
	for {
		at, err := replayPosition(ctx, conn)
		if err != nil {
			return false, err
		}
		m.observe(at)
		rememberReplay(conn, at)
		if at >= token {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			if !deadline.IsZero() {
				m.markSlow(token, time.Now().Add(r.cfg.cooldown))
			}
			return false, nil
		}
		if !sleep(ctx, min(pause, left)) {
			return false, ctx.Err()
		}
		pause = min(2*pause, pollMax)
	}
}

// replayPosition asks a standby how far it has replayed the primary's log. The position is compared in Go, so no
// caller text ever reaches the SQL. A promoted server keeps answering pg_last_wal_replay_lsn() with where its
// recovery ended, so the position is asked for only while the server is in recovery.
func replayPosition(ctx context.Context, conn *pgx.Conn) (lsn, error) {
	var text *string
	var pid int64
	err := conn.QueryRow(ctx,
		"SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() END::text, pg_backend_pid()::bigint").
		Scan(&text, &pid)
	if err != nil {
		return 0, err
	}
	if text == nil {
		return 0, errNotStandby
	}
	direct(conn, pid)
	return parseLSN(*text)
}

// Per-connection replay positions. A replica's replay only moves forward while its server runs, and a connection to
// the server itself ends when the server stops or restarts: so a position seen on such a connection still holds for
// later transactions on it, with no round trip. A member-wide position would not: after a restart, a standby
// replays from its last restartpoint and may answer below what it answered before. Through a pooler the client's
// connection outlives the server's restarts, so there nothing is kept, and every session read looks again.
const (
	replayKey = "pgxact.replica.replayed"
	directKey = "pgxact.replica.direct"
)

// direct records whether conn talks to the server process that reported pid, as a connection to the server itself
// does, and a pooler's (whose connection reported a process id of its own making) does not.
func direct(conn *pgx.Conn, pid int64) {
	conn.PgConn().CustomData()[directKey] = int64(conn.PgConn().PID()) == pid
}

// rememberReplay keeps at as conn's replay position, if conn is a connection to the server itself.
func rememberReplay(conn *pgx.Conn, at lsn) {
	data := conn.PgConn().CustomData()
	if d, _ := data[directKey].(bool); d {
		data[replayKey] = at
	}
}

// connReplayed returns the replay position seen on conn, if one is kept (see rememberReplay).
func connReplayed(conn *pgx.Conn) (lsn, bool) {
	at, ok := conn.PgConn().CustomData()[replayKey].(lsn)
	return at, ok
}

func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
