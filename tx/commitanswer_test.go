package tx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// commitComplete is the server's CommandComplete message for COMMIT.
var commitComplete = []byte("C\x00\x00\x00\x0bCOMMIT\x00")

// cutAfterCommit delivers the server's bytes up to COMMIT's CommandComplete, once armed, and fails every read after
// it, as a connection lost right after the server answered.
type cutAfterCommit struct {
	net.Conn
	armed, cut *atomic.Bool
}

func (c cutAfterCommit) Read(b []byte) (int, error) {
	if c.cut.Load() {
		return 0, errors.New("cut")
	}
	n, err := c.Conn.Read(b)
	if c.armed.Load() {
		if i := bytes.Index(b[:n], commitComplete); i >= 0 {
			c.cut.Store(true)
			_ = c.Conn.Close()
			return i + len(commitComplete), nil
		}
	}
	return n, err
}

// TestAnsweredCommitIsKnown: once the server has answered COMMIT, the transaction has committed, whatever fails
// after — the connection before its ReadyForQuery (with the server unreachable, so that nothing can be asked), or
// the commit-position query a CommitRecorder wants.
func TestAnsweredCommitIsKnown(t *testing.T) {
	works := map[string]func(q pgx.Tx, ctx context.Context) error{
		"COMMIT alone (the id looked at with the insert)": func(q pgx.Tx, ctx context.Context) error {
			_, err := q.Exec(ctx, "INSERT INTO cc VALUES (1)")
			return err
		},
		"COMMIT in a batch with the id look": func(q pgx.Tx, ctx context.Context) error {
			var n int
			return q.QueryRow(ctx, "INSERT INTO cc VALUES (1) RETURNING n").Scan(&n)
		},
	}
	for name, work := range works {
		t.Run("connection lost after the answer: "+name, func(t *testing.T) {
			cfg := pgtest.Config(t)
			var armed, cut atomic.Bool
			dial := cfg.ConnConfig.DialFunc
			cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if cut.Load() {
					return nil, errors.New("server unreachable")
				}
				conn, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return cutAfterCommit{Conn: conn, armed: &armed, cut: &cut}, nil
			}
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			_, err = pool.Exec(ctxT(t), "CREATE TABLE cc (n int)")
			require.NoError(t, err)
			armed.Store(true)
			var hooks atomic.Int32
			_, err = tx.Run(ctxT(t), pool, tx.Then(tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				return 0, work(q, ctx)
			}), tx.AfterCommit(func(context.Context) { hooks.Add(1) })), tx.WithPolicy(retry.Never()))
			require.True(t, cut.Load(), "the connection was cut")
			require.NoError(t, err, "COMMIT's answer arrived: the transaction committed")
			require.Equal(t, int32(1), hooks.Load())
		})
	}
	t.Run("the commit position refused", func(t *testing.T) {
		admin := newPool(t, 1)
		role := pgx.Identifier{fmt.Sprintf("pgxact_nolsn_%d", time.Now().UnixNano())}
		for _, sql := range []string{
			"CREATE ROLE " + role.Sanitize() + " LOGIN NOSUPERUSER",
			"GRANT ALL ON log, log_id_seq TO " + role.Sanitize(),
			"REVOKE EXECUTE ON FUNCTION pg_current_wal_insert_lsn() FROM PUBLIC",
		} {
			_, err := admin.Exec(ctxT(t), sql)
			require.NoError(t, err)
		}
		t.Cleanup(func() {
			_, _ = admin.Exec(context.Background(), "DROP OWNED BY "+role.Sanitize())
			_, _ = admin.Exec(context.Background(), "DROP ROLE "+role.Sanitize())
		})
		cfg := admin.Config().Copy()
		cfg.ConnConfig.User = role[0]
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		db := &recordingDB{Pool: pool}
		_, err = tx.Run(ctxT(t), db, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			var id int
			return id, q.QueryRow(ctx, "INSERT INTO log (note) VALUES ('x') RETURNING id").Scan(&id)
		}))
		require.NoError(t, err, "committed, with its position unknown")
		require.Equal(t, []string{""}, db.lsns)
		require.Equal(t, []string{"x"}, notes(t, admin))
	})
}

// TestRowsLeftOpenAtCommit: Func code that leaves rows unread gets a plain error, not an unknown outcome: COMMIT was
// never sent. Nothing is committed, and no connection leaks.
func TestRowsLeftOpenAtCommit(t *testing.T) {
	pool := newPool(t, 1)
	_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		if _, err := q.Exec(ctx, "INSERT INTO log (note) VALUES ('open')"); err != nil {
			return 0, err
		}
		_, err := q.Query(ctx, "SELECT g FROM generate_series(1, 10000) g")
		return 0, err
	}))
	require.Error(t, err)
	require.NotErrorIs(t, err, tx.ErrCommitUnknown)
	require.Contains(t, err.Error(), "busy")
	require.Empty(t, notes(t, pool))
	requireNoAcquired(t, pool)
}
