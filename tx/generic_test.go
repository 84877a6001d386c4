package tx_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

// beginOnly hides everything of a pool but BeginTx, so Run takes the path it takes for wrappers and test doubles.
type beginOnly struct{ p *pgxpool.Pool }

func (b beginOnly) BeginTx(ctx context.Context, o pgx.TxOptions) (pgx.Tx, error) {
	return b.p.BeginTx(ctx, o)
}

func TestPlainDB(t *testing.T) {
	pool := newPool(t, 2)
	db := beginOnly{pool}
	ctx := ctxT(t)

	t.Run("statements, savepoints, settings and hooks", func(t *testing.T) {
		hooked := 0
		inner := tx.Then(note("rolled back"), tx.Exec("SELECT 1/0"))
		work := tx.Then(tx.SetLocal("app.who", "plain"), tx.Then(note("a"),
			tx.Then(tx.Recover(inner, func(error) tx.Tx[pgconn.CommandTag] { return note("b") }),
				tx.Then(tx.AfterCommit(func(context.Context) { hooked++ }),
					tx.All([]tx.Tx[string]{
						tx.QueryOne("SELECT current_setting('app.who')", pgx.RowTo[string]),
						tx.QueryOne("SELECT string_agg(note, ',' ORDER BY id) FROM log", pgx.RowTo[string]),
					})))))
		v, err := tx.Run(ctx, db, work)
		require.NoError(t, err)
		require.Equal(t, []string{"plain", "a,b"}, v)
		require.Equal(t, 1, hooked)
		require.Equal(t, []string{"a", "b"}, notes(t, pool))
	})
	t.Run("a 40001 at COMMIT is retried", func(t *testing.T) {
		failAtCommit(t, pool, 1)
		log := &attemptLog{}
		_, err := tx.Run(ctx, db, note("retried"), tx.WithObserver(log), tx.WithPolicy(fastPolicy(3)))
		require.NoError(t, err)
		require.Equal(t, 2, log.count())
		require.Contains(t, notes(t, pool), "retried")
	})
	requireNoAcquired(t, pool)
}

func TestSlogObserver(t *testing.T) {
	pool := newPool(t, 1)
	failAtCommit(t, pool, 1)
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, err := tx.Run(ctxT(t), pool, note("x"), tx.WithObserver(tx.SlogObserver(logger)), tx.WithPolicy(fastPolicy(3)))
	require.NoError(t, err)
	out := buf.String()
	require.Contains(t, out, "pgxact: attempt failed")
	require.Contains(t, out, "sqlstate=40001")
	require.Contains(t, out, "class=Serialization")
	require.Contains(t, out, "retry=true")
	require.Contains(t, out, "pgxact: committed")
	require.Contains(t, out, "attempts=2")
}
