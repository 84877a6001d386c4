package replica

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Session gives read-your-writes over a Router: pass it to tx.Run instead of the Router, and every read-only
// transaction sees the read-write transactions committed through it before. Writes go to the primary, which answers
// each COMMIT with its write-ahead log position (tx.Run asks in the same round trip); a later read goes to a replica
// only once that replica reports pg_last_wal_replay_lsn() at or past the session's highest such position, waiting at
// most MaxWait, and to the primary otherwise.
//
// A Session is meant for one user or request flow; Token carries it across requests and processes. It is safe for
// concurrent use, but reads that run concurrently with a write are not ordered after it. Get one from Router.Session
// or Router.SessionFrom; the zero Session is not usable.
type Session struct {
	r *Router

	mu      sync.Mutex
	token   mark   // the highest commit position recorded or imported, on the latest timeline; zero for none
	unknown bool   // a commit's position was lost: read from the primary until it is settled there
	lost    uint64 // how many positions were lost, so that settling does not clear a loss it did not cover
	// recorded counts the positions recorded, so that settling, which may replace the token with an earlier
	// timeline's position, does not drop a commit recorded while it asked the primary.
	recorded uint64
}

// AcquireTx lends a connection for a transaction with opts: like Router.AcquireTx, except that a read goes to a
// replica only if that replica has replayed the session's commits. tx.Run calls it; release must be called exactly
// once.
func (s *Session) AcquireTx(ctx context.Context, opts pgx.TxOptions) (*pgx.Conn, func(), error) {
	if !replicable(opts) {
		return s.r.acquirePrimary(ctx)
	}
	s.mu.Lock()
	token, unknown, lost, recorded := s.token, s.unknown, s.lost, s.recorded
	s.mu.Unlock()
	if unknown {
		return s.settle(ctx, lost, recorded)
	}
	conn, release, forked, err := s.r.acquireRead(ctx, token)
	if err != nil || !forked {
		return conn, release, err
	}
	if err := s.rebase(ctx, conn, token, recorded); err != nil && conn.IsClosed() {
		release() // the look broke the connection (ctx ended, or the network): it cannot serve the read
		return nil, nil, err
	}
	return conn, release, nil
}

// rebase moves the session's token onto the primary's timeline, when the primary is on a later one than the token:
// after a failover, no standby that follows the new primary ever reports the token's old timeline again, and the
// session would read from the primary until its next write. Every commit of the old timeline that survived the
// failover is in the new one's history, below the primary's current insert position. conn is the primary's, lent for
// the read; if asking fails, the token stays as it is (the error says whether conn still works). So it does when a
// commit was recorded meanwhile (recorded is the count when token was read): one recorded without its timeline
// (RecordCommit) may have committed after the position was asked for, and replacing the token would drop it.
func (s *Session) rebase(ctx context.Context, conn *pgx.Conn, token mark, recorded uint64) error {
	at, err := insertPosition(ctx, conn)
	if err != nil {
		return err
	}
	s.r.learnTimeline(at.timeline, true)
	if at.timeline <= token.timeline {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token.timeline < at.timeline && !s.unknown && s.recorded == recorded {
		s.token = at
	}
	return nil
}

// BeginTx begins a transaction on the primary; see Router.BeginTx.
func (s *Session) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	return s.r.BeginTx(ctx, opts)
}

// RecordCommit is called by tx.Run after a read-write transaction committed through s whose position was lost (""),
// and by code that knows a position without its timeline. An empty or malformed position means it was lost: s then
// reads from the primary until it has learnt a position there that covers the commit.
func (s *Session) RecordCommit(_ context.Context, position string) {
	at, err := parseLSN(position)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.unknown, s.lost = true, s.lost+1
		return
	}
	s.token.at = max(s.token.at, at)
	s.recorded++
}

// RecordTimelineCommit is called by tx.Run after each read-write transaction committed through s, with the primary's
// timeline and log position right after the COMMIT. A malformed position, or timeline 0, counts as lost, as in
// RecordCommit.
//
// The session keeps the highest position and the latest timeline: a later timeline comes from a promotion, whose
// history holds every earlier commit that survived it. A commit reported on an earlier timeline than one already
// recorded (two primaries at once, or a write that raced a failover) cannot be placed, and counts as lost.
func (s *Session) RecordTimelineCommit(_ context.Context, timeline uint32, position string) {
	at, err := parseLSN(position)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || timeline == 0 || timeline < s.token.timeline {
		s.unknown, s.lost = true, s.lost+1
		return
	}
	s.r.learnTimeline(timeline, false)
	s.token = s.token.merge(mark{at: at, timeline: timeline})
	s.recorded++
}

// Token returns the session's state as a short string for a cookie or a header: empty before the first commit,
// otherwise opaque (today the primary's timeline and PostgreSQL's text form of a log position, "3:16/B374D848").
// Router.SessionFrom turns it back into a session. A token is not secret and not signed: a client that forges one can
// make its own reads slower and send them to the primary, and each such read may hold a replica connection for up to
// MaxWait. One connection of a replica pool of two or more is never held by a wait, so reads the replica can serve
// at once still get one; sign tokens yourself if clients must not be able to load the primary this way.
func (s *Session) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.unknown:
		return unknownLSN.String()
	case s.token.at == 0:
		return ""
	default:
		return s.token.String()
	}
}

// settle serves a read from the primary after a commit position was lost, and learns there a position that covers
// the lost commit: it committed before this read began, so the primary's current insert position is past it. The
// primary's current timeline replaces the session's: whatever the session committed and the primary still has is in
// its history.
func (s *Session) settle(ctx context.Context, lost, recorded uint64) (*pgx.Conn, func(), error) {
	conn, release, err := s.r.acquirePrimary(ctx)
	if err != nil {
		return nil, nil, err
	}
	at, err := insertPosition(ctx, conn)
	if err != nil {
		if conn.IsClosed() {
			release()
			return nil, nil, err
		}
		// The read itself can still run here: settling only lets later reads use replicas again.
		return conn, release, nil
	}
	s.r.learnTimeline(at.timeline, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.timeline == s.token.timeline || s.recorded != recorded {
		// A commit recorded meanwhile (through this session, concurrently) may be on a later timeline than the one
		// the primary was asked on: merging never goes below it.
		s.token = s.token.merge(at)
	} else {
		// Another timeline, later or not (a failover; a cluster upgraded, whose timelines start again at 1): what
		// the session committed and the primary still has is below its current position, on its timeline.
		s.token = at
	}
	if s.lost == lost {
		s.unknown = false
	}
	return conn, release, nil
}

// insertPosition asks the primary behind conn where it inserts WAL, and on which timeline.
func insertPosition(ctx context.Context, conn *pgx.Conn) (mark, error) {
	var text string
	var timeline int64
	if err := conn.QueryRow(ctx, insertPositionSQL).Scan(&text, &timeline); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return mark{}, fmt.Errorf("replica: reading the primary's log position: %w: %w", ctxErr, err)
		}
		return mark{}, fmt.Errorf("replica: reading the primary's log position: %w", err)
	}
	at, err := parseLSN(text)
	if err != nil {
		return mark{}, err
	}
	if timeline <= 0 || timeline > math.MaxUint32 {
		return mark{}, fmt.Errorf("replica: the primary reports timeline %d", timeline)
	}
	return mark{at: at, timeline: uint32(timeline)}, nil
}

// insertPositionSQL asks the primary where it inserts WAL, and on which timeline: the one a WAL file's name starts
// with, which is the new one as soon as a promoted server accepts writes.
const insertPositionSQL = `SELECT l::text, ('x' || substr(pg_walfile_name(l), 1, 8))::bit(32)::bigint
	FROM pg_current_wal_insert_lsn() l`
