package tx_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/tx"
)

// countingObserver counts the events it is told about, and keeps the last RunInfo's error.
type countingObserver struct {
	startRun, endRun, startAttempt, endAttempt atomic.Int32
	attemptErr, runErr                         atomic.Value
}

func (o *countingObserver) StartRun(ctx context.Context) context.Context {
	o.startRun.Add(1)
	return ctx
}

func (o *countingObserver) StartAttempt(ctx context.Context, _ int) context.Context {
	o.startAttempt.Add(1)
	return ctx
}

func (o *countingObserver) EndAttempt(_ context.Context, a tx.AttemptInfo) {
	o.endAttempt.Add(1)
	if a.Err != nil {
		o.attemptErr.Store(a.Err)
	}
}

func (o *countingObserver) EndRun(_ context.Context, r tx.RunInfo) {
	o.endRun.Add(1)
	if r.Err != nil {
		o.runErr.Store(r.Err)
	}
}

// TestObserverHearsEveryEndEvenOnPanics: every StartRun has its EndRun and every StartAttempt its EndAttempt, with
// an error, when a panic in the work or in an AfterCommit hook ends them; tracing spans would otherwise stay open.
func TestObserverHearsEveryEndEvenOnPanics(t *testing.T) {
	pool := newPool(t, 1)
	cases := []struct {
		name         string
		work         tx.Tx[int]
		attemptEnded bool // the attempt's end carries the panic's error
	}{
		{"panic in the work", tx.Func(func(context.Context, pgx.Tx) (int, error) { panic("in the work") }), true},
		{"panic in a hook", tx.Then(tx.AfterCommit(func(context.Context) { panic("in a hook") }), tx.Pure(1)), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := &countingObserver{}
			require.Panics(t, func() { _, _ = tx.Run(ctxT(t), pool, c.work, tx.WithObserver(o)) })
			require.Equal(t, int32(1), o.startRun.Load())
			require.Equal(t, int32(1), o.endRun.Load())
			require.Equal(t, int32(1), o.startAttempt.Load())
			require.Equal(t, int32(1), o.endAttempt.Load())
			require.NotNil(t, o.runErr.Load(), "the run's end says it did not finish normally")
			if c.attemptEnded {
				require.NotNil(t, o.attemptErr.Load())
			} else {
				require.Nil(t, o.attemptErr.Load(), "the attempt committed before the hook ran")
			}
			requireNoAcquired(t, pool)
		})
	}
}

// TestObserverHearsOfInvalidRuns: a run refused for invalid input (a zero Tx, an invalid option before or after the
// observer's, a nil db) starts no attempt, but its observer hears of it, with the error: "told about every run".
func TestObserverHearsOfInvalidRuns(t *testing.T) {
	pool := newPool(t, 1)
	cases := []struct {
		name string
		run  func(o tx.Observer) error
	}{
		{"a zero Tx", func(o tx.Observer) error {
			_, err := tx.Run(ctxT(t), pool, tx.Tx[int]{}, tx.WithObserver(o))
			return err
		}},
		{"an invalid option after the observer", func(o tx.Observer) error {
			_, err := tx.Run(ctxT(t), pool, tx.Pure(1), tx.WithObserver(o), tx.WithIsolation("bogus"))
			return err
		}},
		{"an invalid option before it", func(o tx.Observer) error {
			_, err := tx.Run(ctxT(t), pool, tx.Pure(1), nil, tx.WithObserver(o))
			return err
		}},
		{"a nil db", func(o tx.Observer) error {
			_, err := tx.Run(ctxT(t), nil, tx.Pure(1), tx.WithObserver(o))
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := &countingObserver{}
			err := c.run(o)
			require.ErrorIs(t, err, tx.ErrInvalid)
			require.Equal(t, int32(1), o.startRun.Load())
			require.Equal(t, int32(1), o.endRun.Load())
			require.Zero(t, o.startAttempt.Load())
			require.ErrorIs(t, o.runErr.Load().(error), tx.ErrInvalid)
		})
	}
}
