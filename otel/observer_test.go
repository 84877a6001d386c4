package otelpgxact_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	otelpgxact "github.com/pgxact/pgxact/otel"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
	"github.com/pgxact/pgxact/txtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// traced returns a pool whose pgx queries are traced by otelpgx, and the exporter that collects every span.
func traced(t *testing.T) (*pgxpool.Pool, *tracetest.InMemoryExporter, trace.TracerProvider) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := pgtest.Config(t)
	cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(tp))
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(context.Background(), "CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counters VALUES (1, 0)")
	require.NoError(t, err)
	exp.Reset()
	return pool, exp, tp
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bump increments the counter; its first attempt ends with a serialization failure raised by the server.
func bump(attempts *atomic.Int32) tx.Tx[pgconn.CommandTag] {
	return tx.Bind(tx.Func(func(context.Context, pgx.Tx) (int32, error) { return attempts.Add(1), nil }),
		func(n int32) tx.Tx[pgconn.CommandTag] {
			inc := tx.Exec("UPDATE counters SET n = n + 1 WHERE id = 1")
			if n == 1 {
				return tx.Then(inc, tx.Exec("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$"))
			}
			return inc
		})
}

func named(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(attrs []attribute.KeyValue, key string) (attribute.Value, bool) {
	for _, a := range attrs {
		if string(a.Key) == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestRetriedTransaction(t *testing.T) {
	pool, exp, tp := traced(t)
	var attempts atomic.Int32
	_, err := tx.Run(ctxT(t), pool, bump(&attempts), tx.WithObserver(otelpgxact.Observer(tp)))
	require.NoError(t, err)
	spans := exp.GetSpans()

	runs := named(spans, otelpgxact.TransactionSpan)
	require.Len(t, runs, 1)
	run := runs[0]
	n, _ := attr(run.Attributes, "pgxact.attempts")
	require.EqualValues(t, 2, n.AsInt64())
	require.Equal(t, codes.Unset, run.Status.Code)

	tries := named(spans, otelpgxact.AttemptSpan)
	require.Len(t, tries, 2)
	for i, a := range tries {
		require.Equal(t, run.SpanContext.SpanID(), a.Parent.SpanID(), "attempt %d is a child of the transaction", i+1)
		require.Equal(t, run.SpanContext.TraceID(), a.SpanContext.TraceID())
		num, _ := attr(a.Attributes, "pgxact.attempt")
		require.EqualValues(t, i+1, num.AsInt64())
	}

	first := tries[0]
	require.Equal(t, codes.Error, first.Status.Code)
	state, _ := attr(first.Attributes, "db.response.status_code")
	require.Equal(t, "40001", state.AsString())
	var retryEvents []sdktrace.Event
	for _, e := range first.Events {
		if e.Name == otelpgxact.RetryEvent {
			retryEvents = append(retryEvents, e)
		}
	}
	require.Len(t, retryEvents, 1)
	ev := retryEvents[0]
	code, _ := attr(ev.Attributes, "db.response.status_code")
	require.Equal(t, "40001", code.AsString())
	class, _ := attr(ev.Attributes, "pgxact.retry.class")
	require.Equal(t, retry.Serialization.String(), class.AsString())
	_, hasDelay := attr(ev.Attributes, "pgxact.retry.delay")
	require.True(t, hasDelay)
	require.Equal(t, codes.Unset, tries[1].Status.Code)
	require.Empty(t, tries[1].Events)

	// pgx's own spans (otelpgx) started while an attempt ran are children of that attempt.
	attemptIDs := map[trace.SpanID]bool{tries[0].SpanContext.SpanID(): true, tries[1].SpanContext.SpanID(): true}
	var pgxSpans int
	for _, s := range spans {
		if s.InstrumentationScope.Name == "github.com/exaring/otelpgx" && attemptIDs[s.Parent.SpanID()] {
			pgxSpans++
		}
	}
	require.GreaterOrEqual(t, pgxSpans, 2, "each attempt sent at least one batch or query")
}

func TestFailedTransactionIsMarkedAsError(t *testing.T) {
	pool, exp, tp := traced(t)
	var attempts atomic.Int32
	_, err := tx.Run(ctxT(t), pool, bump(&attempts), tx.WithObserver(otelpgxact.Observer(tp)), tx.WithPolicy(retry.Never()))
	require.Error(t, err)
	spans := exp.GetSpans()
	run := named(spans, otelpgxact.TransactionSpan)
	require.Len(t, run, 1)
	require.Equal(t, codes.Error, run[0].Status.Code)
	tries := named(spans, otelpgxact.AttemptSpan)
	require.Len(t, tries, 1)
	require.Equal(t, otelpgxact.FailedEvent, tries[0].Events[len(tries[0].Events)-1].Name)
}

// TestInvalidRunsHaveAnErrorSpan: a Run refused for invalid input runs no attempt, but still has its transaction span,
// marked as an error, as the package documents for every Run that returns one.
func TestInvalidRunsHaveAnErrorSpan(t *testing.T) {
	pool, exp, tp := traced(t)
	_, err := tx.Run(ctxT(t), pool, tx.Tx[int]{}, tx.WithObserver(otelpgxact.Observer(tp)))
	require.ErrorIs(t, err, tx.ErrInvalid)
	_, err = tx.Run(ctxT(t), pool, tx.Pure(1), tx.WithObserver(otelpgxact.Observer(tp)), tx.WithIsolation("bogus"))
	require.ErrorIs(t, err, tx.ErrInvalid)
	spans := exp.GetSpans()
	runs := named(spans, otelpgxact.TransactionSpan)
	require.Len(t, runs, 2)
	for _, run := range runs {
		require.Equal(t, codes.Error, run.Status.Code)
	}
	require.Empty(t, named(spans, otelpgxact.AttemptSpan))
}

// TestGoSideFailureHasNoStatusCode: a failure that is not the server's (here the work's own error) has no SQLSTATE,
// so its attempt span carries no db.response.status_code at all rather than an empty one.
func TestGoSideFailureHasNoStatusCode(t *testing.T) {
	pool, exp, tp := traced(t)
	_, err := tx.Run(ctxT(t), pool, tx.Fail[int](errors.New("the work's own")), tx.WithObserver(otelpgxact.Observer(tp)))
	require.Error(t, err)
	tries := named(exp.GetSpans(), otelpgxact.AttemptSpan)
	require.Len(t, tries, 1)
	require.Equal(t, codes.Error, tries[0].Status.Code)
	_, ok := attr(tries[0].Attributes, "db.response.status_code")
	require.False(t, ok, "no empty status code on the span")
	for _, ev := range tries[0].Events {
		_, ok := attr(ev.Attributes, "db.response.status_code")
		require.False(t, ok, "no empty status code on event %s", ev.Name)
	}
}

func TestSpansNestUnderTheCallersSpan(t *testing.T) {
	pool, exp, tp := traced(t)
	ctx, parent := tp.Tracer("test").Start(ctxT(t), "handler")
	db := txtest.Inject(pool, txtest.FailFirst(2)) // the same path as the pool, with real 40001s at COMMIT
	_, err := tx.Run(ctx, db, tx.Exec("UPDATE counters SET n = n + 1"), tx.WithObserver(otelpgxact.Observer(tp)))
	require.NoError(t, err)
	parent.End()
	spans := exp.GetSpans()
	run := named(spans, otelpgxact.TransactionSpan)
	require.Len(t, run, 1)
	require.Equal(t, parent.SpanContext().SpanID(), run[0].Parent.SpanID())
	require.Len(t, named(spans, otelpgxact.AttemptSpan), 3)
}

func TestConcurrentRunsGetSeparateTraces(t *testing.T) {
	pool, exp, tp := traced(t)
	obs := otelpgxact.Observer(tp)
	const workers = 4
	errs := make(chan error, workers)
	for range workers {
		go func() {
			_, err := tx.Run(ctxT(t), pool, tx.Exec("SELECT 1"), tx.WithObserver(obs))
			errs <- err
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
	traces := map[trace.TraceID]bool{}
	for _, s := range named(exp.GetSpans(), otelpgxact.TransactionSpan) {
		traces[s.SpanContext.TraceID()] = true
	}
	require.Len(t, traces, workers)
}
