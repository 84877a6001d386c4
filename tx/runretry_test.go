package tx_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// attemptLog is an Observer counting attempts and remembering their SQLSTATEs.
type attemptLog struct {
	tx.NopObserver
	mu       sync.Mutex
	attempts int
	states   []string
	onRetry  func()
}

func (l *attemptLog) EndAttempt(_ context.Context, a tx.AttemptInfo) {
	l.mu.Lock()
	l.attempts++
	if a.Err != nil {
		l.states = append(l.states, a.SQLState)
	}
	f := l.onRetry
	l.mu.Unlock()
	if a.Retry && f != nil {
		f()
	}
}

func (l *attemptLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.attempts
}

// failAtCommit installs a deferred constraint trigger on log that raises 40001 at COMMIT while the sequence
// fail_budget has values left: a real serialization-failure SQLSTATE from the server, at commit time.
func failAtCommit(t *testing.T, pool *pgxpool.Pool, times int) {
	t.Helper()
	_, err := pool.Exec(context.Background(), fmt.Sprintf(`
		CREATE SEQUENCE fail_budget MINVALUE 0 START 1 MAXVALUE %d NO CYCLE;
		CREATE FUNCTION fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			BEGIN
				PERFORM nextval('fail_budget');
			EXCEPTION WHEN sequence_generator_limit_exceeded THEN
				RETURN NULL;
			END;
			RAISE EXCEPTION 'injected at commit' USING ERRCODE = '40001';
		END $$;
		CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON log DEFERRABLE INITIALLY DEFERRED
			FOR EACH ROW EXECUTE FUNCTION fail_at_commit();`, times))
	require.NoError(t, err)
}

func fastPolicy(n int, extra ...retry.Option) retry.Policy {
	opts := append([]retry.Option{retry.On(retry.Serialization, retry.Deadlock, retry.ConnectionLost),
		retry.MaxAttempts(n), retry.WithBackoff(retry.Constant(time.Millisecond))}, extra...)
	return retry.New(opts...)
}

func TestRetryRestartsTheWholeTransaction(t *testing.T) {
	ctx := ctxT(t)

	t.Run("a 40001 raised at COMMIT restarts the transaction", func(t *testing.T) {
		pool := newPool(t, 1)
		failAtCommit(t, pool, 2)
		log := &attemptLog{}
		var bodies atomic.Int32
		work := tx.Then(tx.Func(func(context.Context, pgx.Tx) (int, error) { bodies.Add(1); return 0, nil }), note("once"))
		_, err := tx.Run(ctx, pool, work, tx.WithObserver(log), tx.WithPolicy(fastPolicy(5)))
		require.NoError(t, err)
		require.Equal(t, 3, log.count())
		require.Equal(t, int32(3), bodies.Load(), "the body ran again each time")
		require.Equal(t, []string{"40001", "40001"}, log.states)
		require.Equal(t, []string{"once"}, notes(t, pool))
	})
	t.Run("exhaustion returns a RetryError that still reaches the PgError", func(t *testing.T) {
		pool := newPool(t, 1)
		failAtCommit(t, pool, 100)
		_, err := tx.Run(ctx, pool, note("never"), tx.WithPolicy(fastPolicy(4)))
		var re *tx.RetryError
		require.ErrorAs(t, err, &re)
		require.Equal(t, 4, re.Attempts)
		require.Positive(t, re.Elapsed)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "40001", pgErr.Code)
		require.Empty(t, notes(t, pool))
	})
	t.Run("a real deadlock is retried", func(t *testing.T) {
		pool := newPool(t, 2)
		var arrived atomic.Int32
		gate := make(chan struct{})
		lock := func(first, second int) tx.Tx[pgconn.CommandTag] {
			grab := tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
				if _, err := q.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = $1", first); err != nil {
					return 0, err
				}
				if arrived.Add(1) == 2 {
					close(gate)
				}
				if arrived.Load() <= 2 {
					<-gate // both hold their first lock before either asks for the second
				}
				return 0, nil
			})
			return tx.Then(grab, tx.Exec("UPDATE accounts SET balance = balance - 1 WHERE id = $1", second))
		}
		log := &attemptLog{}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, order := range [][2]int{{1, 2}, {2, 1}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = tx.Run(ctx, pool, lock(order[0], order[1]), tx.WithObserver(log), tx.WithPolicy(fastPolicy(5)))
			}()
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		require.Contains(t, log.states, "40P01")
		require.Equal(t, 200, count(t, pool, "SELECT sum(balance) FROM accounts"))
	})
	t.Run("a terminated backend is retried on a new connection", func(t *testing.T) {
		pool := newPool(t, 1)
		var pids []uint32
		work := tx.Then(note("survivor"), tx.Func(func(ctx context.Context, q pgx.Tx) (int, error) {
			var pid uint32 // the server's: through pgbouncer, PgConn().PID() is an id pgbouncer made up
			if err := q.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				return 0, err
			}
			pids = append(pids, pid)
			if len(pids) == 1 {
				if _, err := pool.Exec(ctx, "SELECT pg_terminate_backend($1, 5000)", int64(pid)); err != nil {
					return 0, err
				}
			}
			return 0, q.QueryRow(ctx, "SELECT 1").Scan(new(int))
		}))
		_, err := tx.Run(ctx, pool, work, tx.WithPolicy(fastPolicy(3)))
		require.NoError(t, err)
		require.Len(t, pids, 2)
		require.NotEqual(t, pids[0], pids[1])
		require.Equal(t, []string{"survivor"}, notes(t, pool))
	})
	t.Run("no idle-in-transaction session of ours while a retry waits", func(t *testing.T) {
		pool := newPool(t, 1)
		failAtCommit(t, pool, 2)
		var idle []int
		log := &attemptLog{onRetry: func() {
			idle = append(idle, count(t, pool, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND state LIKE 'idle in transaction%'`))
		}}
		_, err := tx.Run(ctx, pool, tx.Then(note("x"), tx.Exec("SELECT 1")), tx.WithObserver(log), tx.WithPolicy(fastPolicy(5)))
		require.NoError(t, err)
		require.Equal(t, []int{0, 0}, idle)
	})
	t.Run("a deadline returns at once instead of sleeping past it", func(t *testing.T) {
		pool := newPool(t, 1)
		failAtCommit(t, pool, 100)
		// The second attempt has about 2 s to fail before the deadline, and then the next pause no longer fits:
		// margins for a loaded machine under -race.
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		deadline, _ := dctx.Deadline()
		slow := retry.New(retry.On(retry.Serialization), retry.MaxAttempts(100),
			retry.WithBackoff(retry.Constant(3*time.Second)))
		_, err := tx.Run(dctx, pool, note("x"), tx.WithPolicy(slow))
		returned := time.Now()
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.True(t, returned.Before(deadline.Add(time.Millisecond)), "returned %v after the deadline", returned.Sub(deadline))
	})
}

// TestBudget: under a persistent failure a shared budget keeps total attempts near first attempts, and retries come
// back by themselves once the failure clears.
// TestNetworkErrorsOfUserCodeAreNotRetried: a Func whose own network call fails (a web service, a file read ending
// early) returns an error that looks like a lost connection. The transaction's connection is fine, so retrying the
// whole transaction would only repeat the call: Run returns the error after one attempt.
func TestNetworkErrorsOfUserCodeAreNotRetried(t *testing.T) {
	pool := newPool(t, 1)
	errs := map[string]error{
		"net.OpError":         &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")},
		"io.ErrUnexpectedEOF": fmt.Errorf("reading the upload: %w", io.ErrUnexpectedEOF),
	}
	for name, userErr := range errs {
		t.Run(name, func(t *testing.T) {
			attempts := 0
			work := tx.Then(note("before "+name), tx.Func(func(context.Context, pgx.Tx) (int, error) {
				attempts++
				return 0, userErr
			}))
			_, err := tx.Run(ctxT(t), pool, work)
			require.ErrorIs(t, err, userErr)
			require.Equal(t, 1, attempts)
			require.Empty(t, notes(t, pool))
			requireNoAcquired(t, pool)
		})
	}
}

func TestBudget(t *testing.T) {
	ctx := ctxT(t)
	pool := newPool(t, 1)
	_, err := pool.Exec(ctx, `CREATE TABLE fault (on_ bool NOT NULL); INSERT INTO fault VALUES (true);
		CREATE FUNCTION maybe_fail() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF (SELECT on_ FROM fault) THEN RAISE EXCEPTION 'persistent' USING ERRCODE = '40001'; END IF;
			RETURN NULL;
		END $$;
		CREATE TRIGGER maybe_fail AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION maybe_fail();`)
	require.NoError(t, err)
	policy := fastPolicy(5, retry.WithBudget(retry.NewBudget(20, 0.5)))
	runs := func(n int, prefix string) (attempts int, failures int) {
		log := &attemptLog{}
		for i := range n {
			if _, err := tx.Run(ctx, pool, note(fmt.Sprintf("%s-%d", prefix, i)), tx.WithPolicy(policy), tx.WithObserver(log)); err != nil {
				failures++
			}
		}
		return log.count(), failures
	}

	runs(20, "warm-up") // spends the budget down to its floor
	attempts, failures := runs(200, "persistent")
	require.Equal(t, 200, failures)
	require.LessOrEqual(t, float64(attempts), 1.2*200, "attempts %d for 200 transactions", attempts)

	_, err = pool.Exec(ctx, "UPDATE fault SET on_ = false")
	require.NoError(t, err)
	attempts, failures = runs(50, "healthy")
	require.Zero(t, failures)
	require.Equal(t, 50, attempts)

	failAtCommit(t, pool, 1) // one transient failure: retried again now that the budget refilled
	attempts, failures = runs(1, "transient")
	require.Zero(t, failures)
	require.Equal(t, 2, attempts)
}

// TestBankUnderContention: 16 workers move money between 3 hot accounts at SERIALIZABLE.
func TestBankUnderContention(t *testing.T) {
	ctx := ctxT(t)
	pool := newPool(t, 3)
	_, err := pool.Exec(ctx, "CREATE TABLE transfers (id int PRIMARY KEY)")
	require.NoError(t, err)
	log := &attemptLog{}
	transfer := func(id, from, to int) tx.Tx[bool] {
		read := tx.QueryOne("SELECT balance FROM accounts WHERE id = $1", pgx.RowTo[int], from)
		return tx.Bind(read, func(b int) tx.Tx[bool] {
			if b < 7 {
				return tx.Pure(false)
			}
			move := tx.Exec("UPDATE accounts SET balance = balance + CASE id WHEN $1 THEN -7 ELSE 7 END WHERE id IN ($1, $2)", from, to)
			return tx.Then(move, tx.Map(tx.Exec("INSERT INTO transfers VALUES ($1)", id), func(pgconn.CommandTag) bool { return true }))
		})
	}
	var acked sync.Map
	var gaveUp atomic.Int32
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				id := w*100 + i
				moved, err := tx.Run(ctx, pool, transfer(id, 1+(w+i)%3, 1+(w+i+1)%3), tx.WithObserver(log))
				if err != nil { // starved past the attempt limit: allowed, but must have committed nothing
					require.ErrorAs(t, err, new(*tx.RetryError))
					gaveUp.Add(1)
					continue
				}
				if moved {
					acked.Store(id, true)
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 300, count(t, pool, "SELECT sum(balance) FROM accounts"))
	require.Zero(t, count(t, pool, "SELECT count(*) FROM accounts WHERE balance < 0"))
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		require.Equal(t, 1, count(t, pool, "SELECT count(*) FROM transfers WHERE id = $1", k))
		return true
	})
	require.Equal(t, n, count(t, pool, "SELECT count(*) FROM transfers"))
	require.Greater(t, log.count(), 16*25, "contention caused retries")
	require.Less(t, gaveUp.Load(), int32(16*25/10), "most transfers got through")
	requireNoAcquired(t, pool)
}
