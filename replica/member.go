package replica

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// member is one replica pool and what the Router has learnt about its server. Everything here is a hint for
// choosing where to read; a stale hint costs latency, never correctness, because a session's read is only sent to a
// replica after the replica itself has reported replaying far enough, on the very connection it is sent on (see
// confirm): a position held for the member can be too high after the standby restarted.
type member struct {
	pool      *pgxpool.Pool
	downUntil atomic.Int64 // unix nanoseconds; the replica is skipped until then
	// suspectUntil (unix nanoseconds): the replica failed to answer within suspectWithin (nanoseconds), a time a
	// caller's deadline cut short; until then reads that have no more time than that pass it over, and others still
	// try it (see pick). The two are hints: a read that sees one updated and not yet the other judges one read wrong.
	suspectUntil  atomic.Int64
	suspectWithin atomic.Int64
	replayed      atomic.Uint64 // the highest pg_last_wal_replay_lsn() seen there; replay only moves forward
	// markedAt is when (unix nanoseconds) a lend found the replica maybe not answering (see pick.lend), with nothing
	// answered since (a connection lent, a look answered); zero for no such mark.
	markedAt atomic.Int64
	// probedAt is when (unix nanoseconds) a lend last began a probe of the replica outside its pool (see probe.go).
	probedAt atomic.Int64
	probing  atomic.Bool // a probe is running

	mu        sync.Mutex
	slowFrom  lsn       // the replica recently failed to reach this position in time...
	slowUntil time.Time // ...so until then, tokens at or past it get one look and no wait

	// waiting counts the reads waiting for the replica to replay their tokens, each holding one of its connections;
	// at most maxWaiting wait at once, so that one is left for reads it can serve at once.
	waiting    atomic.Int32
	maxWaiting int32
}

func newMember(pool *pgxpool.Pool) *member {
	// All connections but one: a token is not signed, and reads with far-off ones (forged, or from a lost timeline)
	// must not hold every connection for MaxWait while reads the replica has already replayed wait for one. Not
	// fewer: honest reads after their writes wait too, and each read refused a place goes to the primary (half the
	// pool sent a third of a write-then-read loop's reads there, against none).
	return &member{pool: pool, maxWaiting: max(1, pool.Config().MaxConns-1)}
}

// startWait takes one of the places of the reads waiting for replay, reporting false if none is free.
func (m *member) startWait() bool {
	for {
		n := m.waiting.Load()
		if n >= m.maxWaiting {
			return false
		}
		if m.waiting.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (m *member) endWait() { m.waiting.Add(-1) }

func (m *member) available(now time.Time) bool { return now.UnixNano() >= m.downUntil.Load() }

func (m *member) fail(now time.Time, cooldown time.Duration) { m.downUntil.Store(until(now, cooldown)) }

// answered clears the mark: the replica lent a connection or answered a look. It writes only when there is one, so
// that the reads that load the member's other fields do not share a written cache line on every lend.
func (m *member) answered() {
	if m.markedAt.Load() != 0 {
		m.markedAt.Store(0)
	}
}

// sighted records that a lend begun at start found, at now, its pool maybe waiting on the replica (see
// waitingOnReplica), and reports whether that is the second such sighting: a mark made before the lend began, no
// older than stale and not cleared by an answer since. Two lends ending at the same moment (two reads queued on one
// pool) are one sighting. A second sighting marks again, at now: the replica is left out, and the first lend after
// its cooldown that finds it so again, ending within stale of that mark (the cooldown and two floors: a whole share
// after a read that came up to a floor late), is a second sighting too, not a new first.
func (m *member) sighted(start, now time.Time, stale time.Duration) bool {
	at := m.markedAt.Load()
	second := at != 0 && now.UnixNano()-at <= int64(stale) && start.UnixNano() >= at
	if second || at == 0 || now.UnixNano()-at > int64(stale) {
		m.markedAt.Store(now.UnixNano())
	}
	return second
}

// suspected reports whether a read that gives the replica within should pass it over: no more than it recently
// failed to answer in, give or take a quarter (two reads with the same timeout do not start the clock at the same
// instant, and the one that failed may have been tried after another replica).
func (m *member) suspected(now time.Time, within time.Duration) bool {
	failed := m.suspectWithin.Load()
	return now.UnixNano() < m.suspectUntil.Load() && int64(within) <= failed+failed/4
}

// suspect remembers that the replica did not answer within, a time a caller's deadline cut short, counted as a read's
// budget (see pick): the most such time while the suspicion lasts.
func (m *member) suspect(now time.Time, cooldown, within time.Duration) {
	if m.suspectUntil.Load() <= now.UnixNano() {
		m.suspectWithin.Store(int64(within))
	} else {
		for cur := m.suspectWithin.Load(); int64(within) > cur; cur = m.suspectWithin.Load() {
			if m.suspectWithin.CompareAndSwap(cur, int64(within)) {
				break
			}
		}
	}
	m.suspectUntil.Store(until(now, cooldown))
}

// until is now plus d in unix nanoseconds. It saturates: past the year 2262 UnixNano wraps negative, which would make
// a "forever" cooldown no cooldown at all.
func until(now time.Time, d time.Duration) int64 {
	at := now.UnixNano()
	return at + min(int64(d), math.MaxInt64-at)
}

// observe records a replay position seen on the replica.
func (m *member) observe(at lsn) {
	for {
		cur := m.replayed.Load()
		if uint64(at) <= cur || m.replayed.CompareAndSwap(cur, uint64(at)) {
			return
		}
	}
}

func (m *member) hasReplayed(token lsn) bool { return lsn(m.replayed.Load()) >= token.recordEnd() }

// markSlow remembers that waiting for token timed out, so that reads needing as much do not wait again soon.
// Smaller tokens still wait: one session's far-off token must not stop other sessions from waiting.
func (m *member) markSlow(token lsn, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slowFrom, m.slowUntil = token, until
}

func (m *member) slowFor(token lsn, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return now.Before(m.slowUntil) && token >= m.slowFrom
}
