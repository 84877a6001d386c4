package tx_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

func TestPanicRollsBackAndPanicsAgain(t *testing.T) {
	pool := newPool(t, 1)
	work := tx.Then(note("before panic"), tx.Func(func(context.Context, pgx.Tx) (int, error) { panic("user bug") }))
	require.PanicsWithValue(t, "user bug", func() { _, _ = tx.Run(ctxT(t), pool, work) })
	require.Empty(t, notes(t, pool))
	requireNoAcquired(t, pool)
}

// TestPanicWithRowsOpen: a panic while a result is still being read leaves the connection busy. Nothing may be
// committed, and the connection must not come back busy and inside the transaction: a pool's is discarded, and a
// *pgx.Conn is closed, as pgx closes one under a busy pgx.Tx.
func TestPanicWithRowsOpen(t *testing.T) {
	pool := newPool(t, 1)
	ctx := ctxT(t)
	work := tx.Then(note("before panic"), tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
		rows, err := q.Query(ctx, "SELECT generate_series(1, 100000)")
		if err != nil {
			return 0, err
		}
		rows.Next()
		panic("user bug")
	}))
	t.Run("pool", func(t *testing.T) {
		require.PanicsWithValue(t, "user bug", func() { _, _ = tx.Run(ctx, pool, work) })
		requireNoAcquired(t, pool)
		require.Empty(t, notes(t, pool))
		_, err := tx.Run(ctx, pool, note("after"))
		require.NoError(t, err)
		require.Equal(t, []string{"after"}, notes(t, pool))
		_, err = pool.Exec(ctx, "TRUNCATE log")
		require.NoError(t, err)
	})
	t.Run("*pgx.Conn", func(t *testing.T) {
		conn := connTo(t, pool)
		require.PanicsWithValue(t, "user bug", func() { _, _ = tx.Run(ctx, conn, work) })
		require.True(t, conn.IsClosed(), "a busy connection inside the transaction is closed, not handed back")
		require.Empty(t, notes(t, pool))
	})
}

func TestCancelledContext(t *testing.T) {
	pool := newPool(t, 1)

	t.Run("mid-query: rolled back, returned promptly, connection not leaked", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := tx.Run(ctx, pool, tx.Then(note("cancelled"), tx.Exec("SELECT pg_sleep(10)")))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 5*time.Second)
		require.Empty(t, notes(t, pool))
		requireNoAcquired(t, pool)
		require.Zero(t, count(t, pool, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"))
	})
	t.Run("during a pause between attempts: both the cancellation and the last failure are reachable", func(t *testing.T) {
		pause := retry.WithBackoff(retry.Constant(5 * time.Second))
		serialization := &pgconn.PgError{Code: "40001", Message: "synthetic"}
		busy := &pgconn.PgError{Code: "55P03", Message: "synthetic"}
		cases := []struct {
			name string
			run  func(ctx context.Context) error
			last *pgconn.PgError
		}{
			{"Run's backoff", func(ctx context.Context) error {
				_, err := tx.Run(ctx, pool, tx.Fail[int](serialization), tx.WithPolicy(retry.New(retry.On(retry.Serialization), pause)))
				return err
			}, serialization},
			{"a scoped Retry's backoff", func(ctx context.Context) error {
				_, err := tx.Run(ctx, pool, tx.Retry(retry.New(retry.On(retry.LockNotAvailable), pause), tx.Fail[int](busy)))
				return err
			}, busy},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				time.AfterFunc(100*time.Millisecond, cancel)
				start := time.Now()
				err := c.run(ctx)
				require.Less(t, time.Since(start), 4*time.Second, "the pause ended with ctx, not after its 5 s")
				require.ErrorIs(t, err, context.Canceled)
				require.ErrorIs(t, err, c.last)
				requireNoAcquired(t, pool)
			})
		}
	})
	t.Run("before COMMIT: rolled back, not an unknown outcome", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Two shapes: a write, whose id the runner has looked at, and a read whose last step is in Go, which leaves the
		// id to COMMIT's own batch: a COMMIT that never left must not become an unknown outcome in either.
		works := map[string]tx.Tx[int]{
			"after a write": tx.Bind(note("cancelled before commit"), func(pgconn.CommandTag) tx.Tx[int] {
				cancel()
				return tx.Pure(1)
			}),
			"after a read": tx.Bind(tx.QueryOne("SELECT 1", pgx.RowTo[int]), func(v int) tx.Tx[int] {
				cancel()
				return tx.Pure(v)
			}),
		}
		for name, work := range works {
			ctx, cancel = context.WithCancel(context.Background())
			_, err := tx.Run(ctx, pool, work)
			require.ErrorIs(t, err, context.Canceled, name)
			require.NotErrorIs(t, err, tx.ErrCommitUnknown, name)
			require.Empty(t, notes(t, pool), name)
			requireNoAcquired(t, pool)
			cancel()
		}
	})
	t.Run("before Run: nothing happens", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := tx.Run(ctx, pool, note("never"))
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, notes(t, pool))
	})
}

func TestBadInput(t *testing.T) {
	pool := newPool(t, 1)
	ctx := ctxT(t)
	var nilPool *pgxpool.Pool
	run := func(t tx.Tx[pgconn.CommandTag], opts ...tx.Option) error {
		_, err := tx.Run(ctx, pool, tx.Then(note("must not commit"), t), opts...)
		return err
	}
	tag := func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] { return note("x") }
	cases := []struct {
		name string
		err  error
	}{
		{"nil db", func() error { _, err := tx.Run(ctx, nil, note("x")); return err }()},
		{"typed nil pool", func() error { _, err := tx.Run(ctx, nilPool, note("x")); return err }()},
		{"zero Tx", func() error { _, err := tx.Run(ctx, pool, tx.Tx[int]{}); return err }()},
		{"zero Tx inside a combinator", run(tx.Then(tx.Tx[int]{}, note("x")))},
		{"nil Func", run(tx.Map(tx.Func[int](nil), func(int) pgconn.CommandTag { return pgconn.CommandTag{} }))},
		{"nil Map function", run(tx.Map[pgconn.CommandTag, pgconn.CommandTag](note("x"), nil))},
		{"nil Bind function", run(tx.Bind[pgconn.CommandTag, pgconn.CommandTag](note("x"), nil))},
		{"nil Recover function", run(tx.Recover(note("x"), nil))},
		{"nil AfterCommit hook", run(tx.Bind(tx.AfterCommit(nil), func(struct{}) tx.Tx[pgconn.CommandTag] { return note("y") }))},
		{"nil scan", run(tx.Map(tx.Query[int]("SELECT 1", nil), func([]int) pgconn.CommandTag { return pgconn.CommandTag{} }))},
		{"Fail(nil)", run(tx.Fail[pgconn.CommandTag](nil))},
		{"hostile SetLocal name", run(tx.Bind(tx.SetLocal("x'; DROP TABLE log; --", "1"), func(struct{}) tx.Tx[pgconn.CommandTag] { return note("y") }))},
		{"unknown isolation level", run(note("y"), tx.WithIsolation("chaos"))},
		{"nil option", run(note("y"), nil)},
		{"nil observer", run(note("y"), tx.WithObserver(nil))},
		{"typed nil observer", run(note("y"), tx.WithObserver((*countingObserver)(nil)))},
		{"negative attempts", run(note("y"), tx.WithPolicy(retry.New(retry.MaxAttempts(-1))))},
		{"bad scoped policy", run(tx.Retry(retry.New(retry.MaxElapsed(-time.Second)), note("y")))},
		{"a query exec mode as a statement's first argument", run(tx.Exec("SELECT $1::int",
			pgx.QueryExecModeSimpleProtocol, 1))},
		{"result formats as a statement's first argument", run(tx.Map(tx.QueryOne("SELECT $1::int", pgx.RowTo[int],
			pgx.QueryResultFormats{pgx.TextFormatCode}, 1), func(int) pgconn.CommandTag { return pgconn.CommandTag{} }))},
		{"several statements in one text", run(tx.Exec("SELECT 1; SELECT 2"))},
		{"no statement: a comment", run(tx.Exec("-- nothing"))},
		{"no statement: blanks", run(tx.Exec(" \n"))},
		{"no statement: a block comment and ';'", run(tx.Exec("/* x */ ;"))},
		{"recovering bad input", run(tx.Recover(tx.Fail[pgconn.CommandTag](nil), func(error) tx.Tx[pgconn.CommandTag] { return note("z") }))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorIs(t, c.err, tx.ErrInvalid)
		})
	}
	require.Empty(t, notes(t, pool), "nothing committed")
	_ = tag
}

// TestFunctionBodyInSQL: a routine whose body is written in SQL (BEGIN ATOMIC ... ; ... ; END) is one statement,
// ';'s and all, in every way a statement can travel; it was refused as several.
func TestFunctionBodyInSQL(t *testing.T) {
	const create = `CREATE FUNCTION two() RETURNS int LANGUAGE sql
		BEGIN ATOMIC
			SELECT CASE WHEN true THEN 1 END;
			SELECT 2;
		END`
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			ctx := ctxT(t)
			got, err := tx.Run(ctx, pool, tx.Then(tx.Exec(create), tx.QueryOne("SELECT two()", pgx.RowTo[int])))
			require.NoError(t, err)
			require.Equal(t, 2, got, "a SQL function returns its last statement's value")
		})
	}
}

// An identifier may hold '$' (x$a$): texts of several statements are refused as such, and a statement's result is
// never read as another's (under the simple protocol the server would run them all).
func TestSeveralStatementsBehindADollarInAName(t *testing.T) {
	pool := onePool(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol })
	ctx := ctxT(t)
	_, err := pool.Exec(ctx, "CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE)")
	require.NoError(t, err)
	_, err = tx.Run(ctx, pool, tx.All([]tx.Tx[int]{
		tx.QueryOne("SELECT 1 AS x$a$; SELECT 666 AS y$a$", pgx.RowTo[int]),
		tx.QueryOne("SELECT 2", pgx.RowTo[int]),
	}))
	require.ErrorIs(t, err, tx.ErrInvalid)
	_, err = tx.Run(ctx, pool, tx.Then(note("inside"),
		tx.Exec("SELECT 1 AS x$a$; COMMIT; INSERT INTO log (note) VALUES ('outside'); SELECT 1 AS y$a$")))
	require.ErrorIs(t, err, tx.ErrInvalid)
	require.Empty(t, notes(t, pool), "nothing committed")
	got, err := tx.Run(ctx, pool, tx.QueryOne("SELECT 7 AS x$a$", pgx.RowTo[int]))
	require.NoError(t, err, "one statement with a '$' in a name runs")
	require.Equal(t, 7, got)
}

// TestConnAlreadyInATransaction: Run on a *pgx.Conn that its caller left inside a transaction must not send BEGIN
// (a mere warning there) and then COMMIT the caller's transaction: it refuses, and the caller's work stays open.
func TestConnAlreadyInATransaction(t *testing.T) {
	pool := newPool(t, 1)
	ctx := ctxT(t)
	conn := connTo(t, pool)
	_, err := conn.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "INSERT INTO log(note) VALUES ('the caller''s')")
	require.NoError(t, err)

	_, err = tx.Run(ctx, conn, note("ours"))
	require.ErrorIs(t, err, tx.ErrInvalid)
	require.Equal(t, byte('T'), conn.PgConn().TxStatus(), "the caller's transaction is still open")
	require.Empty(t, notes(t, pool), "nothing committed")
	_, err = conn.Exec(ctx, "ROLLBACK")
	require.NoError(t, err)
	_, err = tx.Run(ctx, conn, note("ours"))
	require.NoError(t, err)
	require.Equal(t, []string{"ours"}, notes(t, pool))
}

// TestDeadConnIsNotInvalidInput: a *pgx.Conn that died inside a transaction keeps the status of its last answer
// ('T'); Run on it again must report the dead connection, not a caller's open transaction.
func TestDeadConnIsNotInvalidInput(t *testing.T) {
	pool := newPool(t, 1)
	ctx := ctxT(t)
	conn := connTo(t, pool)
	kill := tx.Bind(tx.Exec("SELECT 1"), func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] {
		return tx.Exec("SELECT pg_terminate_backend(pg_backend_pid())")
	})
	_, err := tx.Run(ctx, conn, kill)
	require.Error(t, err)
	require.True(t, conn.IsClosed())
	_, err = tx.Run(ctx, conn, tx.Exec("SELECT 1"))
	require.Error(t, err)
	require.NotErrorIs(t, err, tx.ErrInvalid)
}

func TestClosedPool(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), pgtest.ConnString(t))
	require.NoError(t, err)
	pool.Close()
	_, err = tx.Run(ctxT(t), pool, tx.Exec("SELECT 1"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "closed pool")
}

func TestIsolationAndAccessMode(t *testing.T) {
	pool := newPool(t, 1)
	ctx := ctxT(t)
	show := tx.QueryOne("SELECT current_setting('transaction_isolation') || ' ' || current_setting('transaction_read_only') || ' ' || current_setting('transaction_deferrable')", pgx.RowTo[string])
	cases := []struct {
		opts []tx.Option
		want string
	}{
		{nil, "serializable off off"},
		{[]tx.Option{tx.WithIsolation("")}, "serializable off off"},
		{[]tx.Option{tx.WithIsolation(pgx.ReadCommitted)}, "read committed off off"},
		{[]tx.Option{tx.WithIsolation(pgx.RepeatableRead), tx.ReadOnly()}, "repeatable read on off"},
		{[]tx.Option{tx.ReadOnly(), tx.Deferrable()}, "serializable on on"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			v, err := tx.Run(ctx, pool, show, c.opts...)
			require.NoError(t, err)
			require.Equal(t, c.want, v)
		})
	}
	t.Run("read only refuses writes", func(t *testing.T) {
		_, err := tx.Run(ctx, pool, note("x"), tx.ReadOnly())
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "25006", pgErr.Code)
	})
}

// conflict runs two transactions that both read both rows before either writes (a barrier, not a sleep), then each
// writes a different row: at SERIALIZABLE one of them must fail with 40001.
func conflict(t *testing.T, pool *pgxpool.Pool, policy retry.Policy) (errs []error, attempts int32) {
	t.Helper()
	var arrived atomic.Int32
	gate := make(chan struct{})
	var tries atomic.Int32
	work := func(id int) tx.Tx[int] {
		read := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			tries.Add(1)
			var sum int
			if err := q.QueryRow(ctx, "SELECT sum(balance) FROM accounts").Scan(&sum); err != nil {
				return 0, err
			}
			if arrived.Add(1) == 2 {
				close(gate)
			}
			if arrived.Load() <= 2 {
				<-gate
			}
			return sum, nil
		})
		return tx.Bind(read, func(sum int) tx.Tx[int] {
			return tx.Map(tx.Exec("UPDATE accounts SET balance = balance - 150 WHERE id = $1 AND $2::int >= 150", id, sum),
				func(c pgconn.CommandTag) int { return int(c.RowsAffected()) })
		})
	}
	var wg sync.WaitGroup
	errs = make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = tx.Run(ctxT(t), pool, work(i+1), tx.WithPolicy(policy))
		}()
	}
	wg.Wait()
	return errs, tries.Load()
}

func TestSerializationFailure(t *testing.T) {
	t.Run("without retries it surfaces as 40001", func(t *testing.T) {
		pool := newPool(t, 2)
		errs, _ := conflict(t, pool, retry.Never())
		failed := 0
		for _, err := range errs {
			if err != nil {
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr)
				require.Equal(t, "40001", pgErr.Code)
				failed++
			}
		}
		require.Equal(t, 1, failed)
	})
	t.Run("with the default policy the loser is restarted and sees the winner's write", func(t *testing.T) {
		pool := newPool(t, 2)
		errs, tries := conflict(t, pool, retry.Default())
		require.NoError(t, errors.Join(errs...))
		require.Equal(t, int32(3), tries)
		require.Equal(t, 50, count(t, pool, "SELECT sum(balance) FROM accounts"), "one withdrawal, then the re-run saw too little")
	})
}

func TestThousandRunsLeakNothing(t *testing.T) {
	cfg := pgtest.Config(t)
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(context.Background(), "CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE)")
	require.NoError(t, err)

	var wg sync.WaitGroup
	var panics, errs atomic.Int32
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 252 { // 4 workers × 252 runs: 252 of each kind
				func() {
					defer func() {
						if recover() != nil {
							panics.Add(1)
						}
					}()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					var work tx.Tx[int]
					switch i % 4 {
					case 0:
						work = tx.Then(tx.Exec("INSERT INTO log(note) VALUES ($1)", fmt.Sprint(w*1000+i)), tx.Pure(1))
					case 1:
						work = tx.Then(tx.Exec("SELECT 1/0"), tx.Pure(1))
					case 2:
						work = tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
							_, _ = q.Exec(ctx, "SELECT 1")
							panic("boom")
						})
					case 3:
						c, cancelNow := context.WithTimeout(ctx, time.Millisecond)
						defer cancelNow()
						ctx = c
						work = tx.Then(tx.Exec("SELECT pg_sleep(0.05)"), tx.Pure(1))
					}
					if _, err := tx.Run(ctx, pool, work); err != nil {
						errs.Add(1)
					}
				}()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int32(252), panics.Load())
	require.Equal(t, int32(504), errs.Load())
	requireNoAcquired(t, pool)
	require.Equal(t, 252, count0(t, pool, "SELECT count(*) FROM log"))
}

func count0(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

func TestDeadSingleConnectionIsNotRetried(t *testing.T) {
	conn, err := pgx.Connect(context.Background(), pgtest.ConnString(t))
	require.NoError(t, err)
	require.NoError(t, conn.Close(context.Background()))
	var attempts int
	_, err = tx.Run(ctxT(t), conn, tx.Exec("SELECT 1"), tx.WithObserver(countAttempts(&attempts)))
	require.Error(t, err)
	require.Equal(t, 1, attempts)
}

type attemptCounter struct {
	tx.NopObserver
	n *int
}

func (c attemptCounter) StartAttempt(ctx context.Context, _ int) context.Context { *c.n++; return ctx }

func countAttempts(n *int) tx.Observer { return attemptCounter{n: n} }
