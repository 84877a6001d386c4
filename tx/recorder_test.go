package tx_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// recordingDB is an Acquirer over a pool that records what Run tells it as a CommitRecorder.
type recordingDB struct {
	*pgxpool.Pool
	mu   sync.Mutex
	lsns []string
}

func (d *recordingDB) AcquireTx(ctx context.Context, _ pgx.TxOptions) (*pgx.Conn, func(), error) {
	c, err := d.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.Conn(), c.Release, nil
}

func (d *recordingDB) RecordCommit(_ context.Context, lsn string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lsns = append(d.lsns, lsn)
}

// TestCommitRecorderHearsOfEveryPossibleCommit: read-your-writes depends on the recorder hearing of every commit that
// may have happened, with its position or with "" (unknown, assume the worst).
func TestCommitRecorderHearsOfEveryPossibleCommit(t *testing.T) {
	cases := []struct {
		name    string
		work    tx.Tx[pgconn.CommandTag]
		opts    []tx.Option
		wantErr error
		want    func(t *testing.T, lsns []string)
	}{
		{"a write: its position", note("a"), nil, nil, func(t *testing.T, lsns []string) {
			require.Len(t, lsns, 1)
			require.NotEmpty(t, lsns[0])
		}},
		{"a read-only run: nothing", tx.Exec("SELECT 1"), []tx.Option{tx.ReadOnly()}, nil, func(t *testing.T, lsns []string) {
			require.Empty(t, lsns)
		}},
		{"COMMIT in user SQL: unknown", tx.Then(note("b"), tx.Exec("COMMIT")), nil, tx.ErrTxControl,
			func(t *testing.T, lsns []string) { require.Equal(t, []string{""}, lsns) }},
		{"a read-only run made writable: unknown", tx.Then(tx.Exec("SET TRANSACTION READ WRITE"), note("c")),
			[]tx.Option{tx.ReadOnly()}, nil, func(t *testing.T, lsns []string) { require.Equal(t, []string{""}, lsns) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := &recordingDB{Pool: newPool(t, 1)}
			_, err := tx.Run(ctxT(t), db, c.work, c.opts...)
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
			} else {
				require.NoError(t, err)
			}
			c.want(t, db.lsns)
		})
	}
}

// timelineDB is a recordingDB that also wants timelines.
type timelineDB struct {
	recordingDB
	timelines []uint32
}

func (d *timelineDB) RecordTimelineCommit(_ context.Context, timeline uint32, lsn string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timelines, d.lsns = append(d.timelines, timeline), append(d.lsns, lsn)
}

// TestTimelineRecorderHearsTheTimeline: a TimelineRecorder gets each known position with the primary's timeline
// (1 on a server never promoted), in the plain and the fused COMMIT round trips alike, and a lost one as "" through
// RecordCommit.
func TestTimelineRecorderHearsTheTimeline(t *testing.T) {
	for _, opts := range [][]tx.Option{nil, {tx.FuseCommit()}} {
		db := &timelineDB{recordingDB: recordingDB{Pool: newPool(t, 1)}}
		_, err := tx.Run(ctxT(t), db, note("timeline"), opts...)
		require.NoError(t, err)
		require.Equal(t, []uint32{1}, db.timelines)
		require.Len(t, db.lsns, 1)
		var current bool
		require.NoError(t, db.QueryRow(ctxT(t), "SELECT $1::pg_lsn <= pg_current_wal_insert_lsn()", db.lsns[0]).
			Scan(&current))
		require.True(t, current)
		_, err = tx.Run(ctxT(t), db, tx.Then(note("lost"), tx.Exec("COMMIT")))
		require.ErrorIs(t, err, tx.ErrTxControl)
		require.Equal(t, []uint32{1}, db.timelines, "no timeline for a lost position")
		require.Equal(t, "", db.lsns[1])
	}
}

// oddAcquirer lends what it is told to, and counts the releases Run makes.
type oddAcquirer struct {
	*pgxpool.Pool
	conn     bool
	err      error
	releases int
}

func (a *oddAcquirer) AcquireTx(ctx context.Context, _ pgx.TxOptions) (*pgx.Conn, func(), error) {
	release := func() { a.releases++ }
	if !a.conn {
		return nil, release, a.err
	}
	c, err := a.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.Conn(), func() { c.Release(); a.releases++ }, a.err
}

// TestAcquirerEdges: an Acquirer that returns an error along with a release gets it called once; one that returns
// no connection and no error is invalid input, not a crash.
func TestAcquirerEdges(t *testing.T) {
	pool := newPool(t, 1)
	boom := errors.New("no replica today")
	cases := []struct {
		name    string
		a       *oddAcquirer
		wantErr error
	}{
		{"error with a release", &oddAcquirer{Pool: pool, err: boom}, boom},
		{"no connection, no error", &oddAcquirer{Pool: pool}, tx.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tx.Run(ctxT(t), c.a, note("never"), tx.WithPolicy(retry.Never()))
			require.ErrorIs(t, err, c.wantErr)
			require.Equal(t, 1, c.a.releases)
			require.Empty(t, notes(t, pool))
			requireNoAcquired(t, pool)
		})
	}
}
