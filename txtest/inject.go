package txtest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/pgxact/pgxact/tx"
)

// ErrUnsupported is wrapped by the error an Injector returns, through tx.Run, for a transaction it cannot fail at the
// chosen point: InBody needs a SERIALIZABLE READ WRITE transaction (the default), and AtCommit cannot serve a
// DEFERRABLE one. It is never retried.
var ErrUnsupported = errors.New("txtest: fault cannot be injected into this transaction")

// point says where an injected failure strikes.
type point int

const (
	atCommit point = iota
	inBody
)

// Option configures Inject.
type Option func(*Injector)

// FailFirst makes the first n attempts made through the Injector fail (default 1). n = 0 injects nothing, which
// turns the Injector into a plain counter of attempts. A negative n is invalid input.
func FailFirst(n int) Option {
	return func(i *Injector) {
		if n < 0 {
			i.err = fmt.Errorf("%w: txtest: FailFirst(%d)", tx.ErrInvalid, n)
			return
		}
		i.remaining, i.first = n, n
	}
}

// EachRun makes FailFirst count the attempts of each tx.Run on the Injector rather than all of them: every
// transaction run through it fails its first n attempts, however many runs share it (a service's whole code path
// under test, say). The attempt number comes from the ctx tx.Run passes (tx.AttemptOf).
func EachRun() Option { return func(i *Injector) { i.eachRun = true } }

// AtCommit makes the injected failures strike at COMMIT, after the whole body has run (the default). This is the
// case that tests retry safety best: every side effect of the body has happened once when the attempt is rolled
// back. It works at every isolation level and access mode, but not with tx.Deferrable.
func AtCommit() Option { return func(i *Injector) { i.at = atCommit } }

// InBody makes the injected failures strike inside the body: at its first read or write of an ordinary table, or at
// COMMIT if it touches none. It needs a SERIALIZABLE READ WRITE transaction, the tx.Run default.
func InBody() Option { return func(i *Injector) { i.at = inBody } }

// Injector is a tx.DB that makes the transactions run on it fail with a real serialization failure (SQLSTATE 40001,
// raised by the PostgreSQL server) on their first attempts, so that tests can watch the retry loop rerun their work.
// Build one with Inject.
//
// By default the Injector counts attempts, not runs: FailFirst(n) fails the first n attempts that go through it,
// whichever Run they belong to; give each Run whose retries you count its own Injector, they are cheap. With EachRun,
// every Run through it fails its first n attempts.
//
// An Injector is a tx.Acquirer, so tx.Run drives it exactly as it drives a *pgxpool.Pool — BEGIN fused into the first
// round trip, the connection owned by the runner — and the code path under test is the production one. It is safe
// for concurrent use; the faults are set up one at a time.
type Injector struct {
	db        lender
	at        point
	err       error
	mu        sync.Mutex // held while a fault is set up, and guards the fields below
	remaining int        // failures left to inject, counting all runs
	first     int        // FailFirst's n
	eachRun   bool       // EachRun: fail the first attempts of every run, by tx.AttemptOf
	attempts  int
	injected  int
	ssiReady  bool // the table InBody conflicts on exists
}

var _ tx.Acquirer = (*Injector)(nil)

// Inject returns an Injector over db, configured by opts: by default it fails the first attempt at COMMIT. db is a
// *pgxpool.Pool, a *pgx.Conn (then, as for tx.Run on one, for one goroutine at a time) or a tx.Acquirer such as a
// replica.Router, which still chooses each attempt's connection (but sends read-only work at the default isolation to
// the primary, where the faults can be set up). A nil db, any other, or an invalid option makes
// every Run on the Injector fail with an error for which errors.Is(err, tx.ErrInvalid) is true.
func Inject(db tx.DB, opts ...Option) *Injector {
	i := &Injector{remaining: 1, first: 1}
	i.db, i.err = lenderOf(db)
	for _, opt := range opts {
		if opt == nil {
			i.err = fmt.Errorf("%w: txtest: nil Option", tx.ErrInvalid)
			continue
		}
		opt(i)
	}
	return i
}

// Attempts returns how many transaction attempts have gone through the Injector.
func (i *Injector) Attempts() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.attempts
}

// Injected returns how many of those attempts were set up to fail.
func (i *Injector) Injected() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.injected
}

// BeginTx begins a transaction on db without any fault. tx.Run uses AcquireTx instead; BeginTx serves its
// other needs, such as checking the outcome of a COMMIT whose answer was lost.
func (i *Injector) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	if i.err != nil {
		return nil, i.err
	}
	return i.db.BeginTx(ctx, opts)
}

// AcquireTx lends tx.Run a connection of db for one attempt. For an attempt that is to fail, the Injector has already
// begun the transaction on it and set the fault up; the runner's own BEGIN then only draws PostgreSQL's warning
// "there is already a transaction in progress", and the transaction carries on with the options the runner asked for.
func (i *Injector) AcquireTx(ctx context.Context, opts pgx.TxOptions) (*pgx.Conn, func(), error) {
	if i.err != nil {
		return nil, nil, i.err
	}
	conn, release, err := i.db.lend(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := i.arm(ctx, conn, opts); err != nil {
		release()
		return nil, nil, err
	}
	return conn, release, nil
}

// arm counts the attempt and, while failures remain, sets one up on conn.
func (i *Injector) arm(ctx context.Context, conn *pgx.Conn, opts pgx.TxOptions) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.attempts++
	if i.eachRun && tx.AttemptOf(ctx) > i.first || !i.eachRun && i.remaining == 0 {
		return nil
	}
	var err error
	if i.at == inBody {
		err = i.doom(ctx, conn, opts)
	} else {
		err = armCommit(ctx, conn, opts)
	}
	if err != nil {
		return err
	}
	if !i.eachRun {
		i.remaining--
	}
	i.injected++
	return nil
}

// beginSQL spells the BEGIN the runner will send, from the validated options only.
func beginSQL(opts pgx.TxOptions) (string, error) {
	iso, access := opts.IsoLevel, opts.AccessMode
	if iso == "" {
		iso = pgx.Serializable
	}
	if access == "" {
		access = pgx.ReadWrite
	}
	switch iso {
	case pgx.Serializable, pgx.RepeatableRead, pgx.ReadCommitted, pgx.ReadUncommitted:
	default:
		return "", fmt.Errorf("%w: txtest: isolation level %q", tx.ErrInvalid, iso)
	}
	if access != pgx.ReadWrite && access != pgx.ReadOnly {
		return "", fmt.Errorf("%w: txtest: access mode %q", tx.ErrInvalid, access)
	}
	return "BEGIN ISOLATION LEVEL " + string(iso) + " " + string(access), nil
}
