// Package otelpgxact traces pgxact transactions with OpenTelemetry: one span per tx.Run, one child span per attempt,
// and the reason for every retry as a span event.
//
// # Spans
//
//	pgxact.transaction                    one per tx.Run; status Error when Run returns an error
//	├── pgxact.attempt  (attempt=1)       status Error; event "pgxact.retry": SQLSTATE 40001, class, delay
//	│   └── query / batch spans           from pgx's own tracer (github.com/exaring/otelpgx, for instance)
//	└── pgxact.attempt  (attempt=2)       committed
//
// tx.Run proceeds with the contexts the observer returns, so spans that pgx's query tracer starts while an attempt
// runs are children of that attempt's span, and AfterCommit hooks run under the transaction span. Install both:
//
//	cfg.ConnConfig.Tracer = otelpgx.NewTracer()            // pgx: a span per query and batch
//	v, err := tx.Run(ctx, pool, work, tx.WithObserver(otelpgxact.Observer(nil)))
//
// # Attributes and events
//
// Both spans carry db.system.name = "postgresql". The transaction span records pgxact.attempts; each attempt span
// records pgxact.attempt, and when it failed, db.response.status_code (the SQLSTATE), the error, and an event named
// "pgxact.retry" when another attempt is to follow (attributes db.response.status_code, pgxact.retry.class,
// pgxact.retry.delay in seconds; a ctx that ends during the pause still stops the run, as tx.AttemptInfo.Retry
// says) or "pgxact.attempt.failed" when none is. A Run refused for invalid input has a transaction span, marked as
// an error, and no attempt span.
//
// This package lives in its own module, so the pgxact library itself depends on no OpenTelemetry code.
package otelpgxact
