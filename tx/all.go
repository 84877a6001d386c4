package tx

import "context"

// All returns a Tx that runs ts in order and yields their results in the same order. The elements must not depend on
// each other's results (they may on each other's effects): the statements of consecutive plain elements are sent in
// one round trip. It is the primitive under package compose's Sequence, Traverse and Zip.
func All[T any](ts []Tx[T]) Tx[[]T] {
	for _, t := range ts {
		if !t.static() {
			return allDynamic(ts)
		}
	}
	return allStatic(ts)
}

func allStatic[T any](ts []Tx[T]) Tx[[]T] {
	// Elements after a constant failure can never run: they are left out, so their statements are never sent.
	fails := false
	for i, t := range ts {
		if t.s.fails {
			ts, fails = ts[:i+1], true
			break
		}
	}
	ends := make([]int, len(ts))
	n := 0
	for _, t := range ts {
		n += len(t.s.stmts)
	}
	stmts := make([]stmt, 0, n)
	sure := true
	for i, t := range ts {
		stmts = append(stmts, t.s.stmts...)
		ends[i] = len(stmts)
		sure = sure && t.s.sure
	}
	ts = append([]Tx[T](nil), ts...) // the caller may reuse its slice; a Tx is immutable
	return Tx[[]T]{s: &step[[]T]{stmts: stmts, fails: fails, sure: sure, finish: func(s *session, res []any) ([]T, error) {
		out := make([]T, len(ts))
		start := 0
		for i, t := range ts {
			v, err := t.s.done(s, res[start:ends[i]])
			if err != nil {
				return nil, err
			}
			out[i], start = v, ends[i]
		}
		return out, nil
	}}}
}

// allDynamic runs elements one by one, but still sends each maximal run of plain elements in one round trip.
func allDynamic[T any](ts []Tx[T]) Tx[[]T] {
	var parts []Tx[[]T]
	for i := 0; i < len(ts); {
		j := i
		for j < len(ts) && ts[j].static() {
			j++
		}
		if j > i {
			parts, i = append(parts, allStatic(ts[i:j])), j
			continue
		}
		parts, i = append(parts, Map(ts[i], func(v T) []T { return []T{v} })), i+1
	}
	return dyn(func(ctx context.Context, s *session) ([]T, error) {
		out := make([]T, 0, len(ts))
		for i, p := range parts {
			later := i < len(parts)-1 // more parts follow (probe.go)
			if later {
				s.more++
			}
			vs, err := p.exec(ctx, s)
			if later {
				s.more--
			}
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
		return out, nil
	})
}
