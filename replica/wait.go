package replica

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replay polling: start fast, since replicas usually trail by a millisecond or two, and back off to a few polls per
// ten milliseconds so a long MaxWait does not flood the replica.
const (
	pollStart = 500 * time.Microsecond
	pollMax   = 4 * time.Millisecond
)

// replay is how far a replica has replayed, against a token.
type replay int

const (
	lagging  replay = iota // not as far yet
	replayed               // at or past the token, on its timeline
	forked                 // on another timeline than the token's: waiting will not help (see replayPosition)
	unknown                // not known: no connection was lent, or the look failed; not worth waiting for
)

// caughtUp polls pg_last_wal_replay_lsn() on conn until the replica behind it replays the pick's token, or deadline
// passes. It looks once, without waiting, if deadline is zero, if the replica is marked slow for the token, or if as
// many reads as may are waiting on the replica already (member.startWait). A replica still behind at a deadline is
// marked slow unless the wait was cut short by the caller's deadline (pick.short). An error means the replica could
// not answer (see look).
func (p *pick) caughtUp(m *member, conn *pgx.Conn, deadline time.Time) (replay, error) {
	r, token := p.r, p.token
	if m.slowFor(token.at, time.Now()) {
		deadline = time.Time{}
	}
	pause := pollStart
	waiting := false
	defer func() {
		if waiting {
			m.endWait()
		}
	}()
	for {
		seen, err := p.look(conn)
		if err != nil {
			return unknown, err
		}
		m.observe(seen.at)
		m.answered()
		rememberReplay(conn, seen)
		if r.behindPrimary(seen) {
			// A standby on an earlier timeline than the primary's: left behind by a failover, where it may hold
			// commits the failover lost and will never see those made since; or following the new primary and not yet
			// past its next restartpoint. Either way the primary serves the read, and moves the token onto its
			// timeline (Session.rebase). Not marked slow: the replica may serve token-less reads.
			return forked, nil
		}
		if token.coveredBy(seen.at, seen.timeline) {
			return replayed, nil
		}
		if token.timeline != 0 && seen.timeline != token.timeline {
			// A standby's reported timeline moves at its next restartpoint, minutes away, or never, for one left
			// behind on an old timeline. Not marked slow: the replica may serve other tokens.
			return forked, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			if !deadline.IsZero() && !p.short {
				m.markSlow(token.at, time.Now().Add(r.cfg.cooldown))
			}
			return lagging, nil
		}
		if !waiting {
			if !m.startWait() {
				// As many reads as may are already waiting on this replica: this one goes to the primary, and the
				// replica's other connections stay free for reads it can serve at once. Not slow: it was not waited for.
				return lagging, nil
			}
			waiting = true
		}
		if !sleep(p.bound, min(pause, left)) {
			return unknown, p.bound.Err()
		}
		pause = min(2*pause, pollMax)
	}
}

// answerFloor is the least time a look or a dial is given under a caller's deadline before its failure to answer
// counts against the replica: a replica nearby answers in well under a millisecond.
const answerFloor = 25 * time.Millisecond

// cutLook is a look that was not answered in the time a caller's deadline left it (see pick.look).
type cutLook struct {
	allowed time.Duration // the time it was given
	err     error
}

func (e *cutLook) Error() string {
	return fmt.Sprintf("replica: replay look not answered within %v: %v", e.allowed, e.err)
}

func (e *cutLook) Unwrap() error { return e.err }

// look is replayPosition, answered before the bound ends. When the caller's deadline cuts the pick's time
// (pick.cut), also by the time the primary's reserve begins, or within answerFloor if that is later, but never after
// half the time the caller has left: a replica that stopped answering must not hold such a read until its deadline.
// A look that runs out of a time so cut, or of less than answerFloor, fails with a *cutLook: that says little about
// the replica.
func (p *pick) look(conn *pgx.Conn) (mark, error) {
	now := time.Now()
	end := p.boundEnd
	if p.cut {
		end = earlier(end, later(p.reserveAt, now.Add(min(answerFloor, p.end.Sub(now)/2))))
	}
	ctx, cancel := context.WithDeadline(p.bound, end)
	defer cancel()
	seen, err := replayPosition(ctx, conn)
	if allowed := end.Sub(now); err != nil && ctx.Err() != nil && (p.cut || allowed < answerFloor) {
		return mark{}, &cutLook{allowed: allowed, err: err}
	}
	return seen, err
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// behindPrimary reports whether a standby's replay, seen, is on an earlier timeline than the primary's, as the Router
// learnt it.
func (r *Router) behindPrimary(seen mark) bool {
	t := r.timeline.Load()
	return t != 0 && seen.timeline < t
}

// replayPosition asks a standby how far it has replayed the primary's log, and on which timeline. The position is
// compared in Go, so no caller text ever reaches the SQL. A promoted server keeps answering pg_last_wal_replay_lsn()
// with where its recovery ended, so the position is asked for only while the server is in recovery.
//
// The timeline is that of the standby's last restartpoint (pg_control_checkpoint), the only one SQL shows every role
// (pg_stat_wal_receiver's received_tli is hidden from roles without pg_read_all_stats). It lags: a standby that
// follows a promotion onto a new timeline reports the old one until its next restartpoint, and meanwhile session
// reads holding the new timeline go to the primary. It is never ahead: a restartpoint is made at a checkpoint the
// standby replayed, so a standby reporting timeline t is following t's history, and one left behind on an old
// timeline never reports the new one.
func replayPosition(ctx context.Context, conn *pgx.Conn) (mark, error) {
	var text *string
	var timeline, pid int64
	err := conn.QueryRow(ctx,
		`SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() END::text,
			(SELECT timeline_id FROM pg_control_checkpoint())::bigint, pg_backend_pid()::bigint`).
		Scan(&text, &timeline, &pid)
	if err != nil {
		return mark{}, err
	}
	if text == nil {
		return mark{}, errNotStandby
	}
	direct(conn, pid)
	at, err := parseLSN(*text)
	if err != nil {
		return mark{}, err
	}
	if timeline <= 0 || timeline > math.MaxUint32 {
		return mark{}, fmt.Errorf("replica: the standby reports timeline %d", timeline)
	}
	return mark{at: at, timeline: uint32(timeline)}, nil
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

// rememberReplay keeps seen as conn's replay position and timeline, if conn is a connection to the server itself.
// The timeline can only move on to a later one while the server runs, so a kept one that differs from a token's
// only sends the read to look again.
func rememberReplay(conn *pgx.Conn, seen mark) {
	data := conn.PgConn().CustomData()
	if d, _ := data[directKey].(bool); d {
		data[replayKey] = seen
	}
}

// connReplayed returns the replay position seen on conn, if one is kept (see rememberReplay).
func connReplayed(conn *pgx.Conn) (mark, bool) {
	seen, ok := conn.PgConn().CustomData()[replayKey].(mark)
	return seen, ok
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
