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
		return fatal(err)
	}
	return true
}

// fatal reports whether err carries the server's FATAL or PANIC: its session, and the transaction with it, ended.
func fatal(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	sev := pgErr.SeverityUnlocalized
	if sev == "" {
		sev = pgErr.Severity
	}
	return sev == "FATAL" || sev == "PANIC"
}

// Outcome polling: an in-progress answer means the old backend has not finished with our transaction yet.
const (
	resolvePollStart = 2 * time.Millisecond
	resolvePollMax   = 100 * time.Millisecond
	resolveTerminate = 500 * time.Millisecond // then ask the server to end the old backend
)

// Status-query retries: the query's own connection can fail (a backend terminated, a pool handing out a connection
// to a server that restarted) while the server stays reachable, and one failure must not turn a knowable outcome
// into an unknown one. The retries are bounded in count and time of their own, and stop at the caller's deadline.
// A caller whose context has already ended gets resolveRetryGrace instead: ending the context during COMMIT is a
// common way to lose its answer, and resolving it is cleanup, which outlives the context as ROLLBACK does.
const (
	resolveRetries    = 8
	resolveRetryStart = 5 * time.Millisecond
	resolveRetryMax   = 250 * time.Millisecond
	resolveRetryFor   = 3 * time.Second
	resolveRetryGrace = 500 * time.Millisecond
)

// errOtherHistory is the status query's answer when the server it reached is not on the history the transaction id
// came from: after a failover or a restart the id may belong to another transaction there, so its status says
// nothing about ours.
var errOtherHistory = errors.New("the server reached is on another history")

// statusLost is xactStatus's answer for an id that the server, restarted on the transaction's own system and
// timeline, holds at or past its snapshot's xmax: crash recovery ended before any record of it (see statusSQL), so
// the transaction did not commit.
const statusLost = "lost in a restart"

// statusForced is pollStatus's answer for a transaction reported committed after endOldBackend signalled its backend
// on a server that names synchronous standbys: it may have committed only locally, unconfirmed by any standby.
const statusForced = "committed locally after its backend was ended, perhaps unconfirmed by a synchronous standby"

// resolve establishes what happened to a transaction whose COMMIT answer was lost. It returns nil when the
// transaction committed (or wrote nothing), the cause marked retry.Uncommitted when it certainly did not commit, and
// an error wrapping ErrCommitUnknown otherwise.
func (r *runner) resolve(ctx context.Context, s *session, amb *ambiguousError) error {
	if !s.trackXid || (s.xid == 0 && !s.xidStale) {
		return nil // a transaction without a transaction id wrote nothing, so its result stands
	}
	if s.xid == 0 {
		return unknown(amb, "transaction id not read after its last statements")
	}
	if !s.hist.known() {
		return unknown(amb, fmt.Sprintf("server history of transaction %d not known", s.xid))
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	status, err := r.pollStatus(rctx, ctx, s)
	switch {
	case err != nil:
		// %v on purpose: the status query's connection error says nothing about our transaction, and pgx marks some
		// of them SafeToRetry, which must never make an unknown outcome look retryable.
		return unknown(amb, fmt.Sprintf("pg_xact_status: %v", err))
	case status == "committed":
		return nil
	case status == "aborted", status == statusLost:
		return retry.Uncommitted(fmt.Errorf("tx: commit: transaction %d %s: %w", s.xid, status, amb.err))
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

// pollStatus asks for the transaction's status until it is settled, ending the old backend if it holds the
// transaction open. ctx bounds the whole resolution; caller is Run's own context, whose deadline also ends retries of
// a failed status query (see resolveRetryGrace).
func (r *runner) pollStatus(ctx, caller context.Context, s *session) (string, error) {
	start, wait, terminated, forced := time.Now(), resolvePollStart, false, false
	tries := 0
	for {
		status, err := r.xactStatus(ctx, s)
		if err != nil {
			tries++
			if errors.Is(err, errOtherHistory) || !r.retryStatus(ctx, caller, start, tries) {
				return "", err
			}
			continue
		}
		if status == "committed" && forced {
			return statusForced, nil
		}
		if status != "in progress" {
			return status, nil
		}
		if !terminated && time.Since(start) > resolveTerminate {
			terminated = true
			forced, _ = r.endOldBackend(ctx, s)
		}
		if !sleep(ctx, wait) {
			return status, nil
		}
		wait = min(2*wait, resolvePollMax)
	}
}

// retryStatus waits before the next try of a failed status query and reports whether to make it.
func (r *runner) retryStatus(ctx, caller context.Context, start time.Time, tries int) bool {
	d := min(resolveRetryStart<<(tries-1), resolveRetryMax)
	bound := resolveRetryFor
	if caller.Err() != nil {
		bound = resolveRetryGrace
	} else if !fits(caller, d) {
		return false
	}
	if tries > resolveRetries || time.Since(start)+d > bound {
		return false
	}
	return sleep(ctx, d)
}

// endOldBackend ends the backend that still holds our transaction open; that settles the outcome either way. It is
// found by the transaction it holds, not by the PID the connection reported: behind pgbouncer that PID is made up by
// the pooler and may be another session's. backend_xid is the low 32 bits of our 64-bit id, so the backend is only
// looked for on the transaction's own history — on any other, that xid may be an innocent session's. The check and
// the kill are one statement, so a pool cannot hand the check and the kill to different servers.
//
// A backend waiting for synchronous standbys (wait_event SyncRep) is left alone: its COMMIT is written locally but
// not yet confirmed by a standby, and ending it would make the server report "committed" for a transaction that a
// failover could still lose. Its status stays "in progress", and the outcome unknown, until a standby confirms.
//
// The wait event cannot tell everything, though: the server holds off the signal through the whole of COMMIT, so a
// backend caught after the wait event was read, or still writing its commit record (a stalled disk), takes the signal
// only once it has committed locally, and then skips the wait for the standbys. So forced reports that the signal was
// sent on a server that names synchronous standbys: a "committed" read after it proves nothing a failover would keep,
// and pollStatus makes it statusForced.
func (r *runner) endOldBackend(ctx context.Context, s *session) (forced bool, err error) {
	err = r.onFresh(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT pg_terminate_backend(a.pid, 1000),
				current_setting('synchronous_standby_names') <> ''
			FROM pg_stat_activity a, (SELECT `+historySQL+`) h(system, timeline, started, reset)
			WHERE a.backend_xid::text = ($1::bigint % 4294967296)::text
				AND a.wait_event IS DISTINCT FROM 'SyncRep'
				AND h.system = $2 AND h.timeline = $3 AND h.started = $4 AND h.reset = $5`,
			s.xid, s.hist.system, s.hist.timeline, s.hist.started, s.hist.reset)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			// The signal went out whatever pg_terminate_backend returned (false only means the backend had not
			// exited within its timeout), so its answer is skipped.
			var syncNamed bool
			if err := rows.Scan(nil, &syncNamed); err != nil {
				return err
			}
			forced = forced || syncNamed
		}
		return rows.Err()
	})
	// A kill statement that failed may have sent its signal before failing (a connection lost after it ran), and
	// then nothing says whether the server names synchronous standbys: a "committed" after it stays unknown. That
	// costs a resolved outcome only when the kill statement fails, which is rare.
	return forced || err != nil, err
}

// statusSQL reads the answering server's history; on the transaction's own history, its status; and on its branch
// after a restart, whether the id is below the snapshot's xmax. pg_xact_status is only asked where the id is ours:
// on another history it could even fail with an id "in the future".
//
// Why xmax proves a loss: at the end of crash recovery the server sets its latest completed id to just below the
// next id recovery left it with, and xmax (latest completed + 1) only grows from there. An id at or past xmax is
// therefore at or past where recovery ended, so no record of it survived: whatever got that id since, ours did not
// commit. An id below xmax may be ours, replayed, or a new one; that stays unknown. Nothing is assigned by asking,
// so a retried status query cannot spoil its own answer.
const statusSQL = `SELECT h.system, h.timeline, h.started, h.reset,
	CASE WHEN h.system = $2 AND h.timeline = $3 AND h.started <> $4
		THEN $1::text::xid8 < pg_snapshot_xmax(pg_current_snapshot()) END,
	CASE WHEN h.system = $2 AND h.timeline = $3 AND h.started = $4 AND h.reset = $5
		THEN pg_xact_status($1::text::xid8) END
	FROM (SELECT ` + historySQL + `) h(system, timeline, started, reset)`

// xactStatus asks a fresh connection for the transaction's status, and settles what the server's history allows.
func (r *runner) xactStatus(ctx context.Context, s *session) (string, error) {
	var status *string
	var h history
	var assigned *bool
	err := r.onFresh(ctx, func(q querier) error {
		return q.QueryRow(ctx, statusSQL, strconv.FormatInt(s.xid, 10), s.hist.system, s.hist.timeline,
			s.hist.started, s.hist.reset).Scan(&h.system, &h.timeline, &h.started, &h.reset, &assigned, &status)
	})
	switch {
	case err != nil:
		return "", err
	case s.hist.branch(h) && s.hist.started != h.started && assigned != nil && !*assigned:
		// Restarted on our own branch, and the id is at or past xmax: recovery found no record of our transaction.
		// Only a new start time proves that our backend is gone; a new statistics reset alone (a crash that the
		// postmaster survived, or an administrator's reset) leaves the answer unknown below: our transaction might
		// still be running, with an id at or past xmax.
		return statusLost, nil
	case !s.hist.same(h):
		return "", fmt.Errorf("%w: transaction %d was assigned on system %s timeline %d (server started at %d µs), "+
			"the server reached is system %s timeline %d (started at %d µs)", errOtherHistory, s.xid,
			s.hist.system, s.hist.timeline, s.hist.started, h.system, h.timeline, h.started)
	case status == nil:
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
