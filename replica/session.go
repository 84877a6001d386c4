package replica

import (
	"context"
	"fmt"
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
	token   lsn    // the highest commit position recorded or imported; 0 for none
	unknown bool   // a commit's position was lost: read from the primary until it is settled there
	lost    uint64 // how many positions were lost, so that settling does not clear a loss it did not cover
}

// AcquireTx lends a connection for a transaction with opts: like Router.AcquireTx, except that a read goes to a
// replica only if that replica has replayed the session's commits. tx.Run calls it; release must be called exactly
// once.
func (s *Session) AcquireTx(ctx context.Context, opts pgx.TxOptions) (*pgx.Conn, func(), error) {
	if !replicable(opts) {
		return s.r.acquirePrimary(ctx)
	}
	s.mu.Lock()
	token, unknown, lost := s.token, s.unknown, s.lost
	s.mu.Unlock()
	if unknown {
		return s.settle(ctx, lost)
	}
	return s.r.acquireRead(ctx, token)
}

// BeginTx begins a transaction on the primary; see Router.BeginTx.
func (s *Session) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	return s.r.BeginTx(ctx, opts)
}

// RecordCommit is called by tx.Run after each read-write transaction committed through s, with the primary's log
// position right after the COMMIT. An empty or malformed position means it was lost: s then reads from the primary
// until it has learnt a position there that covers the commit.
func (s *Session) RecordCommit(_ context.Context, position string) {
	at, err := parseLSN(position)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.unknown, s.lost = true, s.lost+1
		return
	}
	s.token = max(s.token, at)
}

// Token returns the session's state as a short string for a cookie or a header: empty before the first commit,
// otherwise opaque (today PostgreSQL's text form of a log position). Router.SessionFrom turns it back into a
// session. A token is not secret and not signed: a client that forges one can only make its own reads slower and
// send them to the primary.
func (s *Session) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.unknown:
		return unknownLSN.String()
	case s.token == 0:
		return ""
	default:
		return s.token.String()
	}
}

// settle serves a read from the primary after a commit position was lost, and learns there a position that covers
// the lost commit: it committed before this read began, so the primary's current insert position is past it.
func (s *Session) settle(ctx context.Context, lost uint64) (*pgx.Conn, func(), error) {
	conn, release, err := s.r.acquirePrimary(ctx)
	if err != nil {
		return nil, nil, err
	}
	var text string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text); err != nil {
		if conn.IsClosed() {
			release()
			return nil, nil, fmt.Errorf("replica: reading the primary's log position: %w", err)
		}
		// The read itself can still run here: settling only lets later reads use replicas again.
		return conn, release, nil
	}
	if at, err := parseLSN(text); err == nil {
		s.mu.Lock()
		s.token = max(s.token, at)
		if s.lost == lost {
			s.unknown = false
		}
		s.mu.Unlock()
	}
	return conn, release, nil
}
