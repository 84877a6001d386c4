package tx_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

// Tests of round trips pgx refuses before sending any of them, and of texts the lexer must count as the server does,
// in every mode pgx sends a batch in (found by the sixth and seventh reviews of 2026-12-07).

func simpleMode(c *pgxpool.Config) {
	c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
}

// statementsRun is how many results the server gives for sql under the simple protocol.
func statementsRun(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	c, err := pool.Acquire(context.Background())
	require.NoError(t, err)
	defer c.Release()
	res, err := c.Conn().PgConn().Exec(context.Background(), sql).ReadAll()
	require.NoError(t, err)
	return len(res)
}

// pgx refuses, before sending anything, a simple-protocol batch whose statement has an argument its text does not use
// (or lacks one): nothing went out, so a COMMIT text after it ended nothing.
func TestABatchTheSimpleProtocolRefusedEndsNothing(t *testing.T) {
	for name, bad := range map[string]tx.Tx[pgconn.CommandTag]{
		"unused argument":       tx.Exec("INSERT INTO log (note) VALUES ($1)", "a", "b"),
		"insufficient argument": tx.Exec("INSERT INTO log (note) VALUES ($2)", "a"),
	} {
		t.Run(name, func(t *testing.T) {
			pool := clientFailurePool(t, simpleMode)
			_, err := tx.Run(ctxT(t), pool, tx.Then(bad, tx.Exec("COMMIT")))
			require.Error(t, err)
			require.NotErrorIs(t, err, tx.ErrTxControl, "nothing was sent: the transaction did not end")
			require.Empty(t, notes(t, pool))
		})
	}
}

// The same refusal under a Recover: nothing was sent, so its savepoint was never made; the fallback must run and
// commit with the work before it.
func TestABatchTheSimpleProtocolRefusedIsRecovered(t *testing.T) {
	pool := clientFailurePool(t, simpleMode)
	work := tx.Then(note("before"), tx.Recover(
		tx.Then(note("inner"), tx.Exec("INSERT INTO log (note) VALUES ($1)", "a", "b")),
		func(err error) tx.Tx[pgconn.CommandTag] { return note("fallback") }))
	_, err := tx.Run(ctxT(t), pool, work)
	require.NoError(t, err)
	require.Equal(t, []string{"before", "fallback"}, notes(t, pool))
}

// A dollar quote's tag may hold multibyte characters ($é$), as PostgreSQL's scanner reads one: a text of several
// statements with such a quote in it is invalid input, not one statement whose result the next one would read under
// the simple protocol.
func TestAMultibyteDollarTagHidesNoStatement(t *testing.T) {
	pool := clientFailurePool(t, simpleMode)
	hidden := "SELECT $é$'$é$; SELECT 2; SELECT '?'"
	require.Equal(t, 3, statementsRun(t, pool, hidden), "the server runs three statements")
	_, err := tx.Run(ctxT(t), pool, tx.Then(tx.QueryOne(hidden, pgx.RowTo[string]), tx.QueryOne("SELECT 42", pgx.RowTo[int])))
	require.ErrorIs(t, err, tx.ErrInvalid, "several statements in one text are invalid input")
}

func TestAMultibyteDollarTagHidesNoCommit(t *testing.T) {
	pool := clientFailurePool(t, simpleMode)
	hidden := "SELECT $é$'$é$; COMMIT; SELECT '?'"
	require.Equal(t, 3, statementsRun(t, pool, hidden))
	_, err := tx.Run(ctxT(t), pool, tx.Then(note("a"), tx.Then(tx.Exec(hidden), tx.Fail[int](errors.New("work failed")))))
	require.ErrorIs(t, err, tx.ErrInvalid)
	require.Empty(t, notes(t, pool))
}

type pairDoc struct{ A int }

// In exec mode pgx encodes a statement prepared by name == text against its described parameter types (a Go struct
// for jsonb). When the first statement of a round trip fails on the server and a MapError replaced its error, pgx has
// read the round trip to its end (pgconn is no longer busy): the round trip still went out, its SAVEPOINT with it, and
// Recover rolls back to it; encoding the statements again without parameter types would blame the jsonb one.
func TestAMappedFirstFailureWentOut(t *testing.T) {
	pool := onePool(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec })
	ctx := ctxT(t)
	_, err := pool.Exec(ctx, `CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE);
		CREATE TABLE docs (body jsonb NOT NULL); INSERT INTO log (note) VALUES ('dup')`)
	require.NoError(t, err)
	const insDoc = "INSERT INTO docs (body) VALUES ($1)"
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	_, err = c.Conn().Prepare(ctx, insDoc, insDoc)
	require.NoError(t, err)
	c.Release()

	errDup := errors.New("duplicate")
	work := tx.Bind(note("before"), func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] {
		return tx.Recover(
			tx.Then(tx.MapError(note("dup"), func(error) error { return errDup }), tx.Exec(insDoc, pairDoc{1})),
			func(err error) tx.Tx[pgconn.CommandTag] {
				return note("fallback")
			})
	})
	_, err = tx.Run(ctx, pool, work)
	require.NoError(t, err)
	require.Equal(t, []string{"dup", "before", "fallback"}, notes(t, pool))
}

// A statement given more arguments than its text has parameters: pgx refuses the batch before running any of it
// in every mode but exec (where the server refuses it). Nothing ran: a COMMIT text after it ended nothing.
func TestMismatchedArgumentsEndNothing(t *testing.T) {
	for _, m := range allSendModes() {
		for name, work := range map[string]tx.Tx[pgconn.CommandTag]{
			"first round trip": tx.Then(tx.Exec("INSERT INTO log (note) VALUES ($1)", "a", "b"), tx.Exec("COMMIT")),
			"after a Bind": tx.Bind(note("x"), func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] {
				return tx.Then(tx.Exec("INSERT INTO log (note) VALUES ($1)", "a", "b"), tx.Exec("COMMIT"))
			}),
		} {
			t.Run(m.name+"/"+name, func(t *testing.T) {
				pool := clientFailurePool(t, m.configure)
				_, err := tx.Run(ctxT(t), pool, work)
				require.Error(t, err)
				require.NotErrorIs(t, err, tx.ErrTxControl, "nothing of the round trip ran")
				require.Empty(t, notes(t, pool))
			})
		}
	}
}

// A statement pgx already has prepared (so no flush of the pending SAVEPOINT first) given one argument too many:
// pgx refuses the batch at build, nothing of it ran, the SAVEPOINT with it included. Recover must roll back to
// nothing and go on. (In the pipelined cache modes, a Tracer's and cache-describe, pgx closes the connection on
// such a refusal, having queued requests it never synced: the attempt is then run again on another connection.)
func TestMismatchedArgumentsAreRecovered(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := onePool(t, m.configure)
			ctx := ctxT(t)
			_, err := pool.Exec(ctx, `CREATE TABLE log (id serial PRIMARY KEY, note text NOT NULL UNIQUE)`)
			require.NoError(t, err)
			const ins = "INSERT INTO log (note) VALUES ($1)"
			_, err = tx.Run(ctx, pool, tx.Then(tx.Exec(ins, "z"), tx.Exec(ins, "y")))
			require.NoError(t, err)
			work := tx.Bind(note("before"), func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] {
				return tx.Recover(tx.Then(tx.Exec(ins, "a", "b"), tx.Exec(ins, "c")), func(err error) tx.Tx[pgconn.CommandTag] {
					return note("fallback")
				})
			})
			_, err = tx.Run(ctx, pool, work)
			require.NoError(t, err)
			require.Equal(t, []string{"z", "y", "before", "fallback"}, notes(t, pool))
		})
	}
}

// allSendModes are sendModes, the simple protocol and the cache-describe mode.
func allSendModes() []struct {
	name      string
	configure func(*pgxpool.Config)
} {
	return append([]struct {
		name      string
		configure func(*pgxpool.Config)
	}{{"simple", simpleMode}, {"cache describe", func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe }}}, sendModes...)
}

// Rows read by hand that fail a Scan, then Close: Func's batch runs the callbacks left exactly as pgx's own runs them
// (none: pgx's batch keeps the rows' error).
func TestNoCallbackRunsAfterRowsFailed(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			send := func(ctx context.Context, sendBatch func(context.Context, *pgx.Batch) pgx.BatchResults) int32 {
				var ran atomic.Int32
				b := &pgx.Batch{}
				b.Queue("SELECT NULL::int")
				b.Queue("SELECT 2").QueryRow(func(row pgx.Row) error { ran.Add(1); var n int; return row.Scan(&n) })
				br := sendBatch(ctx, b)
				var n int
				require.Error(t, br.QueryRow().Scan(&n))
				_ = br.Close()
				return ran.Load()
			}
			ctx := ctxT(t)
			c, err := pool.Acquire(ctx)
			require.NoError(t, err)
			plain := send(ctx, c.Conn().SendBatch)
			c.Release()
			var through int32
			_, err = tx.Run(ctx, pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				through = send(ctx, q.SendBatch)
				return 0, nil
			}))
			require.NoError(t, err)
			require.Equal(t, plain, through, "callbacks run as pgx runs them")
		})
	}
}

// A plain db (a wrapper that only begins transactions) in the modes where the SAVEPOINT rides with the statement:
// pgx refuses the round trip before sending it, and Recover rolls back to nothing and goes on.
func TestARefusedRoundTripIsRecoveredOnAPlainDB(t *testing.T) {
	for name, c := range map[string]struct {
		configure func(*pgxpool.Config)
		bad       tx.Tx[pgconn.CommandTag]
	}{
		"simple/unused argument": {simpleMode, tx.Exec("INSERT INTO log (note) VALUES ($1)", "a", "b")},
		"exec/named args":        {func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec }, tx.Exec("INSERT INTO log (note) VALUES (@n)", pgx.StrictNamedArgs{"m": "x"})},
		"simple/named args":      {simpleMode, tx.Exec("INSERT INTO log (note) VALUES (@n)", pgx.StrictNamedArgs{"m": "x"})},
	} {
		t.Run(name, func(t *testing.T) {
			pool := clientFailurePool(t, c.configure)
			work := tx.Bind(note("before"), func(pgconn.CommandTag) tx.Tx[pgconn.CommandTag] {
				return tx.Recover(tx.Then(note("inner"), c.bad), func(error) tx.Tx[pgconn.CommandTag] { return note("fallback") })
			})
			_, err := tx.Run(ctxT(t), beginOnly{pool}, work)
			require.NoError(t, err)
			require.Equal(t, []string{"before", "fallback"}, notes(t, pool))
		})
	}
}

// PostgreSQL ends a -- comment at a carriage return as at a newline, and so does the lexer.
func TestACarriageReturnEndsALineComment(t *testing.T) {
	pool := clientFailurePool(t, simpleMode)
	t.Run("one statement after it", func(t *testing.T) {
		sql := "-- the answer\rSELECT 42"
		require.Equal(t, 1, statementsRun(t, pool, sql), "the server runs one statement")
		v, err := tx.Run(ctxT(t), pool, tx.QueryOne(sql, pgx.RowTo[int]))
		require.NoError(t, err)
		require.Equal(t, 42, v)
	})
	t.Run("a COMMIT behind it", func(t *testing.T) {
		hidden := "INSERT INTO log (note) VALUES ('a') -- c\r; COMMIT"
		require.Equal(t, 2, statementsRun(t, pool, "SELECT 1 -- c\r; SELECT 2"), "the server runs two statements")
		_, err := tx.Run(ctxT(t), pool, tx.Then(tx.Exec(hidden), tx.Then(note("b"), tx.Fail[int](errors.New("work failed")))))
		require.ErrorIs(t, err, tx.ErrInvalid, "several statements in one text are invalid input")
		require.Empty(t, notes(t, pool), "nothing ran")
	})
	t.Run("a statement behind it", func(t *testing.T) {
		_, err := tx.Run(ctxT(t), pool, tx.Then(tx.Exec("SELECT 1 -- c\r; SELECT 2"), tx.QueryOne("SELECT 42", pgx.RowTo[int])))
		require.ErrorIs(t, err, tx.ErrInvalid, "several statements in one text are invalid input")
	})
}

// Func code's batch whose rows failed a Scan, with a COMMIT AND CHAIN queued after them: the server ran it, and the
// work before it committed, whether the code closes the batch at once or reads on first (in the pipelined modes pgx
// reads no result after failed rows). Run's error must say so (ErrTxControl), not "nothing committed".
func TestAChainedCommitAfterFailedRowsInAFuncBatchIsReported(t *testing.T) {
	for _, m := range allSendModes() {
		for _, readOn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/read on %v", m.name, readOn), func(t *testing.T) {
				pool := clientFailurePool(t, m.configure)
				_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					b := &pgx.Batch{}
					b.Queue("INSERT INTO log (note) VALUES ('a')")
					b.Queue("SELECT NULL::int")
					b.Queue("COMMIT AND CHAIN")
					br := q.SendBatch(ctx, b)
					if _, err := br.Exec(); err != nil {
						return 0, err
					}
					var n int
					serr := br.QueryRow().Scan(&n)
					require.Error(t, serr)
					if readOn {
						_, _ = br.Exec() // as code that reads every result does
					}
					_ = br.Close()
					return 0, serr
				}))
				require.Equal(t, []string{"a"}, notes(t, pool), "the server ran the COMMIT AND CHAIN")
				require.ErrorIs(t, err, tx.ErrTxControl, "the work committed: Run must not say nothing was")
			})
		}
	}
}

// The same after a failed callback (its Scan failed): pgx's Close reads the COMMIT AND CHAIN out of the
// handle's sight.
func TestAChainedCommitAfterAFailedCallbackInAFuncBatchIsReported(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				b := &pgx.Batch{}
				b.Queue("INSERT INTO log (note) VALUES ('a')")
				b.Queue("SELECT NULL::int").QueryRow(func(row pgx.Row) error { var n int; return row.Scan(&n) })
				b.Queue("COMMIT AND CHAIN")
				return 0, q.SendBatch(ctx, b).Close()
			}))
			require.Equal(t, []string{"a"}, notes(t, pool), "the server ran the COMMIT AND CHAIN")
			require.ErrorIs(t, err, tx.ErrTxControl, "the work committed: Run must not say nothing was")
		})
	}
}

// A Func batch pgx refuses before sending it ends nothing, whatever texts it holds: Run does not report
// ErrTxControl, and a Recover around it runs its fallback.
func TestARefusedFuncBatchWithACommitTextEndsNothing(t *testing.T) {
	refused := tx.Func(func(ctx context.Context, q pgx.Tx) (pgconn.CommandTag, error) {
		b := &pgx.Batch{}
		b.Queue("INSERT INTO log (note) VALUES (@n)", pgx.StrictNamedArgs{"m": "x"})
		b.Queue("COMMIT AND CHAIN")
		br := q.SendBatch(ctx, b)
		_, err := br.Exec()
		_ = br.Close()
		return pgconn.CommandTag{}, err
	})
	for _, m := range allSendModes() {
		t.Run(m.name+"/plain", func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			_, err := tx.Run(ctxT(t), pool, tx.Then(note("before"), refused))
			require.Error(t, err)
			require.Empty(t, notes(t, pool))
			require.NotErrorIs(t, err, tx.ErrTxControl, "nothing was sent: the transaction did not end")
		})
		t.Run(m.name+"/recover", func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			work := tx.Then(note("before"), tx.Recover(refused,
				func(error) tx.Tx[pgconn.CommandTag] { return note("fallback") }))
			_, err := tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, []string{"before", "fallback"}, notes(t, pool))
		})
	}
}

// Reading one result more than a Func batch queued gets pgx's error, directly or in a callback, not a panic.
func TestReadingPastAFuncBatchFailsAsPgxDoes(t *testing.T) {
	direct := func(ctx context.Context, q pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue("INSERT INTO log (note) VALUES ('a')")
		br := q.SendBatch(ctx, b)
		_, err := br.Exec()
		if err == nil {
			_, err = br.Exec() // one more than queued
		}
		return errors.Join(err, br.Close())
	}
	callback := func(ctx context.Context, q pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue("SELECT 1")
		b.QueuedQueries[0].Fn = func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return err
			}
			_, err := br.Exec() // one more than queued
			return err
		}
		return q.SendBatch(ctx, b).Close()
	}
	for _, m := range allSendModes() {
		for name, read := range map[string]func(context.Context, pgx.Tx) error{"direct": direct, "callback": callback} {
			t.Run(m.name+"/"+name, func(t *testing.T) {
				pool := clientFailurePool(t, m.configure)
				require.NotPanics(t, func() {
					_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
						return 0, read(ctx, q)
					}))
					require.ErrorContains(t, err, "no more results")
				})
				require.Empty(t, notes(t, pool))
			})
		}
	}
}

// A COMMIT AND CHAIN whose rows Func code never read nor closed is read when the batch closes: Run reports
// ErrTxControl, not a commit of both halves.
func TestAChainedCommitInRowsLeftOpenIsReported(t *testing.T) {
	for _, m := range allSendModes() {
		for _, how := range []string{"Query", "QueryRow"} {
			t.Run(m.name+"/"+how, func(t *testing.T) {
				pool := clientFailurePool(t, m.configure)
				_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					b := &pgx.Batch{}
					b.Queue("INSERT INTO log (note) VALUES ('a')")
					b.Queue("COMMIT AND CHAIN")
					b.Queue("INSERT INTO log (note) VALUES ('b')")
					br := q.SendBatch(ctx, b)
					if _, err := br.Exec(); err != nil {
						return 0, err
					}
					if how == "Query" {
						_, _ = br.Query() // rows left open
					} else {
						_ = br.QueryRow() // never scanned
					}
					return 0, br.Close()
				}))
				require.ErrorIs(t, err, tx.ErrTxControl)
				require.Equal(t, []string{"a"}, notes(t, pool), "the first half committed, the second was rolled back")
			})
		}
	}
}

// A batch pgx refuses because rows of an earlier Query are still open ("conn busy") was never sent: it ends nothing,
// and a Recover around it runs its fallback.
func TestABatchRefusedAsBusyEndsNothing(t *testing.T) {
	refused := tx.Func(func(ctx context.Context, q pgx.Tx) (pgconn.CommandTag, error) {
		rows, err := q.Query(ctx, "SELECT 1")
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		b := &pgx.Batch{}
		b.Queue("INSERT INTO log (note) VALUES ('x')")
		b.Queue("COMMIT AND CHAIN")
		br := q.SendBatch(ctx, b)
		_, err = br.Exec()
		_ = br.Close()
		rows.Close()
		return pgconn.CommandTag{}, err
	})
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			work := tx.Then(note("before"), tx.Recover(refused,
				func(error) tx.Tx[pgconn.CommandTag] { return note("fallback") }))
			_, err := tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, []string{"before", "fallback"}, notes(t, pool))
		})
	}
}

// Rows of a Func batch left open are closed, their tag read, before the batch reads on: a COMMIT AND CHAIN among
// them is reported whatever is read after it, a callback's unscanned row included, and a later ROLLBACK TO is not
// taken for the end of the transaction.
func TestRowsLeftOpenInAFuncBatchAnswerForTheirOwnStatement(t *testing.T) {
	type batchCase struct {
		send func(ctx context.Context, q pgx.Tx) error
		want []string // notes committed
		ctl  bool     // ErrTxControl
	}
	cases := map[string]batchCase{
		"a chained commit left open, then read on": {func(ctx context.Context, q pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO log (note) VALUES ('a')")
			b.Queue("COMMIT AND CHAIN")
			b.Queue("INSERT INTO log (note) VALUES ('b')")
			br := q.SendBatch(ctx, b)
			if _, err := br.Exec(); err != nil {
				return err
			}
			_, _ = br.Query() // rows left open
			if _, err := br.Exec(); err != nil {
				return err
			}
			return br.Close()
		}, []string{"a"}, true},
		"a callback's unscanned row, in the middle": {func(ctx context.Context, q pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO log (note) VALUES ('a')")
			b.Queue("COMMIT AND CHAIN").QueryRow(func(pgx.Row) error { return nil })
			b.Queue("INSERT INTO log (note) VALUES ('b')")
			return q.SendBatch(ctx, b).Close()
		}, []string{"a"}, true},
		"a callback's unscanned row, last": {func(ctx context.Context, q pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO log (note) VALUES ('a')")
			b.Queue("COMMIT AND CHAIN").QueryRow(func(pgx.Row) error { return nil })
			return q.SendBatch(ctx, b).Close()
		}, []string{"a"}, true},
		"a rollback to a savepoint after rows left open": {func(ctx context.Context, q pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue("SAVEPOINT s")
			b.Queue("INSERT INTO log (note) VALUES ('x')")
			b.Queue("SELECT 1")
			b.Queue("ROLLBACK TO SAVEPOINT s")
			b.Queue("INSERT INTO log (note) VALUES ('y')")
			br := q.SendBatch(ctx, b)
			for range 2 {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			_, _ = br.Query() // rows left open
			if _, err := br.Exec(); err != nil {
				return err
			}
			return br.Close()
		}, []string{"y"}, false},
	}
	for _, m := range allSendModes() {
		for name, c := range cases {
			t.Run(m.name+"/"+name, func(t *testing.T) {
				pool := clientFailurePool(t, m.configure)
				_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					return 0, c.send(ctx, q)
				}))
				if c.ctl {
					require.ErrorIs(t, err, tx.ErrTxControl)
				} else {
					require.NoError(t, err)
				}
				require.Equal(t, c.want, notes(t, pool))
			})
		}
	}
}

// A savepoint's Rollback queued while rows of Func code are still open stays queued when the next statement is
// refused as busy: the rolled-back insert is not committed, even by code that ignores that refusal.
func TestARollbackQueuedWhileBusyIsNotLost(t *testing.T) {
	for _, m := range sendModes {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			_, err := tx.Run(ctxT(t), pool, tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				sp, err := q.Begin(ctx)
				if err != nil {
					return 0, err
				}
				if _, err := sp.Exec(ctx, "INSERT INTO log (note) VALUES ('undone')"); err != nil {
					return 0, err
				}
				rows, err := q.Query(ctx, "SELECT 1")
				if err != nil {
					return 0, err
				}
				if err := sp.Rollback(ctx); err != nil {
					return 0, err
				}
				_, busyErr := q.Exec(ctx, "SELECT 2") // refused: the rows are open
				rows.Close()
				if busyErr == nil {
					return 0, errors.New("want the statement refused while rows are open")
				}
				_, err = q.Exec(ctx, "INSERT INTO log (note) VALUES ('kept')")
				return 0, err
			}))
			require.NoError(t, err)
			require.Equal(t, []string{"kept"}, notes(t, pool))
		})
	}
}

// A statement of the runner refused as busy, rows of Func code being still open, leaves its pending SAVEPOINT
// pending: a Recover around it rolls back to nothing and goes on once the rows are closed.
func TestARunnerStatementRefusedAsBusyKeepsItsSavepointPending(t *testing.T) {
	for _, m := range allSendModes() {
		t.Run(m.name, func(t *testing.T) {
			pool := clientFailurePool(t, m.configure)
			var rows pgx.Rows
			work := tx.Then(
				tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
					var err error
					rows, err = q.Query(ctx, "SELECT 1")
					return 0, err
				}),
				tx.Then(
					tx.Recover(tx.Exec("INSERT INTO log (note) VALUES ('refused')"), func(error) tx.Tx[pgconn.CommandTag] {
						rows.Close()
						return tx.Pure(pgconn.CommandTag{})
					}),
					tx.Exec("INSERT INTO log (note) VALUES ('kept')"),
				))
			_, err := tx.Run(ctxT(t), pool, work)
			require.NoError(t, err)
			require.Equal(t, []string{"kept"}, notes(t, pool))
		})
	}
}
