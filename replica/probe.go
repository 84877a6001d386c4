package replica

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A pool whose connections are all lent out, with none being made, is busy as far as its statistics tell: an
// Acquire that runs out of time there says nothing about the replica (see pick.lend). But a frozen replica looks the
// same once every connection lent to a read hangs on it: pgconn gives such a connection up only some 15 s after its
// read's deadline, and never for a read without one (until TCP does, about 15 minutes on Linux), so every read would
// pay its share for that long. So such a timeout, however short the read's share, has the replica dialled outside
// the pool, in the background (the read goes on at once), at most once a period: a handshake it does not answer
// within probeWithin has it left out for the cooldown; any answer, a refusal by the server included (too many
// connections, a failed authentication), says it is alive, and busy. It tells a frozen machine or server from a busy
// one, not a stalled one: a server whose postmaster still answers while its backends hang (its connections all taken
// by hung ones: "too many clients"), or a pgbouncer in front of a frozen server, which completes handshakes itself,
// passes for alive.

// probeWithin is the time a probe gives the replica to answer its handshake, at each address it tries. No read
// waits for it, so it can be long enough for a name lookup, TLS and SCRAM to a replica some way off, or loaded; the
// price is that reads trying a frozen replica pay their shares for that long before it is left out.
const probeWithin = time.Second

// probeEvery is how often, at most, a busy replica is probed: its cooldown, but at least the time a probe of one
// address may last, and at most maxProbeEvery, so that a replica that answered as busy and froze after is found
// within seconds under a long cooldown too. A probe that found the replica frozen left it out for the cooldown, and
// nothing probes it until then.
func probeEvery(cooldown time.Duration) time.Duration {
	return min(max(cooldown, probeWithin+replicaFloor), maxProbeEvery)
}

const maxProbeEvery = 5 * time.Second

// probeDue reports whether the caller is the one to probe m now: no probe has begun within probeEvery, and none is
// running (one of several hosts, or a slow BeforeConnect, may outlast the period). One caller wins the probe of a
// period; the others only skip m. The winner must call probe, which ends the probe. With no cooldown there is none:
// it could not leave the replica out.
func (m *member) probeDue(now time.Time, cooldown time.Duration) bool {
	if cooldown <= 0 || m.probing.Load() {
		return false
	}
	at := m.probedAt.Load()
	if now.UnixNano()-at < int64(probeEvery(cooldown)) || !m.probedAt.CompareAndSwap(at, now.UnixNano()) {
		return false
	}
	return m.probing.CompareAndSwap(false, true)
}

// probe dials m's replica as its pool would, outside the pool, and leaves m out for cooldown if no address of it
// answers the handshake within probeWithin. ctx gives the probe the values of the read that started it (pgxpool
// passes an Acquire's to BeforeConnect), not its end.
//
// The pool's BeforeConnect runs first, as for the pool's own dials, since it may say where and as whom to connect (a
// host from service discovery, a rotated certificate or token); it gets probeWithin of its own, and a failure of it,
// or its running out of that time, judges nothing. Then each address gets probeWithin (ConnectTimeout), the whole
// dial probeWithin for each configured host and fallback, at most maxProbeDial. AfterConnect does not run: it comes
// after the answer the probe is after. The close of a connection made gets replicaFloor. So a probe ends within
// seconds, if BeforeConnect heeds its ctx.
func (m *member) probe(ctx context.Context, cooldown time.Duration) {
	defer m.probing.Store(false)
	cfg := m.pool.Config()
	if cfg.BeforeConnect != nil && !beforeConnect(ctx, cfg) {
		return
	}
	conn := &cfg.ConnConfig.Config
	conn.ConnectTimeout = probeWithin
	dialCtx, cancel := context.WithTimeout(ctx, min(probeWithin*time.Duration(1+len(conn.Fallbacks)), maxProbeDial))
	defer cancel()
	c, err := pgconn.ConnectConfig(dialCtx, conn)
	if err == nil {
		closeCtx, cancelClose := context.WithTimeout(ctx, replicaFloor)
		defer cancelClose()
		_ = c.Close(closeCtx)
		return
	}
	if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) {
		m.fail(time.Now(), cooldown)
	}
}

// maxProbeDial bounds a probe's dial over all of the replica's hosts and fallbacks.
const maxProbeDial = 5 * time.Second

// beforeConnect runs cfg's BeforeConnect on its ConnConfig within probeWithin, and reports whether it succeeded in
// that time.
func beforeConnect(ctx context.Context, cfg *pgxpool.Config) bool {
	ctx, cancel := context.WithTimeout(ctx, probeWithin)
	defer cancel()
	return cfg.BeforeConnect(ctx, cfg.ConnConfig) == nil && ctx.Err() == nil
}
