package tx

import (
	"context"
	"sync/atomic"
)

// Then returns a Tx that runs a, then b, and yields b's result. b sees a's effects, and does not run if a fails.
// When both are plain statements they travel in one round trip: the server runs them in order and stops at the
// first error, just as if they had been sent one by one. A Go-side failure of a — a decode error, QueryOne's
// pgx.ErrNoRows — is seen only when the round trip returns, after b's statements have run; the transaction then rolls
// back, so their writes vanish, but effects that rollback does not undo (nextval, session advisory locks) remain.
// Use Bind where b must not even be sent unless a succeeds. A constant failure (Fail, an invalid SetLocal) is known
// beforehand: b's statements are then not sent at all.
func Then[A, B any](a Tx[A], b Tx[B]) Tx[B] {
	if a.static() && b.static() {
		return thenStatic(a, b)
	}
	// b follows a (probe.go), unless it sends nothing (Pure, AfterCommit): then a's last round trip is the work's
	// last, and must look at the transaction id itself, or the look would only travel with COMMIT and be lost with it.
	more := 1
	if b.static() && len(b.s.stmts) == 0 {
		more = 0
	}
	return Tx[B]{&step[B]{run: func(ctx context.Context, s *session) (B, error) {
		s.more += more
		_, err := a.exec(ctx, s)
		s.more -= more
		if err != nil {
			var zero B
			return zero, err
		}
		return b.exec(ctx, s)
	}}}
}

func thenStatic[A, B any](a Tx[A], b Tx[B]) Tx[B] {
	// The closures capture the steps, not their done method values: each method value would be an allocation of its
	// own, on work that is often built anew for every transaction.
	n, sa, sb := len(a.s.stmts), a.s, b.s
	if sa.fails {
		// b can never run: send only a's statements, so none of b's reaches the server.
		return Tx[B]{&step[B]{stmts: sa.stmts, grow: sa.grow, fails: true, finish: func(s *session, res []any) (B, error) {
			var zero B
			_, err := sa.done(s, res)
			return zero, err
		}}}
	}
	stmts, grow := concat(sa.stmts, sa.grow, sb.stmts, sb.grow)
	return Tx[B]{&step[B]{
		stmts: stmts,
		grow:  grow,
		fails: sb.fails,
		sure:  sa.sure && sb.sure,
		finish: func(s *session, res []any) (B, error) {
			if _, err := sa.done(s, res[:n]); err != nil {
				var zero B
				return zero, err
			}
			return sb.done(s, res[n:])
		},
	}}
}

// concat joins the statements of two steps, a's then b's, and returns the claim of the result's spare capacity.
// Steps never change their statements, so one side alone is shared, not copied.
//
// Why the claim: a chain grown one Then at a time (w = Then(w, next), in a loop) would copy all earlier statements at
// every step, quadratic in its length. So a long enough joined slice gets spare capacity, and the first extension of
// a given step appends into it in place, after claiming it: claim holds how much of the backing array is taken, and
// only the step whose statements end there may take more. Every other extension of the same step (a value built on
// twice, perhaps concurrently) fails the claim and copies.
func concat(a []stmt, aGrow *atomic.Int64, b []stmt, bGrow *atomic.Int64) ([]stmt, *atomic.Int64) {
	switch {
	case len(b) == 0:
		return a, aGrow
	case len(a) == 0:
		return b, bGrow
	}
	n := len(a) + len(b)
	if aGrow != nil && cap(a)-len(a) >= len(b) && aGrow.CompareAndSwap(int64(len(a)), int64(n)) {
		return append(a, b...), aGrow
	}
	if n < growFrom {
		// Short joins, the common case, are built exactly: spare room and a claim would cost every transaction
		// built anew an allocation.
		out := make([]stmt, 0, n)
		return append(append(out, a...), b...), nil
	}
	out := make([]stmt, 0, 2*n)
	grow := new(atomic.Int64)
	grow.Store(int64(n))
	return append(append(out, a...), b...), grow
}

// growFrom is the length from which a joined slice of statements gets spare capacity (see concat).
const growFrom = 16
