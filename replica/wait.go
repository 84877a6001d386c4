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
// caller text ever reaches the SQL.
func replayPosition(ctx context.Context, conn *pgx.Conn) (lsn, error) {
	var text *string
	if err := conn.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&text); err != nil {
		return 0, err
	}
	if text == nil {
		return 0, errNotStandby
	}
	return parseLSN(*text)
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
