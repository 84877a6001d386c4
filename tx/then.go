package tx

import "context"

// Then returns a Tx that runs a, then b, and yields b's result. b sees a's effects, and does not run if a fails.
// When both are plain statements they travel in one round trip: the server runs them in order and stops at the
// first error, just as if they had been sent one by one.
func Then[A, B any](a Tx[A], b Tx[B]) Tx[B] {
	if a.static() && b.static() {
		return thenStatic(a, b)
	}
	return Tx[B]{&step[B]{run: func(ctx context.Context, s *session) (B, error) {
		if _, err := a.exec(ctx, s); err != nil {
			var zero B
			return zero, err
		}
		return b.exec(ctx, s)
	}}}
}

func thenStatic[A, B any](a Tx[A], b Tx[B]) Tx[B] {
	n := len(a.s.stmts)
	fa, fb := a.s.done, b.s.done
	return Tx[B]{&step[B]{
		stmts: concat(a.s.stmts, b.s.stmts),
		finish: func(s *session, res []any) (B, error) {
			if _, err := fa(s, res[:n]); err != nil {
				var zero B
				return zero, err
			}
			return fb(s, res[n:])
		},
	}}
}

func concat(a, b []stmt) []stmt {
	out := make([]stmt, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}
