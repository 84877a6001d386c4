package tx

import "context"

// Bind returns a Tx that runs t, then the Tx that f builds from its result. Because the next step depends on the
// result, Bind is a round-trip boundary: prefer Then, All or compose.Zip where the work is independent.
func Bind[A, B any](t Tx[A], f func(A) Tx[B]) Tx[B] {
	if f == nil {
		return Fail[B](invalid("Bind with a nil function"))
	}
	return dyn(func(ctx context.Context, s *session) (B, error) {
		s.more++ // f's work follows: t's round trips need not look at the transaction id (probe.go)
		a, err := t.exec(ctx, s)
		s.more--
		if err != nil {
			var zero B
			return zero, err
		}
		return f(a).exec(ctx, s)
	})
}
