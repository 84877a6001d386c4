package otelpgxact

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgxact/pgxact/tx"
)

// ScopeName is the instrumentation scope of the spans this package makes.
const ScopeName = "github.com/pgxact/pgxact/otel"

// Span names and attribute keys, also listed in the package documentation.
const (
	TransactionSpan = "pgxact.transaction"
	AttemptSpan     = "pgxact.attempt"
	RetryEvent      = "pgxact.retry"
	FailedEvent     = "pgxact.attempt.failed"
)

var (
	dbSystem   = attribute.String("db.system.name", "postgresql")
	sqlState   = attribute.Key("db.response.status_code")
	attemptNum = attribute.Key("pgxact.attempt")
	attempts   = attribute.Key("pgxact.attempts")
	retryClass = attribute.Key("pgxact.retry.class")
	retryDelay = attribute.Key("pgxact.retry.delay")
)

// Observer returns a tx.Observer that makes spans with tracers from tp; a nil tp means otel.GetTracerProvider() at the
// time of the call. The Observer keeps no state of its own and is safe for concurrent use by any number of Runs.
func Observer(tp trace.TracerProvider) tx.Observer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return observer{tracer: tp.Tracer(ScopeName)}
}

type observer struct {
	tracer trace.Tracer
}

// The spans travel in the contexts under keys of our own, so that End never closes a span someone else started.
type (
	runKey         struct{}
	attemptSpanKey struct{}
)

func (o observer) StartRun(ctx context.Context) context.Context {
	ctx, span := o.tracer.Start(ctx, TransactionSpan, trace.WithAttributes(dbSystem))
	return context.WithValue(ctx, runKey{}, span)
}

func (o observer) StartAttempt(ctx context.Context, n int) context.Context {
	ctx, span := o.tracer.Start(ctx, AttemptSpan, trace.WithAttributes(dbSystem, attemptNum.Int(n)))
	return context.WithValue(ctx, attemptSpanKey{}, span)
}

func (o observer) EndAttempt(ctx context.Context, a tx.AttemptInfo) {
	span, ok := ctx.Value(attemptSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	defer span.End()
	if a.Err == nil {
		return
	}
	attrs := []attribute.KeyValue{retryClass.String(a.Class.String())}
	if a.SQLState != "" { // a Go-side error, a cancellation or a lost connection has none: no empty code
		state := sqlState.String(a.SQLState)
		span.SetAttributes(state)
		attrs = append(attrs, state)
	}
	span.RecordError(a.Err)
	span.SetStatus(codes.Error, a.Err.Error())
	if a.Retry {
		span.AddEvent(RetryEvent, trace.WithAttributes(append(attrs, retryDelay.Float64(a.Delay.Seconds()))...))
		return
	}
	span.AddEvent(FailedEvent, trace.WithAttributes(attrs...))
}

func (o observer) EndRun(ctx context.Context, r tx.RunInfo) {
	span, ok := ctx.Value(runKey{}).(trace.Span)
	if !ok {
		return
	}
	span.SetAttributes(attempts.Int(r.Attempts))
	if r.Err != nil {
		span.RecordError(r.Err)
		span.SetStatus(codes.Error, r.Err.Error())
	}
	span.End()
}
