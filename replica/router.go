package replica

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/tx"
)

// Router sends each transaction tx.Run gives it to the primary or to a replica: read-only transactions that are not
// SERIALIZABLE go to a replica, taken in turn, and everything else to the primary. A replica whose pool cannot lend a
// connection is left out for the cooldown (WithCooldown); with no replica available, reads go to the primary.
//
// A Router does not own its pools: close them yourself after the last Run. It is safe for concurrent use by many
// goroutines. Build one with New; the zero Router is not usable.
//
// Reads through a Router alone may lag behind the primary by any amount. Use a Session for read-your-writes.
type Router struct {
	primary  *pgxpool.Pool
	replicas []*member
	next     atomic.Uint64 // round-robin position
	cfg      config
}

var (
	_ tx.Acquirer         = (*Router)(nil)
	_ tx.Acquirer         = (*Session)(nil)
	_ tx.TimelineRecorder = (*Session)(nil)
)

// New returns a Router over a primary pool and zero or more replica pools, each of which must reach one hot standby
// of the primary (not a load balancer over several). A nil pool or an invalid option is an error for which
// errors.Is(err, ErrInvalid) is true.
func New(primary *pgxpool.Pool, replicas []*pgxpool.Pool, opts ...Option) (*Router, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if primary == nil {
		return nil, fmt.Errorf("%w: nil primary pool", ErrInvalid)
	}
	r := &Router{primary: primary, cfg: cfg}
	for i, p := range replicas {
		if p == nil {
			return nil, fmt.Errorf("%w: nil replica pool at index %d", ErrInvalid, i)
		}
		r.replicas = append(r.replicas, &member{pool: p})
	}
	return r, nil
}

// AcquireTx lends a connection for a transaction with opts: a replica's for a read-only transaction that is not
// SERIALIZABLE, the primary's otherwise or when no replica can lend one. tx.Run calls it; release must be called
// exactly once.
//
// SERIALIZABLE goes to the primary because PostgreSQL refuses it on a hot standby (0A000, "cannot use serializable
// mode in a hot standby"): run reads meant for replicas with tx.ReadOnly() and tx.WithIsolation(pgx.RepeatableRead).
func (r *Router) AcquireTx(ctx context.Context, opts pgx.TxOptions) (*pgx.Conn, func(), error) {
	if !replicable(opts) {
		return r.acquirePrimary(ctx)
	}
	return r.acquireRead(ctx, mark{})
}

// BeginTx begins a transaction on the primary, whatever opts say. tx.Run uses it to ask pg_xact_status about a
// COMMIT whose answer was lost, and only the primary can answer that: a lagging replica may not know the transaction
// yet. Route your own reads with tx.Run.
func (r *Router) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	return r.primary.BeginTx(ctx, opts)
}

// Session returns a new read-your-writes session on r, with no commits recorded yet.
func (r *Router) Session() *Session { return &Session{r: r} }

// SessionFrom returns a session that continues one whose Token was token, in this process or another: its reads
// see at least the commits that session had recorded. The empty token gives a new session. Any token Session.Token
// did not produce is an error for which errors.Is(err, ErrInvalidToken) is true.
func (r *Router) SessionFrom(token string) (*Session, error) {
	s := r.Session()
	if token == "" {
		return s, nil
	}
	m, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	if m.at == unknownLSN {
		s.unknown = true
	} else {
		s.token = m
	}
	return s, nil
}

// replicable reports whether a standby can run a transaction with opts.
func replicable(opts pgx.TxOptions) bool {
	return opts.AccessMode == pgx.ReadOnly && opts.IsoLevel != pgx.Serializable
}

func (r *Router) acquirePrimary(ctx context.Context) (*pgx.Conn, func(), error) {
	c, err := r.primary.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("replica: acquire primary connection: %w", err)
	}
	return c.Conn(), c.Release, nil
}

// acquireRead lends a connection on which every commit up to token is visible: a replica's if one has replayed that
// far, or catches up within MaxWait, and the primary's otherwise. A zero token is satisfied by any replica.
func (r *Router) acquireRead(ctx context.Context, token mark) (*pgx.Conn, func(), error) {
	c, err := r.acquireReplica(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		return r.acquirePrimary(ctx)
	}
	return c.Conn(), c.Release, nil
}

// acquireReplica returns a connection to a replica that has replayed token, or nil when none can be had in time.
// Its only errors are the caller's: a cancelled or expired ctx.
//
// Everything here, lending a connection and asking for the replay position included, is bounded by MaxWait or
// replicaFloor, whichever is longer: a replica whose pool is exhausted, or which stopped answering on a connection
// already open, must not hold the read longer than that. Only the caller's ctx ending is an error.
func (r *Router) acquireReplica(ctx context.Context, token mark) (*pgxpool.Conn, error) {
	n := uint64(len(r.replicas))
	if n == 0 {
		return nil, nil
	}
	bounded, cancel := context.WithTimeout(ctx, max(r.cfg.maxWait, replicaFloor))
	defer cancel()
	c, err := r.pickReplica(ctx, bounded, token)
	if err != nil && ctx.Err() == nil {
		return nil, nil // the bound ran out, not the caller's time: the primary serves the read
	}
	return c, err
}

// replicaFloor is the least time a read gives the replicas to lend a connection and answer one look, when MaxWait is
// shorter: a healthy replica does both in well under a millisecond nearby.
const replicaFloor = 250 * time.Millisecond

// pickReplica is acquireReplica within its bound, ctx; caller is the caller's own context.
func (r *Router) pickReplica(caller, ctx context.Context, token mark) (*pgxpool.Conn, error) {
	n := uint64(len(r.replicas))
	first := r.next.Add(1)
	var behind []*member
	for i := range n {
		m := r.replicas[(first+i)%n]
		if !m.available(time.Now()) {
			continue
		}
		if !m.hasReplayed(token.at) {
			behind = append(behind, m) // might catch up; tried below, after the ones known to be ready
			continue
		}
		c, err := r.lend(ctx, m)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue
		}
		ready, err := r.confirm(ctx, m, c, token)
		switch {
		case ready:
			return c, nil
		case err != nil:
			c.Release()
			if caller.Err() == nil {
				m.fail(time.Now(), r.cfg.cooldown) // it failed to answer, or not within the bound: a stalled replica
			}
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, fmt.Errorf("replica: checking replay: %w", ctxErr)
			}
		default:
			c.Release()
			behind = append(behind, m) // the member's position was stale (a restart): wait for it with the others
		}
	}
	return r.awaitReplica(caller, ctx, behind, token)
}

// confirm reports whether the server behind c has replayed token, which the member's position only suggests: the
// position kept on the connection answers without a round trip, else one look does.
func (r *Router) confirm(ctx context.Context, m *member, c *pgxpool.Conn, token mark) (bool, error) {
	if token.at == 0 {
		return true, nil // no commit to see: any replica will do
	}
	if at, ok := connReplayed(c.Conn()); ok && token.coveredBy(at.at, at.timeline) {
		return true, nil
	}
	return r.caughtUp(ctx, m, c.Conn(), token, time.Time{})
}

// awaitReplica looks at the replicas that were behind, in turn, for one that reaches token. All of them together
// wait at most MaxWait; each costs at least one round trip.
func (r *Router) awaitReplica(caller, ctx context.Context, behind []*member, token mark) (*pgxpool.Conn, error) {
	deadline := time.Now().Add(r.cfg.maxWait)
	for _, m := range behind {
		c, err := r.lend(ctx, m)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue
		}
		ok, err := r.caughtUp(ctx, m, c.Conn(), token, deadline)
		if ok {
			return c, nil
		}
		c.Release() // a connection that failed mid-query is closed, and the pool drops it
		if err != nil && caller.Err() == nil && !errors.Is(err, context.Canceled) {
			m.fail(time.Now(), r.cfg.cooldown)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("replica: waiting for replay: %w", ctxErr)
		}
	}
	return nil, nil
}

// lend acquires a connection from m's pool. A failure leaves m out for the cooldown and returns nil, unless it is
// ctx that ended: an exhausted pool that lends nothing in time is busy, not broken.
func (r *Router) lend(ctx context.Context, m *member) (*pgxpool.Conn, error) {
	c, err := m.pool.Acquire(ctx)
	if err == nil {
		return c, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("replica: acquire replica connection: %w: %w", ctxErr, err)
	}
	m.fail(time.Now(), r.cfg.cooldown)
	return nil, nil
}
