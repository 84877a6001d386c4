package tx

import "context"

// Map returns a Tx that runs t and yields f of its result. Mapping keeps t's statements batchable.
func Map[A, B any](t Tx[A], f func(A) B) Tx[B] {
	if f == nil {
		return Fail[B](invalid("Map with a nil function"))
	}
	if t.static() {
		st := t.s
		return Tx[B]{s: &step[B]{stmts: st.stmts, room: st.room, fails: st.fails, finish: func(s *session, res []any) (B, error) {
			a, err := st.done(s, res)
			if err != nil {
				var zero B
				return zero, err
			}
			return f(a), nil
		}}}
	}
	return dyn(func(ctx context.Context, s *session) (B, error) {
		a, err := t.exec(ctx, s)
		if err != nil {
			var zero B
			return zero, err
		}
		return f(a), nil
	})
}
