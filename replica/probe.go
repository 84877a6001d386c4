package replica

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A pool whose connections are all lent out, with none being made, is busy as far as its statistics tell: an
// Acquire that runs out of time there says nothing about the replica (see pick.lend). But a frozen replica looks the
// same once every connection lent to a read hangs on it: pgconn gives such a connection up only some 15 s after its
// read's deadline, and never for a read without one (until TCP does, about 15 minutes on Linux), so every read would
// pay its share for that long. So such a timeout, however short the read's share, has the replica dialled outside
// the pool, in the background (the read goes on at once), at most once a period: a handshake it does not answer
// within probeWithin has it left out for the cooldown; any answer, a refusal by the server included (too many
// connections, a failed authentication), says it is alive, and busy.

// probeWithin is the time a probe gives the replica to answer its handshake. No read waits for it, so it can be long
// enough for a name lookup, TLS and SCRAM to a replica some way off, or loaded; the price is that reads trying a
// frozen replica pay their shares for that long before it is left out.
const probeWithin = time.Second

// probeDue reports whether the caller is the one to probe m now: no probe has begun within the cooldown, nor within
// the time one may last, so that probes never overlap. One caller wins the probe of a period; the others only skip
// m. With no cooldown there is none: it could not leave the replica out.
func (m *member) probeDue(now time.Time, cooldown time.Duration) bool {
	if cooldown <= 0 {
		return false
	}
	at := m.probedAt.Load()
	return now.UnixNano()-at >= int64(max(cooldown, probeWithin+replicaFloor)) &&
		m.probedAt.CompareAndSwap(at, now.UnixNano())
}

// probe dials m's replica as its pool would, outside the pool, and leaves m out for cooldown if the server does not
// answer the handshake within probeWithin. It ends within probeWithin plus replicaFloor, whatever the replica does:
// the dial (a BeforeConnect hook included, if it heeds its ctx) gets probeWithin, the close of a connection it made
// replicaFloor. The
// pool's BeforeConnect runs, as for the pool's own dials, since it may say where and as whom to connect (a host from
// service discovery, a rotated certificate); a failure of it judges nothing. AfterConnect does not run: it comes
// after the answer the probe is after.
func (m *member) probe(cooldown time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), probeWithin)
	defer cancel()
	cfg := m.pool.Config()
	if cfg.BeforeConnect != nil && cfg.BeforeConnect(ctx, cfg.ConnConfig) != nil {
		return
	}
	conn, err := pgconn.ConnectConfig(ctx, &cfg.ConnConfig.Config)
	if err == nil {
		closeCtx, cancelClose := context.WithTimeout(context.Background(), replicaFloor)
		defer cancelClose()
		_ = conn.Close(closeCtx)
		return
	}
	if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) {
		m.fail(time.Now(), cooldown)
	}
}
