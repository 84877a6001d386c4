package tx

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/retry"
)

// Observer is told about every run and every attempt of Run, for logging, metrics and tracing. The contexts returned
// by StartRun and StartAttempt are the ones the run and the attempt proceed with, so a tracer can put spans in them
// and pgx's own query tracer spans nest under those. Methods are called from the goroutine that called Run; an
// Observer shared between Runs must be safe for concurrent use. Embed NopObserver to implement only some methods.
type Observer interface {
	StartRun(ctx context.Context) context.Context
	StartAttempt(ctx context.Context, attempt int) context.Context
	EndAttempt(ctx context.Context, a AttemptInfo)
	EndRun(ctx context.Context, r RunInfo)
}

// AttemptInfo describes a finished attempt.
type AttemptInfo struct {
	Attempt  int           // from 1
	Duration time.Duration // from acquiring the connection to the outcome (waiting at the policy's Gate excluded)
	Err      error         // nil when the attempt committed
	SQLState string        // the PostgreSQL error code of Err, if any
	Class    retry.Class   // how the retry policy classifies Err; meaningless when Err is nil (check Err first)
	Retry    bool          // the policy lets another attempt follow, after Delay (unless ctx ends during the pause)
	Delay    time.Duration // the pause before that attempt
}

// RunInfo describes a finished Run.
type RunInfo struct {
	Attempts int
	Duration time.Duration
	Err      error // what Run returned
}

// NopObserver does nothing; embed it in observers that care about only some events.
type NopObserver struct{}

func (NopObserver) StartRun(ctx context.Context) context.Context            { return ctx }
func (NopObserver) StartAttempt(ctx context.Context, _ int) context.Context { return ctx }
func (NopObserver) EndAttempt(context.Context, AttemptInfo)                 {}
func (NopObserver) EndRun(context.Context, RunInfo)                         {}

type nopObserver = NopObserver

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
