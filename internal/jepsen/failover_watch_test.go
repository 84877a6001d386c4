package jepsen_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// runWatch is one Run's view of the pool: a tx.Acquirer, so that Run owns BEGIN as it does on a *pgxpool.Pool, and
// an observer of its attempts. It tells which node each attempt ran on (by the proxy its connection went through)
// and which attempts tried to settle a COMMIT whose answer was lost: Run calls an Acquirer's BeginTx only for that
// (to ask pg_xact_status, and to end the old backend), on a connection of its own. Used by one Run, from Run's
// goroutine.
type runWatch struct {
	attemptLog
	pool   *pgxpool.Pool
	nodeOf map[string]string // proxy address -> node name
	resets *resetter

	current int    // the attempt under way
	asked   []int  // attempts that tried to settle a lost COMMIT
	node    string // the node of the last attempt that got a connection
}

func (w *runWatch) AcquireTx(ctx context.Context, _ pgx.TxOptions) (*pgx.Conn, func(), error) {
	c, err := w.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	w.node = w.nodeOf[c.Conn().PgConn().Conn().RemoteAddr().String()]
	return c.Conn(), c.Release, nil
}

func (w *runWatch) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	if !slices.Contains(w.asked, w.current) {
		w.asked = append(w.asked, w.current)
	}
	return w.pool.BeginTx(ctx, opts)
}

func (w *runWatch) StartAttempt(ctx context.Context, n int) context.Context {
	w.current = n
	return ctx
}

func (w *runWatch) EndAttempt(ctx context.Context, a tx.AttemptInfo) {
	w.attemptLog.EndAttempt(ctx, a)
	if a.Err != nil && afterFailover(a) {
		w.resets.reset()
	}
}

// commitResolution is what became of an attempt's lost COMMIT.
type commitResolution int

const (
	notAmbiguous commitResolution = iota
	resolvedCommitted
	resolvedAborted
	resolvedUnknown
)

// resolutions classifies the attempts that tried to settle a lost COMMIT; runErr is what Run returned.
func (w *runWatch) resolutions(runErr error) []commitResolution {
	var out []commitResolution
	for _, a := range w.attempts {
		if !slices.Contains(w.asked, a.Attempt) {
			continue
		}
		switch {
		case a.Err == nil && runErr == nil:
			out = append(out, resolvedCommitted)
		case errors.Is(a.Err, tx.ErrCommitUnknown):
			out = append(out, resolvedUnknown)
		default:
			out = append(out, resolvedAborted)
		}
	}
	return out
}

// afterFailover reports a failure that says the pool may hold more connections to a node that is no longer the
// primary: a session ended by a switchover's shutdown (57P01), a read-only or 0A000 refusal from a demoted node, a
// statement that outlived its deadline on a frozen one. A failure to connect says nothing about the idle connections,
// and resetting then would only close the new primary's.
func afterFailover(a tx.AttemptInfo) bool {
	return a.Class == retry.ReadOnlyTransaction || a.SQLState == "0A000" || a.SQLState == "57P01" ||
		(errors.Is(a.Err, context.DeadlineExceeded) && !strings.Contains(a.Err.Error(), "acquire connection"))
}

// resetter resets a pool at most once per resetEvery, so that a failover's burst of errors from every client closes
// the stale connections once instead of churning the new primary's.
type resetter struct {
	pool  *pgxpool.Pool
	last  atomic.Int64 // unix nanoseconds
	count atomic.Int64
}

const resetEvery = 500 * time.Millisecond

func (r *resetter) reset() {
	now, last := time.Now().UnixNano(), r.last.Load()
	if now-last < int64(resetEvery) || !r.last.CompareAndSwap(last, now) {
		return
	}
	r.count.Add(1)
	r.pool.Reset()
}

// canaries are innocent sessions on a newly promoted primary. Each takes a transaction id as soon as the node
// accepts writes — among the first ids it hands out, which are the ids the old primary's last, unreplicated
// transactions had too — and holds it, idle in transaction, until checked. pgxact ends a backend only to settle a
// lost COMMIT, and finds it by its transaction id: a resolution that looked on the wrong history would match these.
// Nothing else ends sessions on a primary that stays primary, so a canary found dead was killed innocently.
type canaries struct {
	node  pgtest.HANode
	mu    sync.Mutex
	conns []*pgx.Conn
	xids  []int64
	err   error
	stop  context.CancelFunc
	done  chan struct{}
}

// startCanaries opens n canaries on node, which is about to be promoted, in the background, trying for at most
// two minutes.
func startCanaries(ctx context.Context, node pgtest.HANode, dbname string, n int) *canaries {
	ctx, stop := context.WithTimeout(ctx, 2*time.Minute)
	c := &canaries{node: node, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for range n {
			conn, xid, err := holdXid(ctx, node.ConnString(dbname))
			c.mu.Lock()
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			c.conns, c.xids = append(c.conns, conn), append(c.xids, xid)
			c.mu.Unlock()
		}
	}()
	return c
}

// holdXid connects and begins a transaction with an id, trying every 20ms until node is a primary.
func holdXid(ctx context.Context, connString string) (*pgx.Conn, int64, error) {
	for {
		conn, err := pgx.Connect(ctx, connString)
		if err == nil {
			var xid int64
			if _, err = conn.Exec(ctx, "BEGIN"); err == nil {
				if err = conn.QueryRow(ctx, "SELECT txid_current()").Scan(&xid); err == nil {
					return conn, xid, nil
				}
			}
			_ = conn.Close(context.WithoutCancel(ctx))
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("canary: %w (last: %w)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// check waits for the canaries to be opened, then counts the dead ones (each still in its transaction with the
// same id, or dead), closes them all and returns the count, how many were checked and their xids.
func (c *canaries) check(ctx context.Context) (dead, checked int, xids []int64, err error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return 0, 0, nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, conn := range c.conns {
		var xid int64
		if qerr := conn.QueryRow(ctx, "SELECT txid_current()").Scan(&xid); qerr != nil || xid != c.xids[i] {
			dead++
		}
		_ = conn.Close(context.WithoutCancel(ctx))
	}
	return dead, len(c.conns), c.xids, c.err
}

// close stops the opener and closes whatever canaries it opened; for cleanup on failure too.
func (c *canaries) close() {
	c.stop()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close(context.Background())
	}
	c.conns = nil
}
