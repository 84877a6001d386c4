package tx

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Acquirer is a DB that lends out one connection per transaction, chosen with the transaction's options in view —
// a router that sends read-only transactions to replicas, for instance. Run then owns BEGIN on that connection and
// fuses it into the first round trip, as it does for *pgxpool.Pool. release must be called exactly once; Run does,
// also when AcquireTx returns an error along with a non-nil release. A nil connection or release without an error is
// invalid (ErrInvalid). The connection may be inside a transaction already only on purpose (txtest's Injector): Run
// sends its BEGIN regardless.
//
// opts.IsoLevel is empty for a read-only transaction (not DEFERRABLE) left at Run's default isolation: Run begins it
// SERIALIZABLE on a primary and REPEATABLE READ on a hot standby, which refuses SERIALIZABLE (see WithIsolation), so
// either may serve it.
type Acquirer interface {
	DB
	AcquireTx(ctx context.Context, opts pgx.TxOptions) (conn *pgx.Conn, release func(), err error)
}

// CommitRecorder is implemented by a DB that wants to know where each committed read-write transaction ended in the
// write-ahead log, for read-your-writes on replicas. Run then asks for pg_current_wal_insert_lsn() in the COMMIT round
// trip — no extra round trip — and calls RecordCommit after the commit with the LSN in PostgreSQL's text form
// ("16/B374D848"), or "" when the answer was lost, in which case the recorder should assume the worst.
type CommitRecorder interface {
	RecordCommit(ctx context.Context, lsn string)
}

// TimelineRecorder is a CommitRecorder that also wants the primary's timeline with each known position. A log
// position alone does not name a point in a cluster's history after a failover: the promoted standby starts a new
// timeline whose positions also exist, with other contents, on any standby left behind on the old one. When the db
// implements TimelineRecorder, Run calls RecordTimelineCommit instead of RecordCommit for a commit whose position is
// known, with the timeline the primary was writing right after the COMMIT (asked in the same round trip); a lost
// position still goes to RecordCommit as "".
type TimelineRecorder interface {
	CommitRecorder
	RecordTimelineCommit(ctx context.Context, timeline uint32, lsn string)
}
