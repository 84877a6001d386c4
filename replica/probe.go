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
// pay its share for that long. So such a timeout, once per cooldown, has the replica dialled outside the pool, in
// the background (the read has used its time already): a handshake it does not answer within replicaFloor has it left
// out for the cooldown; any answer, a refusal by the server included (too many connections, a failed
// authentication), says it is alive, and busy.

// probeDue reports whether the caller is the one to probe m now: no probe has begun within every. One caller wins
// the probe of a period; the others only skip m.
func (m *member) probeDue(now time.Time, every time.Duration) bool {
	at := m.probedAt.Load()
	return now.UnixNano()-at >= int64(every) && m.probedAt.CompareAndSwap(at, now.UnixNano())
}

// probe dials m's replica as its pool would, outside the pool, and leaves m out for cooldown if the server does not
// answer the handshake within replicaFloor. It ends within twice replicaFloor, whatever the replica does: the dial,
// then the close of a connection it made, each get replicaFloor (a BeforeConnect hook too, which shares the dial's
// time). The pool's BeforeConnect runs, as for the pool's own dials, since it may set where and as whom to connect; a
// failure of it judges nothing. AfterConnect does not run: it comes after the answer the probe is after.
func (m *member) probe(cooldown time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), replicaFloor)
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
