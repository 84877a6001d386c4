package tx

import "context"

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
	return Tx[B]{&step[B]{run: func(ctx context.Context, s *session) (B, error) {
		s.more++ // b follows (probe.go)
		_, err := a.exec(ctx, s)
		s.more--
		if err != nil {
			var zero B
			return zero, err
		}
		return b.exec(ctx, s)
	}}}
}

func thenStatic[A, B any](a Tx[A], b Tx[B]) Tx[B] {
	n := len(a.s.stmts)
	fa, fb := a.s.done, b.s.done
	if a.s.fails {
		// b can never run: send only a's statements, so none of b's reaches the server.
		return Tx[B]{&step[B]{stmts: a.s.stmts, fails: true, finish: func(s *session, res []any) (B, error) {
			var zero B
			_, err := fa(s, res)
			return zero, err
		}}}
	}
	return Tx[B]{&step[B]{
		stmts: concat(a.s.stmts, b.s.stmts),
		fails: b.s.fails,
		sure:  a.s.sure && b.s.sure,
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
