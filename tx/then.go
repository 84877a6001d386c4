package tx

import (
	"context"
	"sync/atomic"
)

// Then returns a Tx that runs a, then b, and yields b's result. b sees a's effects, and does not run if a fails.
// When both are plain statements they travel in one round trip: the server runs them in order and stops at the
// first error, just as if they had been sent one by one. Statements new to the connection are prepared ahead of
// their round trip, so one that follows a statement that may change what names refer to (DDL, DO, CALL, SELECT INTO,
// a SetLocal of search_path or role) goes in a round trip of its own, once that has run. A table made by a function
// that a SELECT calls is not seen that way: put a Bind between the two.
//
// A Go-side failure of a — a decode error, QueryOne's pgx.ErrNoRows — is seen only when the round trip returns,
// after b's statements have run; the transaction then rolls back, so their writes vanish, but effects that rollback
// does not undo (nextval, session advisory locks) remain. Use Bind where b must not even be sent unless a succeeds.
// A constant failure (Fail, an invalid SetLocal) is known beforehand: b's statements are then not sent at all.
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
	return dyn(func(ctx context.Context, s *session) (B, error) {
		s.more += more
		_, err := a.exec(ctx, s)
		s.more -= more
		if err != nil {
			var zero B
			return zero, err
		}
		return b.exec(ctx, s)
	})
}

func thenStatic[A, B any](a Tx[A], b Tx[B]) Tx[B] {
	// The closures capture the steps, not their done method values: each method value would be an allocation of its
	// own, on work that is often built anew for every transaction.
	n, sa, sb := len(a.s.stmts), a.s, b.s
	if sa.fails {
		// b can never run: send only a's statements, so none of b's reaches the server.
		return Tx[B]{s: &step[B]{stmts: sa.stmts, room: sa.room, fails: true, finish: func(s *session, res []any) (B, error) {
			var zero B
			_, err := sa.done(s, res)
			return zero, err
		}}}
	}
	stmts, room := concat(sa.stmts, sa.room, sb.stmts, sb.room)
	return Tx[B]{s: &step[B]{
		stmts: stmts,
		room:  room,
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

// concat joins the statements of two steps, a's then b's, and returns where the result lies in a grower's array, if
// it does. Steps never change their statements, so one side alone is shared, not copied.
//
// Why growers: a chain grown one Then at a time, at its end (w = Then(w, next), in a loop) or at its front
// (w = Then(next, w)), would copy all its statements at every step, quadratic in its length. So a long enough joined
// list is laid in the middle of an array three times its length, and the first extension of a given step at either
// end writes into the room there, after claiming it: the grower holds which part of the array is taken, and only a
// step whose statements end (or start) where the taken part does may take more. Every other extension of the same
// step (a value built on twice, perhaps concurrently) fails the claim and copies.
func concat(a []stmt, ar room, b []stmt, br room) ([]stmt, room) {
	switch {
	case len(b) == 0:
		return a, ar
	case len(a) == 0:
		return b, br
	}
	n := len(a) + len(b)
	if g, end := ar.g, ar.at+len(a); g != nil && end+len(b) <= len(g.buf) &&
		g.hi.CompareAndSwap(int64(end), int64(end+len(b))) {
		copy(g.buf[end:], b)
		return g.buf[ar.at : ar.at+n : ar.at+n], ar
	}
	if g, start := br.g, br.at-len(a); g != nil && start >= 0 && g.lo.CompareAndSwap(int64(br.at), int64(start)) {
		copy(g.buf[start:], a)
		return g.buf[start : start+n : start+n], room{g, start}
	}
	if n < growFrom {
		// Short joins, the common case, are built exactly: room and a grower would cost every transaction built anew
		// an allocation.
		out := make([]stmt, 0, n)
		return append(append(out, a...), b...), room{}
	}
	g := &grower{buf: make([]stmt, 3*n)}
	copy(g.buf[n:], a)
	copy(g.buf[n+len(a):], b)
	g.lo.Store(int64(n))
	g.hi.Store(int64(2 * n))
	return g.buf[n : 2*n : 2*n], room{g, n}
}

// growFrom is the length from which a joined list of statements is laid in a grower (see concat).
const growFrom = 16

// grower is the array in which long joined lists of statements lie, with the part of it that steps have taken.
type grower struct {
	buf    []stmt
	lo, hi atomic.Int64 // buf[lo:hi] is taken: the statements of steps are windows inside it
}

// room is where a step's statements lie in a grower's array, from buf[at]; the zero room is none.
type room struct {
	g  *grower
	at int
}
