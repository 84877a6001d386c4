package txtest

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/tx"
)

// lender is what an Injector wraps: the db given to Inject, seen as a source of one connection per attempt.
type lender interface {
	tx.DB
	lend(ctx context.Context, opts pgx.TxOptions) (*pgx.Conn, func(), error)
}

// lenderOf returns the lender for db, or an error for a db the Injector cannot lend connections from.
func lenderOf(db tx.DB) (lender, error) {
	switch d := db.(type) {
	case *pgxpool.Pool:
		if d != nil {
			return poolLender{d}, nil
		}
	case *pgx.Conn:
		if d != nil {
			return connLender{d}, nil
		}
	case tx.Acquirer:
		if d != nil {
			return acquirerLender{d}, nil
		}
	}
	if db == nil {
		return nil, fmt.Errorf("%w: txtest: Inject with a nil db", tx.ErrInvalid)
	}
	return nil, fmt.Errorf("%w: txtest: Inject over a %T: it takes a *pgxpool.Pool, a *pgx.Conn or a tx.Acquirer",
		tx.ErrInvalid, db)
}

type poolLender struct{ *pgxpool.Pool }

func (p poolLender) lend(ctx context.Context, _ pgx.TxOptions) (*pgx.Conn, func(), error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.Conn(), func() { endIdle(c.Conn()); c.Release() }, nil // the pool drops a connection endIdle closed
}

// connLender lends its one connection to every attempt: like tx.Run on a *pgx.Conn, an Injector over one is for one
// goroutine at a time.
type connLender struct{ *pgx.Conn }

func (c connLender) lend(context.Context, pgx.TxOptions) (*pgx.Conn, func(), error) {
	return c.Conn, func() { endIdle(c.Conn) }, nil
}

// acquirerLender lends what another Acquirer lends (a replica.Router, a replica.Session, another Injector), with the
// transaction's options, so that it chooses the connection as it would without the Injector. One exception: a
// read-only transaction at the default isolation, which tx.Run lets a hot standby serve (IsoLevel ""), is asked for
// as SERIALIZABLE, so that a Router lends the primary: the faults are set up with writes, which a standby refuses.
type acquirerLender struct{ tx.Acquirer }

func (a acquirerLender) lend(ctx context.Context, opts pgx.TxOptions) (*pgx.Conn, func(), error) {
	if opts.IsoLevel == "" {
		opts.IsoLevel = pgx.Serializable
	}
	conn, release, err := a.AcquireTx(ctx, opts)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, nil, err
	}
	return conn, func() { endIdle(conn); release() }, nil
}

// endIdle leaves conn outside any transaction before it goes back. If the runner never sent BEGIN (work without
// statements), the transaction the Injector began is still open, and is rolled back; a connection that cannot be
// rolled back is closed.
func endIdle(conn *pgx.Conn) {
	if conn.PgConn().TxStatus() == 'I' || conn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		_ = conn.Close(ctx)
	}
}
