package tx

import (
	"context"
	"log/slog"
)

// SlogObserver returns an Observer that logs to l: each failed attempt at Info (with its SQLSTATE, retry class,
// whether it will be retried and after what delay), each run's end at Debug when it succeeded and Warn when it failed.
// A nil l uses slog.Default().
func SlogObserver(l *slog.Logger) Observer {
	if l == nil {
		l = slog.Default()
	}
	return slogObserver{l: l}
}

type slogObserver struct {
	NopObserver
	l *slog.Logger
}

func (o slogObserver) EndAttempt(ctx context.Context, a AttemptInfo) {
	if a.Err == nil {
		return
	}
	o.l.LogAttrs(ctx, slog.LevelInfo, "pgxact: attempt failed",
		slog.Int("attempt", a.Attempt),
		slog.String("sqlstate", a.SQLState),
		slog.String("class", a.Class.String()),
		slog.Bool("retry", a.Retry),
		slog.Duration("delay", a.Delay),
		slog.Duration("duration", a.Duration),
		slog.String("error", a.Err.Error()))
}

func (o slogObserver) EndRun(ctx context.Context, r RunInfo) {
	level, msg := slog.LevelDebug, "pgxact: committed"
	attrs := []slog.Attr{slog.Int("attempts", r.Attempts), slog.Duration("duration", r.Duration)}
	if r.Err != nil {
		level, msg = slog.LevelWarn, "pgxact: failed"
		attrs = append(attrs, slog.String("error", r.Err.Error()))
	}
	o.l.LogAttrs(ctx, level, msg, attrs...)
}
