package tx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/retry"
)

// ambiguousError carries a COMMIT failure after which the transaction may or may not have committed.
type ambiguousError struct{ err error }

func (e *ambiguousError) Error() string { return "tx: commit: " + e.err.Error() }
func (e *ambiguousError) Unwrap() error { return e.err }

// ambiguous reports whether a COMMIT that failed with err may nevertheless have committed.
//
// pgconn.SafeToRetry is deliberately not consulted: when the read of COMMIT's answer fails, pgx v5.12 can report the
// failure as "conn closed" with SafeToRetry true although COMMIT was sent (its read error closes the connection, and
// the next read then fails the lock check). Trusting it applied transactions twice in TestAmbiguousCommits; asking
// pg_xact_status costs one query on a path that is already a failure.
func ambiguous(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// An ERROR is the server's answer: it rolled back. A FATAL ends the session, possibly around the commit.
		sev := pgErr.SeverityUnlocalized
		if sev == "" {
			sev = pgErr.Severity
		}
		return sev == "FATAL" || sev == "PANIC"
	}
	return true
}

// Outcome polling: an in-progress answer means the old backend has not finished with our transaction yet.
const (
	resolvePollStart = 2 * time.Millisecond
	resolvePollMax   = 100 * time.Millisecond
	resolveTerminate = 500 * time.Millisecond // then ask the server to end the old backend
)

// resolve establishes what happened to a transaction whose COMMIT answer was lost. It returns nil when the
// transaction committed (or wrote nothing), the cause marked retry.Uncommitted when it certainly did not commit, and
// an error wrapping ErrCommitUnknown otherwise.
func (r *runner) resolve(ctx context.Context, s *session, amb *ambiguousError) error {
	if !s.trackXid || (s.xid == 0 && !s.xidStale) {
		return nil // a transaction without a transaction id wrote nothing, so its result stands
	}
	if s.xid == 0 {
		return unknown(amb, "transaction id not known")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	status, err := r.pollStatus(ctx, s)
	switch {
	case err != nil:
		// %v on purpose: the status query's connection error says nothing about our transaction, and pgx marks some
		// of them SafeToRetry, which must never make an unknown outcome look retryable.
		return unknown(amb, fmt.Sprintf("pg_xact_status: %v", err))
	case status == "committed":
		return nil
	case status == "aborted":
		return retry.Uncommitted(fmt.Errorf("tx: commit: transaction %d aborted: %w", s.xid, amb.err))
	default:
		return unknown(amb, fmt.Sprintf("transaction %d is %q", s.xid, status))
	}
}

// unknownError is the error of a COMMIT whose outcome could not be established. It wraps ErrCommitUnknown and the
// commit's own error (so errors.As still finds a *pgconn.PgError or a net.Error), and answers SafeToRetry with false
// ahead of anything it wraps: pgconn.SafeToRetry and retry.Classify then see a transaction that may have committed.
type unknownError struct {
	why string
	amb *ambiguousError
}

func unknown(amb *ambiguousError, why string) error { return &unknownError{why: why, amb: amb} }

func (e *unknownError) Error() string {
	return ErrCommitUnknown.Error() + ": " + e.why + " (commit failed with: " + e.amb.err.Error() + ")"
}
func (e *unknownError) Unwrap() []error   { return []error{ErrCommitUnknown, e.amb} }
func (e *unknownError) SafeToRetry() bool { return false }

func (r *runner) pollStatus(ctx context.Context, s *session) (string, error) {
	start, wait, terminated := time.Now(), resolvePollStart, false
	for {
		status, err := r.xactStatus(ctx, s.xid)
		if err != nil || status != "in progress" {
			return status, err
		}
		if !terminated && time.Since(start) > resolveTerminate {
			// The old backend still holds our transaction open; ending it settles the outcome either way. It is found
			// by the transaction it holds, not by the PID the connection reported: behind pgbouncer that PID is made
			// up by the pooler and may be another session's. backend_xid is the low 32 bits of our 64-bit id.
			terminated = true
			_ = r.onFresh(ctx, func(q querier) error {
				_, err := q.Exec(ctx, `SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity
					WHERE backend_xid::text = ($1::bigint % 4294967296)::text`, s.xid)
				return err
			})
		}
		select {
		case <-ctx.Done():
			return status, nil
		case <-time.After(wait):
		}
		wait = min(2*wait, resolvePollMax)
	}
}

func (r *runner) xactStatus(ctx context.Context, xid int64) (string, error) {
	var status *string
	err := r.onFresh(ctx, func(q querier) error {
		return q.QueryRow(ctx, "SELECT pg_xact_status($1::text::xid8)", strconv.FormatInt(xid, 10)).Scan(&status)
	})
	if err != nil {
		return "", err
	}
	if status == nil {
		return "too old", nil
	}
	return *status, nil
}

// onFresh runs f on a connection other than the broken one.
func (r *runner) onFresh(ctx context.Context, f func(querier) error) error {
	if c, ok := r.db.(*pgx.Conn); ok {
		conn, err := pgx.ConnectConfig(ctx, c.Config())
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return f(conn)
	}
	// Read-write on purpose: a router must send this to the primary. A standby that has not replayed our commit yet
	// could call a committed transaction aborted.
	q, err := r.db.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
	if err != nil {
		return err
	}
	defer q.Rollback(context.WithoutCancel(ctx))
	return f(q)
}
