package replica

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/internal/standby"
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
	// timeline is the primary's timeline as the Router's Sessions learnt it (see learnTimeline); zero until then. A
	// standby reporting an earlier one is behind a failover (see caughtUp).
	timeline atomic.Uint32
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
		r.replicas = append(r.replicas, newMember(p))
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
	conn, release, _, err := r.acquireRead(ctx, mark{})
	return conn, release, err
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

// learnTimeline records the primary's timeline, as a Session learnt it: asked just now (asked), or reported after a
// commit. A commit's report only raises it: one that raced a failover, or came from an old primary still reached
// through old connections, would otherwise set it back, and reads alone might never move it forward again. A
// timeline asked for just now is taken as it is, lower or not: a cluster upgraded with pg_upgrade starts its
// timelines at 1 again, and the highest would then shut out every standby for good.
func (r *Router) learnTimeline(timeline uint32, asked bool) {
	if timeline == 0 {
		return
	}
	if asked {
		r.timeline.Store(timeline)
		return
	}
	for {
		cur := r.timeline.Load()
		if timeline <= cur || r.timeline.CompareAndSwap(cur, timeline) {
			return
		}
	}
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
// far, or catches up within MaxWait, and the primary's otherwise. A zero token is satisfied by any replica. forked
// reports a primary's connection lent because a replica was on another timeline than token's.
func (r *Router) acquireRead(ctx context.Context, token mark) (conn *pgx.Conn, release func(), forked bool, err error) {
	p := r.newPick(ctx, token)
	defer p.cancel()
	c, err := p.replica()
	if err != nil {
		return nil, nil, false, err
	}
	if c != nil {
		standby.Mark(c.Conn()) // so that tx.Run begins at an isolation a standby accepts, even behind pgbouncer
		return c.Conn(), c.Release, false, nil
	}
	conn, release, err = r.acquirePrimary(ctx)
	return conn, release, p.forked, err
}

// pick is one read's search for a replica that has replayed its token.
//
// All of it is bounded: replay is waited for until MaxWait from the start, and lending connections and asking for
// replay positions must be done replicaFloor after that. So a replica whose pool is exhausted, or which stopped
// answering on a connection already open, cannot hold the read longer, and the primary serves it. Only the caller's
// ctx ending is an error.
//
// A caller's deadline may cut that time short (cut: the deadline is less than MaxWait plus 500 ms away): the primary
// keeps a reserve before it. Whatever a replica fails to do in a time so cut says little about it, so it is not left
// out for every read; it is only passed over, for the cooldown, by reads whose time is cut to as little or less
// (member.suspect).
type pick struct {
	r         *Router
	caller    context.Context // the caller's: its end is the read's error
	bound     context.Context // caller, ending at boundEnd
	cancel    context.CancelFunc
	waitUntil time.Time     // replay is waited for until then
	boundEnd  time.Time     // replicaFloor after waitUntil
	end       time.Time     // the caller's deadline; zero without one
	reserveAt time.Time     // where the primary's reserve begins, before the caller's deadline; zero without one
	cut       bool          // the reserve begins before boundEnd: the replicas get less time than the bound gives
	budget    time.Duration // when cut, the time the replicas had from the start: reserveAt less the start
	short     bool          // the wait was cut to under half of MaxWait: a replica still behind is not marked slow
	token     mark
	forked    bool // a replica reported another timeline than token's
}

// replicaFloor is the time a read gives the replicas, beyond MaxWait, to lend connections and answer looks: a healthy
// replica does both in well under a millisecond nearby.
const replicaFloor = 250 * time.Millisecond

func (r *Router) newPick(ctx context.Context, token mark) *pick {
	now := time.Now()
	p := &pick{r: r, caller: ctx, token: token, waitUntil: now.Add(r.cfg.maxWait)}
	if end, ok := ctx.Deadline(); ok {
		// A caller's deadline must still leave the primary time to serve the read: waiting on a lagging replica, or
		// for a connection of an exhausted pool (see lend), until the deadline would fail a read the primary could
		// answer. So the primary keeps a reserve, half of what is left, at most replicaFloor.
		p.end, p.reserveAt = end, end.Add(-min(end.Sub(now)/2, replicaFloor))
		if p.reserveAt.Before(p.waitUntil) {
			// A wait cut to under half of MaxWait says little about the replica, and does not mark it slow; a longer
			// one does, or every such caller would wait it out again.
			p.waitUntil, p.short = p.reserveAt, p.reserveAt.Sub(now) < r.cfg.maxWait/2
		}
	}
	// Added one after the other, not summed first: time.Time.Add saturates, while a MaxWait near the largest Duration
	// plus the floor would wrap negative and put the deadline in the past, sending every read to the primary.
	p.boundEnd = p.waitUntil.Add(replicaFloor)
	p.cut = !p.reserveAt.IsZero() && p.reserveAt.Before(p.boundEnd)
	if p.cut {
		p.budget = p.reserveAt.Sub(now)
	}
	p.bound, p.cancel = context.WithDeadline(ctx, p.boundEnd)
	return p
}

// replica returns a connection to a replica that has replayed the token, or nil when none can be had in time.
func (p *pick) replica() (*pgxpool.Conn, error) {
	n := uint64(len(p.r.replicas))
	if n == 0 {
		return nil, nil
	}
	first := p.r.next.Add(1)
	var behind []*member
	for i := range n {
		m := p.r.replicas[(first+i)%n]
		if now := time.Now(); !m.available(now) || p.cut && m.suspected(now, p.budget) {
			continue
		}
		if !m.hasReplayed(p.token.at) {
			behind = append(behind, m) // might catch up; tried below, after the ones known to be ready
			continue
		}
		c, state, err := p.try(m, time.Time{})
		switch {
		case err != nil:
			return nil, err
		case c != nil:
			return c, nil
		case state == lagging:
			behind = append(behind, m) // the member's position was stale (a restart): wait for it with the others
		}
	}
	for _, m := range behind { // once the primary's reserve has begun, lend gives nothing more
		if c, _, err := p.try(m, p.waitUntil); c != nil || err != nil {
			return c, err
		}
	}
	return nil, nil
}

// try lends a connection of m and checks, waiting until deadline (not at all if zero), that m has replayed the
// token. It returns the connection if so; otherwise the replica's state, with m left out for the cooldown when it
// did not answer. Its only error is the caller's ctx ending.
func (p *pick) try(m *member, deadline time.Time) (*pgxpool.Conn, replay, error) {
	c, err := p.lend(m)
	if c == nil {
		return nil, unknown, err // busy or unreachable: not waited for again in this read
	}
	state, err := p.check(m, c, deadline)
	if err == nil && state == replayed {
		return c, replayed, nil
	}
	c.Release() // a connection that failed mid-query is closed, and the pool drops it
	if ctxErr := p.caller.Err(); ctxErr != nil {
		return nil, unknown, fmt.Errorf("replica: checking replay: %w", ctxErr)
	}
	if err != nil {
		p.lookFailed(m, err)
	}
	if state == forked {
		p.forked = true
	}
	return nil, state, nil
}

// lookFailed judges m after a look failed with err: a stalled or broken replica is left out for the cooldown, unless
// the look only ran out of the time the caller's deadline left it (see pick).
func (p *pick) lookFailed(m *member, err error) {
	var cut *cutLook
	switch {
	case !errors.As(err, &cut):
		m.fail(time.Now(), p.r.cfg.cooldown)
	case cut.allowed >= answerFloor:
		m.suspect(time.Now(), p.r.cfg.cooldown, cut.allowed) // what a read trying it first would give it
	}
}

// check reports how far the server behind c has replayed, against the token: the position kept on the connection
// answers without a round trip, else looks do.
func (p *pick) check(m *member, c *pgxpool.Conn, deadline time.Time) (replay, error) {
	if p.token.at == 0 {
		return replayed, nil // no commit to see: any replica will do
	}
	if at, ok := connReplayed(c.Conn()); ok && p.token.coveredBy(at.at, at.timeline) && !p.r.behindPrimary(at) {
		return replayed, nil
	}
	return p.caughtUp(m, c.Conn(), deadline)
}

// lend acquires a connection from m's pool, waiting at most a share of replicaFloor, or of the time left before the
// primary's reserve or the end of the bound when less, so that one exhausted pool leaves time for the next and for
// the primary. It returns nil, unless the caller's ctx ended, when it got none in that time.
//
// A failure to connect leaves m out for the cooldown. An Acquire that ran out of time with every connection of the
// pool lent out and none being made met a busy pool: m is only skipped, unless a dial outside the pool, begun in the
// background once per cooldown, finds the replica not answering (probe.go). One that left an idle connection, a
// connection being made, or none lent, may have met a replica that accepts TCP and then says nothing (a frozen VM, a
// stopped server), which keeps pgx's dial or pgxpool's health-check ping waiting until connect_timeout and would
// cost every read its share for as long as it lasts; but a connection released or replaced just as the time ran out
// looks the same, so that marks m, and m is left out when a lend begun later finds it so again with nothing answered
// in between (member.sighted). A share the caller's deadline cut short says less still: on a second sighting m is
// only passed over by reads giving it as little (member.suspect), and a share under answerFloor, too short for a
// dial to say anything, judges nothing.
func (p *pick) lend(m *member) (*pgxpool.Conn, error) {
	n := time.Duration(len(p.r.replicas))
	share, cut := replicaFloor/n, false
	if p.cut {
		// The time before the primary's reserve is shared out among the replicas as the floor is.
		share, cut = shorten(share, time.Until(p.reserveAt)/n)
	}
	if left := time.Until(p.boundEnd); left < share {
		share, cut = left, true // what another replica left of the bound
	}
	if share <= 0 {
		return nil, nil // the time is up: m is neither tried nor judged
	}
	ctx, cancel := context.WithTimeout(p.bound, share)
	defer cancel()
	start := time.Now()
	c, err := m.pool.Acquire(ctx)
	if err == nil {
		m.answered()
		return c, nil
	}
	if ctxErr := p.caller.Err(); ctxErr != nil {
		return nil, fmt.Errorf("replica: acquire replica connection: %w: %w", ctxErr, err)
	}
	now := time.Now()
	if ctx.Err() == nil { // the dial failed
		m.fail(now, p.r.cfg.cooldown)
		return nil, nil
	}
	if !waitingOnReplica(m.pool.Stat()) {
		// Busy, or frozen with every connection lent out and hung: a probe of its own decides, with its own time,
		// however short this share was (probe.go).
		if m.probeDue(now, p.r.cfg.cooldown) {
			go m.probe(context.WithoutCancel(p.bound), p.r.cfg.cooldown)
		}
		return nil, nil
	}
	if cut && (!p.cut || share < answerFloor) {
		return nil, nil // cut by what another replica left, or too short for a dial to say anything
	}
	if !m.sighted(start, now, p.r.cfg.cooldown+2*replicaFloor) {
		return nil, nil // a first sighting
	}
	if cut {
		m.suspect(now, p.r.cfg.cooldown, share*n) // the time a read would give to have this share
	} else {
		m.fail(now, p.r.cfg.cooldown)
	}
	return nil, nil
}

// shorten returns the share cut to left, and whether that counts as cut: by more than an eighth. A deadline of
// MaxWait plus 500 ms leaves a few microseconds less than the share, which says nothing about the replica.
func shorten(share, left time.Duration) (time.Duration, bool) {
	if left >= share {
		return share, false
	}
	return left, left < share-share/8
}

// waitingOnReplica reports whether a pool, as an Acquire that ran out of time leaves it, may be waiting on its replica
// rather than busy: it has an idle connection left (which the Acquire did not get: it took one whose health check
// hung, or one came back just as the time ran out), or a connection still being made, or none lent out.
func waitingOnReplica(st *pgxpool.Stat) bool {
	return st.IdleConns() > 0 || st.ConstructingConns() > 0 || st.AcquiredConns() == 0
}
